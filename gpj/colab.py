"""What the notebooks in colab/ run: install gpj, show JAX's devices, run an experiment, show it.

A notebook's first cell finds (or clones) a gpj checkout, puts it first on sys.path and imports
this module from it before pip has installed gpj, so this module uses the standard library only;
IPython is imported where the results are shown. JAX never starts in the notebook's kernel: a TPU
can be opened by one process at a time, so JAX is asked about devices, and the experiment runs,
in processes of their own.

The repository the notebooks clone is set in one place, the `Repository` entry of
`[project.urls]` in pyproject.toml. In a checkout,

  python -m gpj.colab --repo=https://github.com/OWNER/NAME   # set it, stamp every notebook
  python -m gpj.colab                                         # stamp the notebooks again
  python -m gpj.colab --check                                 # exit 1 if a notebook disagrees

write it there and into each notebook's setup cell (`GPJ_REPO = "..."`) and its "Open in Colab"
badge.
"""

import argparse
import codecs
import datetime
import glob
import importlib.metadata
import json
import os
import re
import selectors
import subprocess
import sys
import tomllib

# The checkout this module was imported from, whose configs/ the notebooks run.
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# PCI device ids of Google's (vendor 0x1ae0) TPU chips: v2/v3, v4, v5p, v5e, v6e, 7x.
TPU_PCI_DEVICES = {"0x0027", "0x0056", "0x005e", "0x0062", "0x0063", "0x006f", "0x0076"}

DEVICE_QUERY = (
    "import jax; print(jax.default_backend()); print(jax.devices()); print(jax.device_count())"
)
PIP_INSTALL_EDITABLE = [sys.executable, "-m", "pip", "install", "--quiet", "-e"]
BACKEND_NOTES = {
    "tpu": "TPU: the experiment runs data-parallel over every TPU core.",
    "gpu": "GPU: the experiment runs data-parallel over every GPU.",
    "cpu": "CPU only: expect the small embedded-data runs (a few minutes on 2 cores), "
    "not paper scale.",
}

NOTEBOOKS = ("probe", "invariance", "attack")  # colab/<name>.ipynb
PYPROJECT = os.path.join(REPOSITORY, "pyproject.toml")
# pyproject.toml's `Repository` until someone sets the real one: the notebooks then stop at setup
# (when they would clone) and show how to set it instead of an "Open in Colab" badge.
UNSET_REPOSITORY = "https://github.com/UNSET/gpj"
GITHUB_URL = re.compile(r"https://github\.com/([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?/?")
BRANCH = "main"  # the branch the badges open
COLAB_BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
SETUP_LINE = 'GPJ_REPO = "{}"  # set by `python -m gpj.colab --repo=URL` (pyproject.toml)'
UNSET_BADGE = (
    "*Open in Colab:* no repository URL is set yet; in a checkout, "
    "`python -m gpj.colab --repo=https://github.com/OWNER/NAME` sets it and links this badge."
)

# Google Drive on Colab: mounted at DRIVE_MOUNT only when a notebook's `use_drive` is True.
DRIVE_MOUNT = "/content/drive"
DRIVE_FOLDER = "/content/drive/MyDrive/gpj"

# Per experiment, the preset that `preset = None` picks when JAX sees a TPU or GPU; on CPU it
# picks the embedded default (""). Cityscapes must be downloaded by hand, so attack never does.
ACCELERATOR_PRESETS = {"probe": "cifar10", "invariance": "cifar10", "attack": ""}
# Per experiment, the presets that read a TensorFlow Datasets set, which the notebook builds into
# data_dir with `python -m gpj.prepare` before the run (gpj's runs never download).
PREPARED_PRESETS = {"probe": ("cifar10", "imagenette"), "invariance": ("cifar10",), "attack": ()}


def run_streaming(args: list[str]) -> None:
    """Runs a command from the checkout, echoing its stdout and stderr as they arrive.

    Args:
      args: the command and its arguments.

    Raises:
      RuntimeError: the command failed; the message holds the end of its stderr.
    """
    process = subprocess.Popen(
        args,
        cwd=REPOSITORY,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    stderr_tail = ""
    try:
        with selectors.DefaultSelector() as selector:
            for pipe, echo in ((process.stdout, sys.stdout), (process.stderr, sys.stderr)):
                decoder = codecs.getincrementaldecoder("utf-8")("replace")
                selector.register(pipe, selectors.EVENT_READ, (echo, decoder))
            while selector.get_map():
                for key, _ in selector.select():
                    echo, decoder = key.data
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        selector.unregister(key.fileobj)
                        continue
                    text = decoder.decode(chunk)
                    echo.write(text)
                    echo.flush()
                    if echo is sys.stderr:
                        stderr_tail = (stderr_tail + text)[-5000:]
        returncode = process.wait()
    except BaseException:  # an interrupted cell must not leave the run holding the accelerator
        process.kill()
        process.wait()
        raise
    if returncode:
        raise RuntimeError(f"{' '.join(map(str, args))} exited with {returncode}:\n{stderr_tail}")


def read_pci_field(device: str, field: str) -> str:
    """One field (e.g. `vendor`) of a /sys/bus/pci/devices entry; "" if it cannot be read."""
    try:
        with open(os.path.join(device, field)) as f:
            return f.read().strip()
    except OSError:
        return ""


def has_tpu() -> bool:
    """Whether this machine has TPU chips, found without starting any accelerator runtime.

    The legacy Colab TPU runtime sets COLAB_TPU_ADDR and Cloud TPU VMs set TPU_NAME. Current
    Colab TPU VMs expose the chips as /dev/accel0... (v2-v4) or through VFIO (v5e, v6e); a
    /dev/vfio group can be any device, so the PCI bus is read for Google TPU chips, as JAX does.
    """
    if os.environ.get("COLAB_TPU_ADDR") or os.environ.get("TPU_NAME"):
        return True
    for device in glob.glob("/sys/bus/pci/devices/*"):
        vendor, chip = read_pci_field(device, "vendor"), read_pci_field(device, "device")
        if vendor == "0x1ae0" and chip in TPU_PCI_DEVICES:
            return True
    return bool(glob.glob("/dev/accel[0-9]*"))  # not /dev/accel/: other drivers' accel devices


def jax_for_accelerator() -> list[str]:
    """The JAX build that matches this machine's accelerator, as pip requirements."""
    if has_tpu():
        return ["jax[tpu]"]
    return ["jax[cuda12]"] if glob.glob("/dev/nvidia[0-9]*") else []


def install_gpj() -> None:
    """Installs the checkout with `pip install -e`, unless gpj is installed already.

    The JAX build for this machine's accelerator is installed with it (`jax_for_accelerator`).
    Prints gpj's version if it is installed, then the checkout's folder.
    """
    try:
        print("gpj", importlib.metadata.version("gpj"), "is installed")
    except importlib.metadata.PackageNotFoundError:
        run_streaming([*PIP_INSTALL_EDITABLE, REPOSITORY, *jax_for_accelerator()])
    print("repository:", REPOSITORY)


def show_devices() -> str:
    """Prints the backend, devices and device count that JAX sees, asked in a separate process.

    Returns:
      The backend's name: "tpu", "gpu" or "cpu".

    Raises:
      RuntimeError: JAX could not start; the message holds its stderr.
    """
    answer = subprocess.run(
        [sys.executable, "-c", DEVICE_QUERY],
        check=False,
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
    )
    if answer.returncode:
        raise RuntimeError(f"JAX could not start:\n{answer.stderr}")
    backend, devices, count = answer.stdout.splitlines()[-3:]
    print("backend:     ", backend)
    print("devices:     ", devices)
    print("device count:", count)
    print(BACKEND_NOTES.get(backend, backend))
    return backend


def choose_preset(experiment: str, preset: str | None, backend: str) -> str:
    """The notebook's `preset` parameter, with None resolved for this backend.

    Args:
      experiment: "probe", "invariance" or "attack".
      preset: presets joined by commas ("" for the embedded default), or None to choose.
      backend: the backend JAX sees ("tpu", "gpu" or "cpu").

    Returns:
      `preset` itself, unless None: then the experiment's `ACCELERATOR_PRESETS` entry on a TPU
      or GPU and the embedded default ("") on CPU.
    """
    if preset is not None:
        return preset
    return ACCELERATOR_PRESETS[experiment] if backend in ("tpu", "gpu") else ""


def resolve_workdir(
    experiment: str, workdir: str | None, *, preset: str = "", drive_folder: str | None = None
) -> str:
    """The run's folder as an absolute path.

    Args:
      experiment: "probe", "invariance" or "attack".
      workdir: a folder, `~` allowed. None: without Drive, runs/<experiment>-<date>-<time> of the
        checkout, new at every run; on Drive, <drive_folder>/<experiment>-<preset>, the same at
        every run, so that running the notebook again resumes it.
      preset: the run's presets joined by commas ("" for the embedded default), which name the
        folder on Drive.
      drive_folder: the folder on the mounted Google Drive, or None without Drive. Relative
        workdirs are taken from it, or else from the checkout.

    Returns:
      The absolute path of the folder.
    """
    if drive_folder is None:
        base = REPOSITORY
        if workdir is None:
            stamp = f"{datetime.datetime.now():%Y%m%d-%H%M%S}"
            workdir = os.path.join("runs", f"{experiment}-{stamp}")
    else:
        base = os.path.expanduser(drive_folder)
        if workdir is None:
            workdir = f"{experiment}-{preset.replace(',', '-') or 'default'}"
    return os.path.join(base, os.path.expanduser(workdir))


def mount_drive() -> bool:
    """Mounts Google Drive at DRIVE_MOUNT when this kernel runs on Colab (asking for access the
    first time); False anywhere else, where `google.colab` cannot be imported."""
    try:
        from google.colab import drive  # only on Colab: not a dependency
    except ImportError:
        return False
    drive.mount(DRIVE_MOUNT)
    return True


def choose_workdir(
    experiment: str, preset: str, workdir: str | None, use_drive: bool, drive_folder: str
) -> str:
    """The notebook's `workdir`, `use_drive` and `drive_folder` parameters, as one folder.

    With `use_drive` on Colab, Drive is mounted and the folder is on it (`resolve_workdir`);
    outside Colab `use_drive` is skipped with a note. Prints the folder, and whether the run
    resumes from it.

    Raises:
      ValueError: `drive_folder` is not on the mounted Drive.
    """
    drive = None
    if use_drive:
        if mount_drive():
            mount = os.path.join(DRIVE_MOUNT, "")
            if not os.path.join(os.path.abspath(os.path.expanduser(drive_folder)), "").startswith(
                mount
            ):
                raise ValueError(
                    f"drive_folder={drive_folder!r} is not on Google Drive; choose a folder in "
                    f"{mount}, e.g. {DRIVE_FOLDER!r}."
                )
            drive = drive_folder
        else:
            print("use_drive: not on Colab, so Google Drive is not mounted; the workdir is local.")
    workdir = resolve_workdir(experiment, workdir, preset=preset, drive_folder=drive)
    if os.path.isdir(workdir) and os.listdir(workdir):
        print(
            f"workdir: {workdir} (it holds an earlier run: its runs resume from their checkpoints)"
        )
    else:
        print(f"workdir: {workdir}" + (" (on Google Drive: run again to resume)" if drive else ""))
    return workdir


def datasets_to_prepare(experiment: str, preset: str) -> list[str]:
    """The presets in `preset` (joined by commas) whose dataset is built before the run."""
    return [p for p in preset.split(",") if p in PREPARED_PRESETS[experiment]]


def main_args(
    experiment: str, preset: str, workdir: str, data_dir: str, extra_overrides: list[str]
) -> list[str]:
    """The arguments of `python -m gpj.main` for a notebook's run.

    Args:
      experiment: "probe", "invariance" or "attack".
      preset: presets joined by commas, "" for the embedded default.
      workdir: the run's folder.
      data_dir: the TensorFlow Datasets folder, passed on if a preset's dataset is prepared.
      extra_overrides: more `--config.…` flags; they come last, so that they win.

    Returns:
      The arguments, without `python -m gpj.main`.
    """
    config = f"configs/{experiment}.py" + (f":{preset}" if preset else "")
    args = [f"--config={config}", f"--workdir={workdir}"]
    if datasets_to_prepare(experiment, preset):
        args.append(f"--config.data.data_dir={os.path.expanduser(data_dir)}")
    return [*args, *extra_overrides]


def prepare_datasets(datasets: list[str], data_dir: str) -> None:
    """Builds each dataset into `data_dir` with `python -m gpj.prepare`; a built one is kept.

    Installs gpj's `tfds` extra first if TensorFlow Datasets is missing.
    """
    try:
        importlib.metadata.version("tensorflow-datasets")
    except importlib.metadata.PackageNotFoundError:
        run_streaming([*PIP_INSTALL_EDITABLE, f"{REPOSITORY}[tfds]"])
    data_dir_flag = f"--data_dir={os.path.expanduser(data_dir)}"
    for dataset in datasets:
        run_streaming([sys.executable, "-m", "gpj.prepare", dataset, data_dir_flag])


def run_experiment(
    experiment: str,
    preset: str | None,
    workdir: str | None,
    extra_overrides: list[str],
    *,
    backend: str,
    data_dir: str = "~/tensorflow_datasets",
    use_drive: bool = False,
    drive_folder: str = DRIVE_FOLDER,
) -> str:
    """Runs `python -m gpj.main` for a notebook, from the checkout, with live progress.

    Args:
      experiment: "probe", "invariance" or "attack".
      preset: the notebook's `preset` parameter; None chooses (see `choose_preset`).
      workdir: the notebook's `workdir` parameter (see `resolve_workdir`).
      extra_overrides: more `--config.…` flags.
      backend: the backend JAX sees, as `show_devices` returns it.
      data_dir: where TensorFlow Datasets builds and reads the preset's dataset, if any.
      use_drive: keep the workdir on Google Drive, mounted if this is Colab (`choose_workdir`).
      drive_folder: the folder on Drive that holds the workdirs.

    Returns:
      The run's folder, as an absolute path.

    Raises:
      RuntimeError: the run (or a dataset's preparation) failed; the message holds the end of
        its error output.
    """
    preset = choose_preset(experiment, preset, backend)
    workdir = choose_workdir(experiment, preset, workdir, use_drive, drive_folder)
    datasets = datasets_to_prepare(experiment, preset)
    if datasets:
        prepare_datasets(datasets, data_dir)
    args = main_args(experiment, preset, workdir, data_dir, extra_overrides)
    print("python -m gpj.main", *args, "\n")
    run_streaming([sys.executable, "-m", "gpj.main", *args])
    return workdir


def unlink_figures(report: str) -> str:
    """`report` with each figure line `![…](file.png)` replaced by "- `file.png` (shown below)".

    The report links its figures relative to the workdir, where a notebook cannot follow them.
    """
    return re.sub(r"^!\[[^\]]*\]\(([^)]*)\)$", r"- `\1` (shown below)", report, flags=re.MULTILINE)


def show_results(workdir: str) -> None:
    """Shows a finished run: where and how long it ran, report.md's tables, every figure.

    Args:
      workdir: the run's folder, holding results.json, report.md and the figures (*.png).
    """
    from IPython.display import Image, Markdown, display  # in a notebook only: not a dependency

    from gpj import results as results_file  # the standard library only, as this module

    results = results_file.read(workdir)
    environment = results["environment"]
    print(
        f"{results['experiment']}: {results['wall_time_s']:.0f} s on {environment['device_count']}"
        f" x {environment['device_kind']} ({environment['platform']}); files in {workdir}"
    )
    with open(os.path.join(workdir, "report.md")) as f:
        display(Markdown(unlink_figures(f.read())))
    for figure in sorted(glob.glob(os.path.join(workdir, "*.png"))):
        display(Markdown(f"**{os.path.basename(figure)}**"), Image(filename=figure))


def read_repository(pyproject: str | None = None) -> str:
    """The `Repository` entry of `[project.urls]` in pyproject.toml (default: the checkout's):
    the one place it is set."""
    with open(pyproject or PYPROJECT, "rb") as f:
        return tomllib.load(f)["project"]["urls"]["Repository"]


def github_name(repository: str) -> tuple[str, str]:
    """(owner, name) of a repository URL https://github.com/OWNER/NAME (`.git` allowed).

    Raises:
      ValueError: it is not such a URL; Colab opens notebooks from GitHub only.
    """
    match = GITHUB_URL.fullmatch(repository)
    if not match:
        raise ValueError(
            f"{repository!r} is not a GitHub repository URL (https://github.com/OWNER/NAME), "
            "which the Open in Colab badge needs"
        )
    return match.group(1), match.group(2)


def colab_link(repository: str, notebook: str) -> str:
    """The address that opens colab/<notebook>.ipynb of the repository's BRANCH in Colab."""
    owner, name = github_name(repository)
    return (
        f"https://colab.research.google.com/github/{owner}/{name}/blob/{BRANCH}/colab/"
        f"{notebook}.ipynb"
    )


def badge_line(repository: str, notebook: str) -> str:
    """The first line of a notebook: its Open in Colab badge, or while the repository is
    UNSET_REPOSITORY, how to set it."""
    if repository == UNSET_REPOSITORY:
        return UNSET_BADGE
    return f"[![Open In Colab]({COLAB_BADGE_IMAGE})]({colab_link(repository, notebook)})"


def notebook_path(notebook: str) -> str:
    return os.path.join(REPOSITORY, "colab", f"{notebook}.ipynb")


def is_setup_cell(cell: dict) -> bool:
    return cell["cell_type"] == "code" and "".join(cell["source"]).startswith("GPJ_REPO = ")


def stamped(nb: dict, notebook: str, repository: str) -> dict:
    """The notebook (as JSON) with the repository in its first markdown line (the badge) and in
    the first line of its setup cell; every other line as it was."""

    def with_first_line(cell, line):
        lines = "".join(cell["source"]).split("\n")
        lines[0] = line
        return {**cell, "source": [f"{x}\n" for x in lines[:-1]] + [lines[-1]]}

    setup = [i for i, cell in enumerate(nb["cells"]) if is_setup_cell(cell)]
    if nb["cells"][0]["cell_type"] != "markdown" or len(setup) != 1:
        raise ValueError(f"{notebook}: a notebook starts with a markdown cell, with one setup cell")
    cells = list(nb["cells"])
    cells[0] = with_first_line(cells[0], badge_line(repository, notebook))
    cells[setup[0]] = with_first_line(cells[setup[0]], SETUP_LINE.format(repository))
    return {**nb, "cells": cells}


def write_json(path: str, value) -> None:
    """Writes a notebook as nbformat does: sorted keys, one space of indent, a final newline."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n")


def stamp_notebooks(repository: str, check: bool = False) -> list[str]:
    """Stamps `repository` into every notebook (`stamped`).

    Args:
      repository: the URL.
      check: only compare: write nothing.

    Returns:
      The notebooks that differed (and, unless `check`, were rewritten).
    """
    changed = []
    for notebook in NOTEBOOKS:
        with open(notebook_path(notebook), encoding="utf-8") as f:
            nb = json.load(f)
        new = stamped(nb, notebook, repository)
        if new != nb:
            changed.append(notebook)
            if not check:
                write_json(notebook_path(notebook), new)
    return changed


def set_repository(repository: str, pyproject: str | None = None) -> None:
    """Writes `repository` as the `Repository` entry of `[project.urls]` in pyproject.toml
    (default: the checkout's), changing no other line.

    Raises:
      ValueError: it is not a GitHub repository URL, or pyproject.toml has no such entry.
    """
    github_name(repository)
    pyproject = pyproject or PYPROJECT
    with open(pyproject, encoding="utf-8") as f:
        text = f.read()
    section = re.search(r"^\[project\.urls\]\n(?:(?!\[).*\n?)*", text, flags=re.MULTILINE)
    entry = re.compile(r'^Repository = ".*"$', flags=re.MULTILINE)
    if not section or not entry.search(section.group(0)):
        raise ValueError(f"{pyproject} has no Repository entry in [project.urls]")
    new_section = entry.sub(f'Repository = "{repository}"', section.group(0), count=1)
    with open(pyproject, "w", encoding="utf-8") as f:
        f.write(text[: section.start()] + new_section + text[section.end() :])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m gpj.colab",
        description="Sets the repository the Colab notebooks clone (pyproject.toml [project.urls]"
        " Repository) and stamps it into each notebook's setup cell and Open in Colab badge.",
    )
    parser.add_argument("--repo", help="https://github.com/OWNER/NAME; default: pyproject.toml's")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a notebook disagrees"
    )
    args = parser.parse_args(argv)
    if args.repo and args.check:
        parser.error("--check compares with pyproject.toml; it takes no --repo")
    try:
        if args.repo:
            set_repository(args.repo.strip())
        repository = read_repository()
        changed = stamp_notebooks(repository, check=args.check)
    except ValueError as e:
        parser.error(str(e))
    if args.check:
        if changed:
            print(
                f"error: {', '.join(changed)} disagree with pyproject.toml's Repository "
                f"{repository}; run python -m gpj.colab",
                file=sys.stderr,
            )
            return 1
        print(f"every notebook has {repository}")
        return 0
    print(f"repository: {repository}; stamped: {', '.join(changed) or 'nothing to change'}")
    if repository == UNSET_REPOSITORY:
        print("it is the unset marker: set it with --repo=https://github.com/OWNER/NAME")
    return 0


if __name__ == "__main__":
    sys.exit(main())
