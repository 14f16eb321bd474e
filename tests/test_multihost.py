"""Multi-host runs: two processes on loopback give the numbers of one process."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
from conftest import ROOT, assert_command_line_errors

from gpj.engine import distributed
from gpj.errors import ConfigError


def test_two_processes_match_one_process_and_write_one_result(tiny_probe, tmp_path):
    """The tiny probe's GAPNet, trained by 2 processes of 4 CPU devices each, against the shared
    1-process run on 8 devices: same global batch, seed and device count, only the processes
    differ. Each process feeds its own half of every batch; CPU collectives go through gloo.
    Two seeds share one program here (the seed axis split over each process's devices, the data
    axis over the processes); seed 0 is compared with the shared run's one-seed program.
    Started by launch/local_multiprocess.sh, which prefixes process 1's lines."""
    one_process, _ = tiny_probe
    workdir = tmp_path / "two"
    env = {
        **os.environ,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
        "PYTHON": sys.executable,
    }
    proc = subprocess.run(
        [
            "bash",
            "launch/local_multiprocess.sh",
            "2",
            "--config=configs/probe.py:tiny",
            "--config.runs=('gapnet:location',)",
            "--config.num_seeds=2",
            "--config.train.seeds_per_program=2",
            f"--workdir={workdir}",
        ],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("| GAPNet |") == 1 and "[process 1]" in proc.stderr
    assert [p.name for p in workdir.rglob("results.json")] == ["results.json"]

    two = json.loads((workdir / "results.json").read_text())
    one = json.loads((one_process / "results.json").read_text())
    assert two["environment"]["process_count"] == 2
    assert two["environment"]["device_count"] == one["environment"]["device_count"] == 8
    assert [(r["seed"], r["program_seeds"]) for r in two["runs"]] == [(0, [0, 1]), (1, [0, 1])]
    run_two = two["runs"][0]
    run_one = next(r for r in one["runs"] if (r["head"], r["task"]) == ("gapnet", "location"))
    assert [h["step"] for h in run_two["history"]] == [h["step"] for h in run_one["history"]]
    # gloo sums the gradients across processes in another order than XLA does within one:
    # equal to float rounding at first, a drift that training amplifies later on.
    losses_two = [h["loss"] for h in run_two["history"]]
    losses_one = [h["loss"] for h in run_one["history"]]
    np.testing.assert_allclose(losses_two[:3], losses_one[:3], rtol=1e-4)
    np.testing.assert_allclose(losses_two, losses_one, rtol=2e-2)
    assert run_two["num_evaluations"] == run_one["num_evaluations"]
    assert abs(run_two["accuracy"] - run_one["accuracy"]) <= 0.01
    np.testing.assert_allclose(
        run_two["scores"]["flip_abs"], run_one["scores"]["flip_abs"], rtol=0.05, atol=1e-3
    )


# (coordinator_address, num_processes, process_id, auto): the message of the refusal. All are
# refused before JAX is touched, so they run in-process; the command line's one-line contract
# for these flags is checked once below.
BAD_FLAGS = {
    "incomplete": ((None, 2, None, False), "missing: --coordinator_address, --process_id"),
    "bad address": (("localhost", 2, 0, False), "is not HOST:PORT"),
    "bad id": (("127.0.0.1:1", 2, 2, False), "--process_id=2 must be in [0, 2)"),
    "auto and explicit": ((None, None, 0, True), "drop --process_id"),
}


@pytest.mark.parametrize("case", BAD_FLAGS)
def test_bad_multi_process_flags_are_refused_before_jax_starts(case):
    args, message = BAD_FLAGS[case]
    with pytest.raises(ConfigError, match=re.escape(message)):
        distributed.initialize(*args)


def test_bad_multi_process_flags_fail_fast_on_the_command_line(tmp_path):
    assert_command_line_errors(
        "configs/probe.py:tiny",
        {
            "incomplete": (["--num_processes=2"], "missing: --coordinator_address, --process_id"),
            "no cluster": (["--distributed=auto"], "--distributed=auto found no cluster"),
        },
        tmp_path,
    )
