"""The Colab notebooks run headlessly on CPU with the tiny presets and show their results."""

import json
import os
import shutil
import sys

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from gpj import colab

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# notebook: (extra_overrides, the header of the results table its report shows)
NOTEBOOKS = {
    "probe": ([], "| model | location (chance"),
    "invariance": ([], "| variant | centred acc."),
    # The segmentation attack only, to keep this file fast: tests/test_attack.py attacks GAPNets.
    "attack": (["--config.classifier.tasks=()"], "| N ablated | mIoU top-N |"),
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


def test_notebooks_share_one_setup_cell():
    setups = {read_notebook(name).cells[2].source for name in NOTEBOOKS}
    (setup,) = setups
    assert setup.startswith("GPJ_REPO = ") and "colab.install_gpj()" in setup


def test_preset_none_picks_cifar10_on_an_accelerator_except_for_attack():
    for backend in ("tpu", "gpu"):
        assert colab.choose_preset("probe", None, backend) == "cifar10"
        assert colab.choose_preset("invariance", None, backend) == "cifar10"
        assert colab.choose_preset("attack", None, backend) == ""
    assert [colab.choose_preset(name, None, "cpu") for name in NOTEBOOKS] == ["", "", ""]
    assert colab.choose_preset("probe", "tiny", "tpu") == "tiny"
    assert colab.choose_preset("probe", "", "gpu") == ""


def test_workdir_is_taken_from_the_checkout():
    default = colab.resolve_workdir("probe", None)
    assert os.path.dirname(default) == os.path.join(ROOT, "runs")
    assert os.path.basename(default).startswith("probe-")
    assert colab.resolve_workdir("attack", "runs/a") == os.path.join(ROOT, "runs", "a")
    assert colab.resolve_workdir("attack", "/tmp/a") == "/tmp/a"
    assert colab.resolve_workdir("attack", "~/a") == os.path.expanduser("~/a")


def test_main_args_pass_data_dir_only_for_prepared_presets():
    data_dir = os.path.expanduser("~/tfds")
    assert colab.main_args("probe", "cifar10,vgg16", "/w", "~/tfds", ["--config.num_seeds=1"]) == [
        "--config=configs/probe.py:cifar10,vgg16",
        "--workdir=/w",
        f"--config.data.data_dir={data_dir}",
        "--config.num_seeds=1",
    ]
    assert colab.datasets_to_prepare("probe", "imagenette,vgg16") == ["imagenette"]
    assert colab.datasets_to_prepare("invariance", "imagenette") == []
    assert colab.datasets_to_prepare("attack", "cityscapes") == []
    assert colab.main_args("attack", "", "/w", "~/tfds", []) == [
        "--config=configs/attack.py",
        "--workdir=/w",
    ]


def test_report_figure_links_become_names():
    report = "| a |\n![accuracy](accuracy.png)\ntext ![x](y.png)\n"
    assert colab.unlink_figures(report) == (
        "| a |\n- `accuracy.png` (shown below)\ntext ![x](y.png)\n"
    )


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
    client = NotebookClient(
        nb, kernel_name="python3", timeout=600, resources={"metadata": {"path": ROOT}}
    )
    client.execute()  # raises CellExecutionError, with the traceback, if any cell fails
    return nb


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_tiny_preset_on_cpu(name, tmp_path, monkeypatch, request):
    """Each notebook on a copy of the session's finished tiny run of its experiment: the notebook
    runs the same `gpj.main` command, which finds every run trained and re-evaluates it (training
    itself is tested by the experiments' own tests), then shows the report."""
    overrides, header = NOTEBOOKS[name]
    workdir = tmp_path / "run"
    shutil.copytree(request.getfixturevalue(f"tiny_{name}")[0], workdir)
    (workdir / "results.json").unlink()
    nb = execute(name, workdir, overrides, monkeypatch, tmp_path)

    assert not [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    (accelerator,) = [c for c in nb.cells if "colab.show_devices()" in c.source]
    assert "backend:      cpu" in texts(accelerator)
    (results,) = [c for c in nb.cells if "colab.show_results(" in c.source]
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
