"""What the notebooks in colab/ run: install gpj, show JAX's devices, run an experiment, show it.

A notebook's first cell finds (or clones) a gpj checkout, puts it first on sys.path and imports
this module from it before pip has installed gpj, so this module uses the standard library only;
IPython is imported where the results are shown. JAX never starts in the notebook's kernel: a TPU
can be opened by one process at a time, so JAX is asked about devices, and the experiment runs,
in processes of their own.
"""

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


def resolve_workdir(experiment: str, workdir: str | None) -> str:
    """The run's folder as an absolute path: relative ones are taken from the checkout.

    Args:
      experiment: "probe", "invariance" or "attack".
      workdir: a folder, `~` allowed; None for runs/<experiment>-<date>-<time>.

    Returns:
      The absolute path of the folder.
    """
    if workdir is None:
        workdir = os.path.join("runs", f"{experiment}-{datetime.datetime.now():%Y%m%d-%H%M%S}")
    return os.path.join(REPOSITORY, os.path.expanduser(workdir))


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
) -> str:
    """Runs `python -m gpj.main` for a notebook, from the checkout, with live progress.

    Args:
      experiment: "probe", "invariance" or "attack".
      preset: the notebook's `preset` parameter; None chooses (see `choose_preset`).
      workdir: the notebook's `workdir` parameter (see `resolve_workdir`).
      extra_overrides: more `--config.…` flags.
      backend: the backend JAX sees, as `show_devices` returns it.
      data_dir: where TensorFlow Datasets builds and reads the preset's dataset, if any.

    Returns:
      The run's folder, as an absolute path.

    Raises:
      RuntimeError: the run (or a dataset's preparation) failed; the message holds the end of
        its error output.
    """
    preset = choose_preset(experiment, preset, backend)
    workdir = resolve_workdir(experiment, workdir)
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

    with open(os.path.join(workdir, "results.json")) as f:
        results = json.load(f)
    environment = results["environment"]
    print(
        f"{results['experiment']}: {results['wall_time_s']:.0f} s on {environment['device_count']}"
        f" x {environment['device_kind']} ({environment['platform']}); files in {workdir}"
    )
    with open(os.path.join(workdir, "report.md")) as f:
        display(Markdown(unlink_figures(f.read())))
    for figure in sorted(glob.glob(os.path.join(workdir, "*.png"))):
        display(Markdown(f"**{os.path.basename(figure)}**"), Image(filename=figure))
