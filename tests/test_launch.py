"""The cluster launch scripts in launch/: the local one runs gpj for real; the SLURM and TPU ones
run in dry-run mode, or against stand-ins for srun, scontrol and gcloud that record their calls."""

import json
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import textwrap
import time

import pytest
from conftest import ROOT

LOCAL = os.path.join(ROOT, "launch", "local_multiprocess.sh")
SLURM = os.path.join(ROOT, "launch", "slurm.sbatch")
TPU = os.path.join(ROOT, "launch", "tpu_vm.sh")
GPJ_ARGS = ["--config=configs/probe.py:tiny", "--config.runs=('gapnet:location',)"]
SLURM_JOB = {  # what SLURM sets in a 2-node x 2-GPU job
    "SLURM_JOB_ID": "1234",
    "SLURM_JOB_NODELIST": "gpu-a[07-08]",
    "SLURM_NTASKS": "4",
    "SLURM_GPUS_PER_TASK": "1",
    "SLURM_CPUS_PER_TASK": "8",
}


def clean_env(**extra):
    """The environment of a fresh shell: no virtual-device XLA_FLAGS, no SLURM or gpj settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("XLA_FLAGS", "JAX_NUM_CPU_DEVICES", "JAX_PLATFORMS", "JAX_LOCAL_DEVICE_IDS")
        and not k.startswith(("SLURM_", "GPJ_"))
    }
    env["PYTHON"] = sys.executable
    env.update(extra)
    return env


def launch(*args, env=None, timeout=60):
    """Runs a launch script from the repository root; returns (returncode, stdout, stderr, seconds).
    On a timeout its whole process group is killed, so no gpj process outlives the test."""
    start = time.monotonic()
    proc = subprocess.Popen(
        ["bash", *args],
        cwd=ROOT,
        env=env if env is not None else clean_env(),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    return proc.returncode, out, err, time.monotonic() - start


def assert_usage_error(result, message):
    code, out, err, _ = result
    assert code == 2, (out, err)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], err


def write_script(path, source):
    path.write_text(textwrap.dedent(source).lstrip())
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def fake_python(tmp_path):
    """A stand-in for python: records each process's arguments and environment in
    FAKE_LOG/process-<id>.json (the id from --process_id, else SLURM_PROCID, else 0), prints a
    line on stdout and one on stderr; with FAKE_MODE=fail_one, process 1 fails after a second
    (status 3) while the others sleep for two minutes."""
    log = tmp_path / "log"
    log.mkdir()
    path = write_script(
        tmp_path / "python",
        f"""
        #!{sys.executable}
        import json, os, sys, time
        if sys.argv[1] == "-c":  # the launcher asks python for a free port
            exec(sys.argv[2])
            sys.exit()
        args = sys.argv[1:]
        given = [a.split("=", 1)[1] for a in args if a.startswith("--process_id=")]
        pid = given[0] if given else os.environ.get("SLURM_PROCID", "0")
        keys = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_COORDINATOR_BIND_ADDRESS",
                "JAX_LOCAL_DEVICE_IDS")
        with open(os.path.join(os.environ["FAKE_LOG"], f"process-{{pid}}.json"), "w") as f:
            json.dump({{"args": args, "pid": os.getpid(),
                        "env": {{k: os.environ.get(k) for k in keys}}}}, f)
        if os.environ.get("FAKE_MODE") == "fail_one":
            if pid == "1":
                time.sleep(1)
                sys.exit(3)
            time.sleep(120)
        print(f"out {{pid}}")
        print(f"err {{pid}}", file=sys.stderr)
        """,
    )
    return path, log


def recorded_processes(log):
    return {
        int(name[len("process-") : -len(".json")]): json.loads((log / name).read_text())
        for name in os.listdir(log)
        if name.startswith("process-")
    }


# --- launch/local_multiprocess.sh ---------------------------------------------------------------


# The real two-process run (exactly one results.json, numbers equal to one process) is
# tests/test_multihost.py::test_two_processes_match_one_process_and_write_one_result.


def test_local_a_bad_config_fails_fast_with_a_nonzero_status(tmp_path):
    code, _, err, seconds = launch(
        LOCAL,
        "2",
        "--",
        *GPJ_ARGS,
        "--config.model.padding=mirror",
        f"--workdir={tmp_path / 'never'}",
        timeout=180,
    )
    assert code != 0
    assert "model.padding='mirror'" in err
    assert seconds < 150
    assert not (tmp_path / "never" / "results.json").exists()


def test_local_each_process_gets_its_id_the_same_coordinator_and_one_cpu_device(fake_python):
    python, log = fake_python
    code, out, err, _ = launch(
        LOCAL,
        "3",
        "--",
        "--config=configs/probe.py:tiny",
        "--workdir=w",
        env=clean_env(PYTHON=python, FAKE_LOG=str(log)),
    )
    assert code == 0, err
    processes = recorded_processes(log)
    assert sorted(processes) == [0, 1, 2]
    coordinators = set()
    for i, process in processes.items():
        args = process["args"]
        assert args[:4] == ["-m", "gpj.main", "--config=configs/probe.py:tiny", "--workdir=w"]
        assert f"--process_id={i}" in args and "--num_processes=3" in args
        (coordinator,) = [a for a in args if a.startswith("--coordinator_address=127.0.0.1:")]
        coordinators.add(coordinator)
        port = coordinator.rsplit(":", 1)[1]
        assert process["env"] == {
            "XLA_FLAGS": None,
            "JAX_PLATFORMS": "cpu",
            "JAX_COORDINATOR_BIND_ADDRESS": f"127.0.0.1:{port}",
            "JAX_LOCAL_DEVICE_IDS": None,
        }
    assert len(coordinators) == 1
    # Process 0's output passes through; the others' lines are marked and go to stderr.
    assert out.splitlines() == ["out 0"]
    assert "err 0" in err.splitlines()
    assert {"[process 1] out 1", "[process 1] err 1", "[process 2] out 2"} <= set(err.splitlines())
    assert "note:" not in err


def test_local_a_device_count_set_in_xla_flags_is_kept_and_announced(fake_python):
    python, log = fake_python
    flags = "--xla_force_host_platform_device_count=4"
    code, _, err, _ = launch(
        LOCAL,
        "2",
        "--config=configs/probe.py:tiny",
        env=clean_env(PYTHON=python, FAKE_LOG=str(log), XLA_FLAGS=flags),
    )
    assert code == 0, err
    assert all(p["env"]["XLA_FLAGS"] == flags for p in recorded_processes(log).values())
    assert any(line.startswith("note:") and flags in line for line in err.splitlines())


def test_local_when_one_process_fails_the_others_are_stopped(fake_python):
    python, log = fake_python
    code, _, err, seconds = launch(
        LOCAL,
        "3",
        "--config=configs/probe.py:tiny",
        env=clean_env(PYTHON=python, FAKE_LOG=str(log), FAKE_MODE="fail_one"),
    )
    assert code == 3
    assert "error: process 1 exited with status 3" in err
    assert seconds < 30  # not the two minutes the other processes would sleep
    for i in (0, 2):
        with pytest.raises(ProcessLookupError):
            os.kill(recorded_processes(log)[i]["pid"], 0)


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "missing N"),
        (["0", "--config=c"], "positive integer"),
        (["two", "--config=c"], "positive integer"),
        (["-1", "--config=c"], "positive integer"),
        (["2"], "no arguments for gpj.main"),
        (["2", "--"], "no arguments for gpj.main"),
        (["2", "--config=c", "--process_id=1"], "sets the process flags itself"),
        (["2", "--config=c", "--distributed=auto"], "sets the process flags itself"),
    ],
)
def test_local_usage_errors_exit_2_with_one_error_line(args, message):
    assert_usage_error(launch(LOCAL, *args), message)


def test_local_help():
    code, out, _, _ = launch(LOCAL, "--help")
    assert code == 0 and "local_multiprocess.sh N [--] GPJ_ARGS" in out


# --- launch/slurm.sbatch -----------------------------------------------------------------------


@pytest.fixture
def fake_slurm(tmp_path):
    """A bin folder with stand-ins for scontrol (gpu-a07 and gpu-a08) and srun (runs its command
    once per task, SLURM_PROCID = 0 .. SLURM_NTASKS-1, each with SLURM_LOCALID set)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(
        bin_dir / "scontrol",
        """
        #!/bin/sh
        [ "$1 $2" = "show hostnames" ] || exit 1
        printf 'gpu-a07\\ngpu-a08\\n'
        """,
    )
    write_script(
        bin_dir / "srun",
        f"""
        #!{sys.executable}
        import os, subprocess, sys
        args = sys.argv[1:]
        while args[0].startswith("--"):
            args.pop(0)
        tasks = int(os.environ["SLURM_NTASKS"])
        for i in range(tasks):
            env = dict(os.environ, SLURM_PROCID=str(i), SLURM_LOCALID=str(i % 2))
            subprocess.run(args, env=env, check=True)
        """,
    )
    return str(bin_dir)


def slurm_env(bin_dir=None, **extra):
    env = clean_env(**{**SLURM_JOB, **extra})
    if bin_dir:
        env["PATH"] = f"{bin_dir}{os.pathsep}{env['PATH']}"
    return env


def test_slurm_runs_one_gpj_process_per_task_with_jax_auto_detection():
    code, out, err, _ = launch(SLURM, "--dry-run", *GPJ_ARGS, env=slurm_env())
    assert code == 0, err
    export, srun = out.splitlines()
    assert export == "export JAX_LOCAL_DEVICE_IDS=0"  # each task drives the one GPU bound to it
    assert shlex.split(srun) == [
        "srun",
        "--kill-on-bad-exit=1",
        "--cpus-per-task=8",
        sys.executable,
        "-m",
        "gpj.main",
        *GPJ_ARGS,
        "--distributed=auto",
    ]


def test_slurm_asks_for_one_task_per_gpu():
    with open(SLURM) as f:
        directives = [line.split()[1] for line in f if line.startswith("#SBATCH")]
    assert "--gpus-per-task=1" in directives
    assert any(d.startswith("--ntasks-per-node=") for d in directives)


def test_slurm_a_task_with_several_gpus_drives_all_of_them():
    env = slurm_env(SLURM_GPUS_PER_TASK="a100:4", GPJ_DRY_RUN="1")
    code, out, err, _ = launch(SLURM, *GPJ_ARGS, env=env)
    assert code == 0, err
    assert out.splitlines()[0] == "export JAX_LOCAL_DEVICE_IDS=0,1,2,3"


def test_slurm_explicit_coordinator_gives_every_task_its_id(fake_slurm, fake_python):
    python, log = fake_python
    env = slurm_env(
        fake_slurm,
        GPJ_EXPLICIT_COORDINATOR="1",
        PYTHON=python,
        FAKE_LOG=str(log),
        SLURM_GPUS_PER_TASK="2",
    )
    code, _, err, _ = launch(SLURM, *GPJ_ARGS, env=env)  # runs the stand-in srun, no dry run
    assert code == 0, err
    processes = recorded_processes(log)
    assert sorted(processes) == [0, 1, 2, 3]
    assert all(p["env"]["JAX_LOCAL_DEVICE_IDS"] == "0,1" for p in processes.values())
    port = 61440 + 1234 % 4096  # the port JAX's own SLURM detection would choose
    for i, process in processes.items():
        assert sorted(process["args"]) == sorted(
            [
                "-m",
                "gpj.main",
                *GPJ_ARGS,
                f"--coordinator_address=gpu-a07:{port}",
                "--num_processes=4",
                f"--process_id={i}",
            ]
        )


def test_slurm_auto_detection_runs_the_same_command_in_every_task(fake_slurm, fake_python):
    python, log = fake_python
    env = slurm_env(fake_slurm, PYTHON=python, FAKE_LOG=str(log))
    code, _, err, _ = launch(SLURM, *GPJ_ARGS, env=env)  # runs the stand-in srun, no dry run
    assert code == 0, err
    processes = recorded_processes(log)
    assert sorted(processes) == [0, 1, 2, 3]
    for process in processes.values():
        assert process["args"] == ["-m", "gpj.main", *GPJ_ARGS, "--distributed=auto"]
        assert process["env"]["JAX_LOCAL_DEVICE_IDS"] == "0"


def test_slurm_explicit_coordinator_port_can_be_chosen(fake_slurm):
    env = slurm_env(fake_slurm, GPJ_EXPLICIT_COORDINATOR="1", GPJ_COORDINATOR_PORT="23456")
    code, out, err, _ = launch(SLURM, "--dry-run", "--config=configs/probe.py", env=env)
    assert code == 0, err
    srun = shlex.split(out.splitlines()[-1])
    assert "--coordinator_address=gpu-a07:23456" in srun and "--num_processes=4" in srun
    assert any('--process_id="$SLURM_PROCID"' in word for word in srun)


@pytest.mark.parametrize(
    "args, env, message",
    [
        (["--dry-run"], {}, "no arguments for gpj.main"),
        (["--config=c"], {"SLURM_JOB_ID": None}, "not inside a SLURM job"),
        (["--dry-run", "--config=c", "--num_processes=2"], {}, "sets the process flags itself"),
        (["--dry-run", "--config=c"], {"GPJ_EXPLICIT_COORDINATOR": "yes"}, "must be 0 or 1"),
        (
            ["--dry-run", "--config=c"],
            {"GPJ_EXPLICIT_COORDINATOR": "1", "SLURM_NTASKS": None},
            "needs SLURM_NTASKS",
        ),
        (["--dry-run", "--config=c"], {"SLURM_GPUS_PER_TASK": "many"}, "GPU count"),
    ],
)
def test_slurm_usage_errors_exit_2_with_one_error_line(fake_slurm, args, env, message):
    environment = slurm_env(fake_slurm)
    for key, value in env.items():
        if value is None:
            environment.pop(key)
        else:
            environment[key] = value
    assert_usage_error(launch(SLURM, *args, env=environment), message)


def test_slurm_help_works_with_bash():
    code, out, _, _ = launch(SLURM, "--help")
    assert code == 0 and "sbatch launch/slurm.sbatch GPJ_ARGS" in out
    assert "--gpus-per-task=1" not in out  # the help stops before the #SBATCH directives


# --- launch/tpu_vm.sh --------------------------------------------------------------------------

TPU_OPTIONS = ["--name=gpj-test", "--zone=us-central2-b", "--project=my-project"]


def gcloud_commands(out):
    """The printed gcloud commands as word lists, without the comment lines."""
    return [shlex.split(line) for line in out.splitlines() if line.startswith("gcloud ")]


def test_tpu_dry_run_prints_create_copy_install_run_and_fetch():
    code, out, err, _ = launch(
        TPU,
        "--dry-run",
        *TPU_OPTIONS,
        "--accelerator-type=v4-32",
        "--workdir=runs/x",
        "--",
        *GPJ_ARGS,
    )
    assert code == 0, err
    commands = gcloud_commands(out)
    assert [c[4] for c in commands] == ["describe", "create", "scp", "ssh", "ssh", "scp"]
    for command in commands:
        assert command[:4] == ["gcloud", "compute", "tpus", "tpu-vm"]
        assert "--zone=us-central2-b" in command and "--project=my-project" in command
    describe, create, copy, install, run, fetch = commands
    assert describe[5] == create[5] == "gpj-test"
    assert "--accelerator-type=v4-32" in create and "--version=tpu-ubuntu2204-base" in create
    assert copy[5].endswith(".tar.gz") and copy[6] == "gpj-test:gpj-src.tar.gz"
    assert "--worker=all" in copy and "--worker=all" in install and "--worker=all" in run
    assert "jax[tpu]" in command_option(install)
    remote = shlex.split(command_option(run))
    start = remote.index("gpj.main") + 1
    assert remote[start:] == [*GPJ_ARGS, "--workdir=$HOME/runs/x", "--distributed=auto"]
    assert fetch[5:7] == ["--recurse", "--worker=0"] and fetch[7:9] == ["gpj-test:runs/x", "runs"]


def command_option(command):
    (value,) = [word[len("--command=") :] for word in command if word.startswith("--command=")]
    return value


def test_tpu_remote_run_command_passes_the_gpj_arguments_unchanged(tmp_path, fake_python):
    """The string given to ssh --command, run by a shell on a 'worker' whose home is tmp_path."""
    python, log = fake_python
    code, out, err, _ = launch(TPU, "--dry-run", *TPU_OPTIONS, "--workdir=runs/x", "--", *GPJ_ARGS)
    assert code == 0, err
    run = command_option(gcloud_commands(out)[4])
    (tmp_path / "gpj").mkdir()
    (tmp_path / "gpj-venv" / "bin").mkdir(parents=True)
    os.symlink(python, tmp_path / "gpj-venv" / "bin" / "python")
    worker = subprocess.run(
        ["bash", "-c", run],
        check=False,
        env=clean_env(HOME=str(tmp_path), FAKE_LOG=str(log)),
        capture_output=True,
        text=True,
    )
    assert worker.returncode == 0, worker.stderr
    args = recorded_processes(log)[0]["args"]
    assert args == [
        "-m",
        "gpj.main",
        *GPJ_ARGS,
        f"--workdir={tmp_path}/runs/x",
        "--distributed=auto",
    ]


@pytest.mark.parametrize(
    "accelerator, version",
    [
        ("v4-8", "tpu-ubuntu2204-base"),
        ("v5litepod-16", "v2-alpha-tpuv5-lite"),
        ("v5p-8", "v2-alpha-tpuv5"),
        ("v6e-8", "v2-alpha-tpuv6e"),
    ],
)
def test_tpu_software_version_follows_the_accelerator_type(accelerator, version):
    code, out, err, _ = launch(
        TPU, "--dry-run", *TPU_OPTIONS, f"--accelerator-type={accelerator}", "--", "--config=c"
    )
    assert code == 0, err
    assert f"--version={version}" in gcloud_commands(out)[1]


def test_tpu_repo_option_clones_on_the_workers_instead_of_copying():
    code, out, err, _ = launch(
        TPU,
        "--dry-run",
        *TPU_OPTIONS,
        "--repo=https://example.org/gpj.git",
        "--ref=v1",
        "--extras=tfds",
        "--",
        "--config=c",
    )
    assert code == 0, err
    commands = gcloud_commands(out)
    assert [c[4] for c in commands] == ["describe", "create", "ssh", "ssh", "scp"]
    install = command_option(commands[2])
    assert "git clone --quiet --depth=1 --branch=v1 https://example.org/gpj.git ~/gpj" in install
    assert '-e "$HOME/gpj[tfds]"' in install


def test_tpu_a_multi_worker_slice_is_told_to_use_a_shared_absolute_workdir():
    """Workers of a slice share no disk, and orbax checkpoints need one all processes see."""
    base = [TPU, "--dry-run", *TPU_OPTIONS, "--accelerator-type=v4-32"]
    code, _, err, _ = launch(*base, "--workdir=runs/x", "--", "--config=c")
    assert code == 0 and "note: v4-32 has several workers" in err
    code, out, err, _ = launch(*base, "--workdir=/mnt/shared/x", "--", "--config=c")
    assert code == 0 and "note:" not in err
    *_, run, fetch = gcloud_commands(out)
    assert "--workdir=/mnt/shared/x" in shlex.split(command_option(run))
    assert fetch[7:9] == ["gpj-test:/mnt/shared/x", "runs"]  # lands in runs/x here


@pytest.fixture
def fake_gcloud(tmp_path):
    """A gcloud stand-in: logs every call to FAKE_LOG/gcloud.jsonl; `describe` prints
    FAKE_STATE (fails when empty); `scp` keeps the shipped tarball and fakes worker 0's workdir."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    write_script(
        bin_dir / "gcloud",
        f"""
        #!{sys.executable}
        import json, os, shutil, sys
        args = sys.argv[1:]
        log = os.environ["FAKE_LOG"]
        with open(os.path.join(log, "gcloud.jsonl"), "a") as f:
            f.write(json.dumps(args) + "\\n")
        verb = args[3]
        if verb == "describe":
            state = os.environ.get("FAKE_STATE", "")
            print(state)
            sys.exit(0 if state else 1)
        if verb == "scp" and args[4].endswith(".tar.gz"):
            shutil.copy(args[4], os.path.join(log, "shipped.tar.gz"))
        elif verb == "scp":  # --recurse --worker=0 NAME:DIR PARENT
            source, parent = args[6].split(":", 1)[1], args[7]
            os.makedirs(os.path.join(parent, os.path.basename(source)))
            open(os.path.join(parent, os.path.basename(source), "results.json"), "w").close()
        """,
    )
    return str(bin_dir)


@pytest.fixture
def checkout(tmp_path):
    """A git checkout holding the TPU script, with a committed file edited since, and an
    untracked file."""
    repo = tmp_path / "checkout"
    (repo / "launch").mkdir(parents=True)
    with open(TPU) as f:
        write_script(repo / "launch" / "tpu_vm.sh", f.read())
    (repo / "edited.py").write_text("committed\n")
    env = clean_env(
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@t",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@t",
    )
    for command in (["init", "-q"], ["add", "."], ["commit", "-q", "-m", "files"]):
        subprocess.run(["git", *command], cwd=repo, env=env, check=True)
    (repo / "edited.py").write_text("edited\n")
    (repo / "untracked.py").write_text("not shipped\n")
    return repo


def run_tpu_script(checkout, fake_gcloud, log, *args, state=""):
    env = clean_env(FAKE_LOG=str(log), FAKE_STATE=state)
    env["PATH"] = f"{fake_gcloud}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        ["bash", str(checkout / "launch" / "tpu_vm.sh"), *TPU_OPTIONS, *args],
        check=False,
        cwd=log,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_tpu_creates_ships_the_working_tree_runs_and_fetches(tmp_path, checkout, fake_gcloud):
    log = tmp_path / "here"
    log.mkdir()
    result = run_tpu_script(checkout, fake_gcloud, log, "--workdir=runs/x", "--", "--config=c")
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (log / "gcloud.jsonl").read_text().splitlines()]
    assert [c[3] for c in calls] == ["describe", "create", "scp", "ssh", "ssh", "scp"]
    with tarfile.open(log / "shipped.tar.gz") as tar:
        names = tar.getnames()
        assert tar.extractfile("edited.py").read() == b"edited\n"  # uncommitted edits travel
    assert "untracked.py" not in names and "launch/tpu_vm.sh" in names
    assert (log / "runs" / "x" / "results.json").exists()
    assert "gcloud compute tpus tpu-vm delete gpj-test" in result.stderr


def test_tpu_reuses_a_ready_tpu_vm_and_refuses_a_stopped_one(tmp_path, checkout, fake_gcloud):
    log = tmp_path / "here"
    log.mkdir()
    result = run_tpu_script(checkout, fake_gcloud, log, "--", "--config=c", state="READY")
    assert result.returncode == 0, result.stderr
    calls = [json.loads(line) for line in (log / "gcloud.jsonl").read_text().splitlines()]
    assert "create" not in [c[3] for c in calls]
    result = run_tpu_script(checkout, fake_gcloud, log, "--", "--config=c", state="STOPPED")
    assert result.returncode == 1 and "STOPPED" in result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--zone=z", "--", "--config=c"], "--name=NAME is required"),
        (["--name=t", "--", "--config=c"], "--zone=ZONE is required"),
        (["--name=T_1", "--zone=z", "--", "--config=c"], "lowercase letters"),
        (["--name=t", "--zone=z"], "no arguments for gpj.main"),
        (["--name=t", "--zone=z", "--config=c"], "unknown option '--config=c'"),
        (["--name", "t", "--zone=z", "--", "--config=c"], "--name needs a value"),
        (["--name=t", "--zone=z", "--", "--config=c", "--workdir=w"], "before --"),
        (["--name=t", "--zone=z", "--", "--config=c", "--distributed=auto"], "process flags"),
        (["--name=t", "--zone=z", "--ref=v1", "--", "--config=c"], "--ref needs --repo"),
        (["--name=t", "--zone=z", "--accelerator-type=gpu", "--", "--config=c"], "TPU type"),
        (["--name=t", "--zone=z", "--accelerator-type=v9-8", "--", "--config=c"], "--version"),
    ],
)
def test_tpu_usage_errors_exit_2_with_one_error_line(args, message):
    assert_usage_error(launch(TPU, "--dry-run", *args), message)


def test_tpu_help():
    code, out, _, _ = launch(TPU, "--help")
    assert code == 0 and "--accelerator-type=TYPE" in out and "--dry-run" in out
