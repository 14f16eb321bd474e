import pytest
from conftest import gpj_command

from gpj.bench import canvas, probe_default


@pytest.mark.parametrize("library", ["torch", "numpy"])
def test_canvas_bench_sides_build_the_same_canvases(library, monkeypatch):
    if library == "torch":
        pytest.importorskip("torch")
    else:
        monkeypatch.setattr(canvas, "_torch", lambda: None)
    result = canvas.run(1, batch_size=6, big_batch_size=None)
    assert result["loop_library"] == library
    assert result["max_abs_diff"] == 0.0
    assert result["ratio"] > 0 and result["batch_size"] == 6


def test_probe_default_bench_reports_the_jobs_error():
    with pytest.raises(SystemExit) as failed:
        probe_default.run(1, args=["--config=configs/probe.py:tiny", "--config.train.batch_size=0"])
    message = str(failed.value)
    assert message.startswith("error: the probe job failed (exit 1)")
    assert "train.batch_size=0 must be a positive number" in message


def test_bench_refuses_an_unknown_benchmark():
    proc = gpj_command("gpj.bench", "--only=scores,warp")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "unknown benchmark warp; choose from" in err
    choices = err.split("choose from", 1)[1]
    assert "canvas" in choices and "probe_default" in choices
