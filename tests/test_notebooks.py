"""The Colab notebooks run headlessly on CPU with the tiny presets and show their results; their
repository URL agrees with pyproject.toml's; their prose agrees with the configs they run."""

import ast
import importlib.util
import json
import os
import re
import shutil
import sys
import tomllib
import types

import nbformat
import pytest
from conftest import parse_config
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from gpj import colab, kinds, models, tasks
from gpj.configs import attack as attack_config
from gpj.configs import invariance as invariance_config
from gpj.configs import probe as probe_config

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
    for parameter in (
        "preset = None",
        "workdir = None",
        "extra_overrides = []",
        "use_drive = False",
        f"drive_folder = {colab.DRIVE_FOLDER!r}".replace("'", '"'),
    ):
        assert parameter in source
    assert nb.metadata.kernelspec.name == "python3"


def test_notebooks_share_one_setup_cell():
    setups = {read_notebook(name).cells[2].source for name in NOTEBOOKS}
    (setup,) = setups
    assert setup.startswith("GPJ_REPO = ") and "colab.install_gpj()" in setup
    assert tuple(NOTEBOOKS) == colab.NOTEBOOKS


def test_every_notebook_has_the_repository_set_in_pyproject():
    """The URL is set in one place, pyproject.toml; each notebook's setup cell and badge (or,
    while it is unset, the note saying how to set it) carry that URL."""
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        repository = tomllib.load(f)["project"]["urls"]["Repository"]
    assert repository == colab.read_repository()
    owner, name = colab.github_name(repository)
    for notebook in NOTEBOOKS:
        nb = read_notebook(notebook)
        badge = nb.cells[0].source.splitlines()[0]
        setup = nb.cells[2].source.splitlines()[0]
        assert setup == colab.SETUP_LINE.format(repository)
        assert ast.literal_eval(setup.split("=", 1)[1].split("#")[0].strip()) == repository
        assert badge == colab.badge_line(repository, notebook)
        if repository == colab.UNSET_REPOSITORY:
            assert "python -m gpj.colab --repo=" in badge
        else:
            link = f"colab.research.google.com/github/{owner}/{name}/blob/main/colab/{notebook}"
            assert f"(https://{link}.ipynb)" in badge
    assert colab.main(["--check"]) == 0


def copy_of_the_checkout(tmp_path, monkeypatch):
    """pyproject.toml and colab/ copied to tmp_path, where gpj.colab now reads and writes them."""
    shutil.copy(os.path.join(ROOT, "pyproject.toml"), tmp_path / "pyproject.toml")
    shutil.copytree(os.path.join(ROOT, "colab"), tmp_path / "colab")
    monkeypatch.setattr(colab, "REPOSITORY", str(tmp_path))
    monkeypatch.setattr(colab, "PYPROJECT", str(tmp_path / "pyproject.toml"))


def test_setting_the_repository_stamps_every_notebook(tmp_path, monkeypatch, capsys):
    copy_of_the_checkout(tmp_path, monkeypatch)
    before = {n: nbformat.read(tmp_path / "colab" / f"{n}.ipynb", as_version=4) for n in NOTEBOOKS}
    pyproject_before = (tmp_path / "pyproject.toml").read_text()

    assert colab.main(["--repo=https://github.com/someone/gpj-fork.git"]) == 0
    assert colab.read_repository() == "https://github.com/someone/gpj-fork.git"
    old, new = pyproject_before.splitlines(), (tmp_path / "pyproject.toml").read_text().splitlines()
    assert len(old) == len(new)
    assert [b for a, b in zip(old, new) if a != b] == [
        'Repository = "https://github.com/someone/gpj-fork.git"'
    ]
    assert colab.main(["--check"]) == 0
    for notebook, old in before.items():
        new = nbformat.read(tmp_path / "colab" / f"{notebook}.ipynb", as_version=4)
        nbformat.validate(new)
        link = "https://colab.research.google.com/github/someone/gpj-fork/blob/main/colab/"
        badge = f"[![Open In Colab]({colab.COLAB_BADGE_IMAGE})]({link}{notebook}.ipynb)"
        assert new.cells[0].source.splitlines()[0] == badge
        assert new.cells[2].source.startswith(
            'GPJ_REPO = "https://github.com/someone/gpj-fork.git"'
        )
        for i, (a, b) in enumerate(zip(old.cells, new.cells)):  # nothing else changed
            lines = slice(1, None) if i in (0, 2) else slice(None)
            assert a.source.splitlines()[lines] == b.source.splitlines()[lines]
            assert a.cell_type == b.cell_type and a.metadata == b.metadata

    # A notebook edited by hand is found, and stamped back.
    path = tmp_path / "colab" / "attack.ipynb"
    path.write_text(path.read_text().replace("someone/gpj-fork.git", "other/gpj"))
    capsys.readouterr()
    assert colab.main(["--check"]) == 1
    assert "attack disagree" in capsys.readouterr().err
    assert colab.main([]) == 0 and colab.main(["--check"]) == 0

    # Colab opens GitHub repositories only; the unset marker can be set back.
    with pytest.raises(SystemExit):
        colab.main(["--repo=https://gitlab.com/someone/gpj"])
    assert colab.read_repository() == "https://github.com/someone/gpj-fork.git"
    assert colab.main([f"--repo={colab.UNSET_REPOSITORY}"]) == 0
    assert (tmp_path / "pyproject.toml").read_text() == pyproject_before
    for notebook in NOTEBOOKS:
        committed = os.path.join(ROOT, "colab", f"{notebook}.ipynb")
        with open(committed, encoding="utf-8") as f:
            assert (tmp_path / "colab" / f"{notebook}.ipynb").read_text() == f.read()


def test_setup_stops_with_one_line_when_it_cannot_clone(tmp_path, monkeypatch):
    """Outside a checkout, the setup cell clones GPJ_REPO; while it is the unset marker it stops
    with one line saying what to set, and a failed clone stops with git's own message."""
    setup = read_notebook("probe").cells[2].source.split("\n", 1)[1]
    cells = [
        nbformat.v4.new_code_cell(f"{colab.SETUP_LINE.format(repository)}\n{setup}")
        for repository in (colab.UNSET_REPOSITORY, str(tmp_path / "no-such-repository"))
    ]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    use_this_interpreter(monkeypatch, tmp_path)
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=120,
        allow_errors=True,
        resources={"metadata": {"path": str(outside)}},
    ).execute()
    unset, failed = ([o for o in c.outputs if o.output_type == "error"] for c in nb.cells)
    message = (
        "Setup stopped: the gpj repository's URL is not set: set GPJ_REPO in the first line "
        "of this cell (or, in a checkout, run python -m gpj.colab "
        "--repo=https://github.com/OWNER/NAME)."
    )
    assert [o.traceback for o in unset] == [[message]]
    ((line,),) = [o.traceback for o in failed]
    assert line.startswith(f"Setup stopped: git clone {tmp_path / 'no-such-repository'} failed: ")
    assert not (outside / "gpj").exists()


def test_preset_none_picks_cifar10_on_an_accelerator_except_for_attack():
    for backend in ("tpu", "gpu"):
        assert colab.choose_preset("probe", None, backend) == "cifar10"
        assert colab.choose_preset("invariance", None, backend) == "cifar10"
        assert colab.choose_preset("attack", None, backend) == ""
    assert [colab.choose_preset(name, None, "cpu") for name in NOTEBOOKS] == ["", "", ""]
    assert colab.choose_preset("probe", "tiny", "tpu") == "tiny"
    assert colab.choose_preset("probe", "", "gpu") == ""


def test_workdir_on_drive_is_the_same_at_every_run():
    drive = "/content/drive/MyDrive/gpj"
    first = colab.resolve_workdir("probe", None, preset="cifar10", drive_folder=drive)
    assert first == f"{drive}/probe-cifar10"
    assert colab.resolve_workdir("probe", None, preset="cifar10", drive_folder=drive) == first
    assert colab.resolve_workdir("attack", None, drive_folder=drive) == f"{drive}/attack-default"
    assert (
        colab.resolve_workdir("probe", None, preset="controls,circular", drive_folder=drive)
        == f"{drive}/probe-controls-circular"
    )
    assert colab.resolve_workdir("probe", "mine", drive_folder=drive) == f"{drive}/mine"
    assert colab.resolve_workdir("probe", "/tmp/a", drive_folder=drive) == "/tmp/a"


def test_use_drive_is_skipped_outside_colab(capsys):
    if importlib.util.find_spec("google") and importlib.util.find_spec("google.colab"):
        pytest.skip("google.colab is installed here")
    assert not colab.mount_drive()
    workdir = colab.choose_workdir("probe", "tiny", "runs/x", True, colab.DRIVE_FOLDER)
    assert workdir == os.path.join(ROOT, "runs", "x")
    assert "not on Colab, so Google Drive is not mounted" in capsys.readouterr().out


def test_use_drive_on_colab_mounts_drive_and_keeps_the_workdir_there(monkeypatch, capsys):
    """Against a stand-in for google.colab.drive: mounted at /content/drive only when chosen."""
    mounts = []
    drive = types.SimpleNamespace(mount=mounts.append)
    google = types.ModuleType("google")
    google.colab = types.ModuleType("google.colab")
    google.colab.drive = drive
    monkeypatch.setitem(sys.modules, "google", google)
    monkeypatch.setitem(sys.modules, "google.colab", google.colab)

    assert colab.choose_workdir("probe", "", None, False, colab.DRIVE_FOLDER).startswith(
        os.path.join(ROOT, "runs", "probe-")
    )
    assert mounts == []
    workdir = colab.choose_workdir("invariance", "cifar10", None, True, colab.DRIVE_FOLDER)
    assert mounts == ["/content/drive"]
    assert workdir == "/content/drive/MyDrive/gpj/invariance-cifar10"
    assert "on Google Drive" in capsys.readouterr().out
    with pytest.raises(ValueError, match="not on Google Drive"):
        colab.choose_workdir("probe", "", None, True, "/content/runs")


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
    # use_drive is on: outside Colab it must be skipped, with a note, and the workdir kept.
    injected = (
        f"preset = 'tiny'\nworkdir = {str(workdir)!r}\nextra_overrides = {overrides!r}\n"
        f"use_drive = True\ndrive_folder = {str(tmp_path / 'drive')!r}"
    )
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
    (run,) = [c for c in nb.cells if "colab.run_experiment(" in c.source]
    assert "use_drive: not on Colab, so Google Drive is not mounted" in texts(run)
    assert f"workdir: {workdir} (it holds an earlier run: its runs resume" in texts(run)
    assert not (tmp_path / "drive").exists()
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


# The prose: what the markdown cells say about the config must be what the config holds.
CONFIGS = {"probe": probe_config, "invariance": invariance_config, "attack": attack_config}
# Every name of a run kind that gpj knows; a notebook may name only those its config runs.
KIND_NAMES = {
    *models.PROBE_HEADS,
    *tasks.TARGETS,
    *kinds.DESIGNS,
    "baseline",
    "two_view",
    "augshift",
}
KIND_NAMES |= {"blurpool", "augshift_blurpool"}
# Bare names in code spans that are neither config nor notebook names.
OTHER_NAMES = {"Repository", "parameters", "tfds"}
NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}
COUNT = re.compile(
    rf"\b(\d+|{'|'.join(NUMBERS)})\s+(seed|epoch|run|variant|design|model|head)s?\b",
    re.IGNORECASE,
)
CODE_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")


def kind_names(experiment, config) -> set:
    """The names of what `config` trains: heads and tasks, variants, or designs."""
    if experiment == "probe":
        return {part for run in config.runs for part in run.split(":")}
    if experiment == "invariance":
        return set(config.variants)
    return set(config.segmentation.designs)


def counts(experiment, config) -> dict:
    """What a preset's bullet may state, by unit."""
    unit = {"probe": "run", "invariance": "variant", "attack": "design"}[experiment]
    kinds_run = len(kind_names(experiment, config) if experiment != "probe" else config.runs)
    return {"seed": config.num_seeds, "epoch": config.train.num_epochs, unit: kinds_run}


def every_config(experiment):
    module = CONFIGS[experiment]
    return [module.get_config(None)] + [module.get_config(p) for p in module.PRESETS]


def check_presets(experiment, presets: str) -> None:
    """`presets` (joined by commas) are presets of the experiment's config."""
    unknown = [p for p in filter(None, presets.split(",")) if p not in CONFIGS[experiment].PRESETS]
    assert not unknown, f"{experiment}.ipynb names presets its config lacks: {unknown}"


def check_overrides(experiment, overrides) -> None:
    """Each `--config.field=value` names a field of the config, with a valid value."""
    from gpj.experiments import runner

    for override in overrides:
        assert override.startswith("--config."), override
        try:
            runner.check_fields(parse_config([f"--config=configs/{experiment}.py", override]))
        except Exception as e:  # absl, ml_collections and gpj each raise their own kind
            raise AssertionError(f"{experiment}.ipynb shows {override}, which fails: {e}") from e


def has_field(config, path: str) -> bool:
    for key in path.split("."):
        if not hasattr(config, "keys") or key not in config:
            return False
        config = config[key]
    return True


def check_span(experiment, span: str, names: set) -> None:
    """One code span of the markdown: presets, overrides, fields and names must exist."""
    if span.startswith(("python ", "pip ", "jupyter ")):
        if span.startswith("python -m gpj.main") and not re.search(r"\[|\.\.\.|<", span):
            check_overrides(experiment, [a for a in span.split()[3:] if a.startswith("--config.")])
        return
    try:
        value = ast.literal_eval(span)
    except (ValueError, SyntaxError):
        pass
    else:
        if isinstance(value, str):
            check_presets(experiment, value)
        return
    if re.fullmatch(r"\w+ ?= ?.+", span):  # a parameter's assignment
        target, value = (x.strip() for x in span.split("=", 1))
        assert target in names, f"{experiment}.ipynb: {span!r} sets no parameter of the notebook"
        value = ast.literal_eval(value)
        if target == "preset" and isinstance(value, str):
            check_presets(experiment, value)
        if target == "extra_overrides":
            check_overrides(experiment, value)
        return
    match = re.fullmatch(r"configs/(\w+)\.py:(\S+)", span)
    if match:
        assert match.group(1) == experiment, span
        check_presets(experiment, match.group(2))
        return
    if re.fullmatch(r"[a-z_]\w*(\.[a-z_]\w*)+", span) and not re.search(
        r"\.(json|md|png|py|ipynb|zip|toml)$", span
    ):
        if span.startswith("gpj."):
            assert importlib.util.find_spec(span), span
        else:
            assert any(has_field(c, span) for c in every_config(experiment)), (
                f"{experiment}.ipynb names {span!r}, which is no field of its config"
            )
        return
    if re.fullmatch(r"\w+", span):
        if span in KIND_NAMES:
            assert span in names, f"{experiment}.ipynb names {span!r}, which its config never runs"
        assert span in names | OTHER_NAMES, f"{experiment}.ipynb: unknown name {span!r}"


def preset_bullets(markdown: str) -> list:
    """(preset, bullet text) of each bullet that starts with a preset in a code span, e.g.
    `"tiny"`, with its continuation lines."""
    bullets = []
    for bullet in re.findall(r"^- .*(?:\n  .*)*", markdown, flags=re.MULTILINE):
        first = CODE_SPAN.search(bullet)
        if first and bullet.startswith(f"- {first.group(0)}") and first.group(1)[0] == '"':
            bullets.append((ast.literal_eval(first.group(1)), bullet))
    return bullets


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_the_prose_agrees_with_the_config(name):
    """Every preset, field, override, variant, head and design the markdown names exists in the
    config; every one the config (or a preset) runs is named; each count of seeds, epochs and
    variants/runs/designs is stated in a preset's bullet and is that preset's."""
    nb = read_notebook(name)
    markdown = "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    for line in markdown.splitlines():
        assert line.count("`") % 2 == 0, f"a code span crosses a line: {line!r}"
    assigned = {
        target.id
        for c in nb.cells
        if c.cell_type == "code"
        for node in ast.walk(ast.parse(c.source))
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    configs = every_config(name)
    run_names = set().union(*(kind_names(name, c) for c in configs))
    names = assigned | run_names | set(CONFIGS[name].PRESETS) | set(configs[0].keys())
    spans = CODE_SPAN.findall(markdown)
    for span in spans:
        check_span(name, span, names)
    assert run_names <= set(spans), f"never named: {sorted(run_names - set(spans))}"

    bullets = preset_bullets(markdown)
    described = {preset for preset, _ in bullets}
    picked = {colab.choose_preset(name, None, backend) for backend in ("cpu", "gpu", "tpu")}
    assert picked <= described, "describe what `preset = None` picks"
    for preset, bullet in bullets:
        config = CONFIGS[name].get_config(preset)
        expected = counts(name, config)
        stated = COUNT.findall(CODE_SPAN.sub("", bullet))
        for number, unit in stated:
            number = NUMBERS.get(number.lower()) or int(number)
            assert unit.lower() in expected, f"{preset!r}: {number} {unit}s cannot be checked"
            assert number == expected[unit.lower()], (
                f"{name}.ipynb says {number} {unit}(s) for preset {preset!r}; the config has "
                f"{expected[unit.lower()]}"
            )
        if preset in picked:
            assert any(u == "seed" for _, u in stated), f"{preset!r}: say how many seeds"
    outside = CODE_SPAN.sub("", re.sub(r"^- .*(?:\n  .*)*", "", markdown, flags=re.MULTILINE))
    assert not COUNT.findall(outside), (
        "state counts in the presets' bullets, where they are checked"
    )
