"""The Colab notebooks run headlessly on CPU with the tiny presets and show their results."""

import json
import os
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# notebook: (extra_overrides, the header of the results table its report shows)
NOTEBOOKS = {
    "probe": ([], "| model | location (chance"),
    "invariance": ([], "| variant | centred acc."),
    # The segmentation attack only, to keep this file fast: tests/test_attack.py attacks GAPNets.
    "attack": (["--config.classifier.tasks=()"], "| N ablated | all top-N |"),
}


def read_notebook(name):
    return nbformat.read(os.path.join(ROOT, "colab", f"{name}.ipynb"), as_version=4)


def parameters_index(nb) -> int:
    """The index of the cell tagged `parameters` (papermill's convention); exactly one."""
    tagged = [i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, tagged
    return tagged[0]


def texts(cell, mime="text/plain") -> str:
    """Everything a cell printed (streams) or displayed as `mime`, as one string."""
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            parts.append(out.text)
        elif "data" in out and mime in out.data:
            parts.append(out.data[mime])
    return "\n".join(parts)


def use_this_interpreter(monkeypatch, tmp_path) -> None:
    """Points the `python3` kernelspec at sys.executable, whatever other kernelspecs exist."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (gpj tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))  # searched before all others


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_clean(name):
    nb = read_notebook(name)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code)
    source = nb.cells[parameters_index(nb)].source
    for parameter in ("preset = None", "workdir = None", "extra_overrides = []"):
        assert parameter in source
    assert nb.metadata.kernelspec.name == "python3"


def execute(name, workdir, overrides, monkeypatch, tmp_path):
    """Runs notebook `name` headlessly with the tiny preset, from the repository root, on CPU."""
    nb = read_notebook(name)
    # As papermill does: a cell after the parameters cell overrides the defaults.
    injected = f"preset = 'tiny'\nworkdir = {str(workdir)!r}\nextra_overrides = {overrides!r}"
    nb.cells.insert(
        parameters_index(nb) + 1,
        nbformat.v4.new_code_cell(injected, metadata={"tags": ["injected-parameters"]}),
    )
    use_this_interpreter(monkeypatch, tmp_path)
    # One CPU device, as on a Colab CPU runtime (conftest sets 8 virtual ones for the suite).
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    client = NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": ROOT}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails
    return nb


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_tiny_preset_on_cpu(name, tmp_path, monkeypatch):
    overrides, header = NOTEBOOKS[name]
    workdir = tmp_path / "run"
    nb = execute(name, workdir, overrides, monkeypatch, tmp_path)

    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    (accelerator,) = [c for c in nb.cells if "jax.default_backend()" in c.source]
    assert "backend:      cpu" in texts(accelerator)
    (results,) = [c for c in nb.cells if "report.md" in c.source and c.cell_type == "code"]
    assert header in texts(results, "text/markdown")
    figures = sorted(p.name for p in workdir.glob("*.png"))
    shown = [o for o in results.outputs if "image/png" in o.get("data", {})]
    assert figures and len(shown) == len(figures)
    assert json.loads((workdir / "results.json").read_text())["experiment"] == name


def test_failed_run_raises_with_the_command_line_error(tmp_path, monkeypatch):
    with pytest.raises(CellExecutionError) as failure:
        execute("probe", tmp_path / "run", ["--config.model.padding=mirror"], monkeypatch, tmp_path)
    assert "error: model.padding='mirror' is not valid" in str(failure.value)
    assert not (tmp_path / "run" / "results.json").exists()
