"""Multi-host runs: two processes on loopback give the numbers of one process."""

import json
import os
import socket

import numpy as np
from conftest import assert_bad_configs_fail_fast, gpj_command


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_match_one_process_and_write_one_result(tiny_probe, tmp_path):
    """The tiny probe's GAPNet, trained by 2 processes of 4 CPU devices each, against the shared
    1-process run on 8 devices: same global batch, seed and device count, only the processes
    differ. Each process feeds its own half of every batch; CPU collectives go through gloo."""
    one_process, _ = tiny_probe
    workdir = tmp_path / "two"
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    address = f"127.0.0.1:{free_port()}"
    procs = [
        gpj_command(
            "gpj.main",
            "--config=configs/probe.py:tiny",
            "--config.runs=('gapnet:location',)",
            f"--workdir={workdir}",
            f"--coordinator_address={address}",
            "--num_processes=2",
            f"--process_id={i}",
            env=env,
        )
        for i in range(2)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-3000:]
    assert "| GAPNet |" in outputs[0][0] and "| GAPNet |" not in outputs[1][0]
    assert [p.name for p in workdir.rglob("results.json")] == ["results.json"]

    two = json.loads((workdir / "results.json").read_text())
    one = json.loads((one_process / "results.json").read_text())
    assert two["environment"]["process_count"] == 2
    assert two["environment"]["device_count"] == one["environment"]["device_count"] == 8
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


def test_bad_multi_process_flags_fail_fast(tmp_path):
    assert_bad_configs_fail_fast(
        "configs/probe.py:tiny",
        {
            "incomplete": (["--num_processes=2"], "missing: --coordinator_address, --process_id"),
            "bad address": (
                ["--coordinator_address=localhost", "--num_processes=2", "--process_id=0"],
                "is not HOST:PORT",
            ),
            "bad id": (
                ["--coordinator_address=127.0.0.1:1", "--num_processes=2", "--process_id=2"],
                "--process_id=2 must be in [0, 2)",
            ),
            "auto and explicit": (
                ["--distributed=auto", "--process_id=0"],
                "drop --process_id",
            ),
            "no cluster": (["--distributed=auto"], "--distributed=auto found no cluster"),
        },
        tmp_path,
    )
