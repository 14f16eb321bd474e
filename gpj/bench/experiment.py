"""`experiment`: the default main job's training, all its runs and seeds, against the official
code's way: a PyTorch model of it training the same runs and seeds one after another.

gpj's side runs `python -m gpj.main --config=configs/probe.py` twice with one fresh compilation
cache (as `probe_default`) and adds up its training time (each program of stacked seeds once),
compilation included: cold (every program compiled) and warm (loaded from the cache). The
PyTorch side trains the same four runs (GAPNet and PermuteNet, location and object) and seeds
with the same model (ResNet-18 at width 0.25, paper stem), data (the embedded digits, the same
batch of each seed and step), canvases (pasted per sample on the host, as the official data
loader does), batch size, optimizer and number of steps, with as many threads as cores.
"""

import shutil
import tempfile
import time

import numpy as np

from gpj.bench import canvas, probe_default
from gpj.bench.timing import torch_on_every_core
from gpj.configs import probe
from gpj.data import batches, sources
from gpj.engine import cpu_devices


def training_time(results: dict) -> float:
    """Seconds a finished job spent training: each program's time once (its seeds share it)."""
    programs = {}
    for row in results["runs"]:
        key = (row["head"], row["task"], tuple(row.get("program_seeds") or [row["seed"]]))
        programs[key] = row["train_time_s"]
    return sum(programs.values())


def _torch_training(config) -> float:
    """Seconds the official way takes to train every run and seed of `config`, one after another."""
    import torch

    from gpj.bench import torch_reference

    c = config
    data = sources.load_dataset(c.data.name, image_size=c.data.image_size, channels=c.data.channels)
    images = torch.from_numpy(np.ascontiguousarray(data.train_images.transpose(0, 3, 1, 2)))
    labels = torch.from_numpy(data.train_labels.astype(np.int64))
    n, grid = len(labels), c.data.grid_size
    steps = c.train.num_epochs * batches.steps_per_epoch(n, c.train.batch_size)
    width = int(64 * c.model.width)
    started = time.perf_counter()
    for spec in c.runs:
        head, task = spec.split(":")
        classes = grid * grid if task == "location" else data.num_classes
        for seed in range(c.seed, c.seed + c.num_seeds):
            torch.manual_seed(seed)
            step = torch_reference.make_train_step(
                classes,
                c.optim.learning_rate,
                (c.optim.b1, c.optim.b2),
                in_channels=c.data.channels,
                width=width,
                head=head,
            )
            for s in range(steps):
                idx = torch.from_numpy(batches.train_batch_indices(n, c.train.batch_size, seed, s))
                cells = torch.randint(0, grid * grid, (len(idx),))
                canvases = canvas.loop_canvases(torch, images[idx], cells.tolist(), grid)
                step(canvases, cells if task == "location" else labels[idx])
    return time.perf_counter() - started


def run(repeats: int) -> dict:
    """`repeats` is ignored: each side trains the whole job once (gpj: cold, then warm)."""
    del repeats
    try:
        import torch
    except ImportError:
        raise SystemExit(
            "error: the experiment benchmark compares with PyTorch; install the torch extra "
            "(pip install -e '.[torch]') or leave it out with --only"
        ) from None
    root = probe_default.repository_root()
    argv = ["-m", "gpj.main", f"--config={probe_default.CONFIG}"]
    cache = tempfile.mkdtemp(prefix="gpj-experiment-cache-")
    try:
        (cold_s, _, cold), (warm_s, _, warm) = (
            probe_default.run_job(root, [*argv, f"--compilation_cache={cache}"]) for _ in range(2)
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    config = probe.get_config(None)
    with torch_on_every_core(torch):
        torch_s = _torch_training(config)
    gpj_s = training_time(warm)
    return {
        "gpj_training_s": gpj_s,
        "gpj_training_cold_s": training_time(cold),
        "torch_training_s": torch_s,
        "ratio_vs_torch": torch_s / gpj_s,
        "ratio_vs_torch_cold": torch_s / training_time(cold),
        "gpj_job_wall_s": warm_s,
        "gpj_job_wall_cold_s": cold_s,
        "seeds_per_program": config.train.seeds_per_program,
        "runs": f"{len(config.runs)} runs x {config.num_seeds} seeds",
        "torch_threads": cpu_devices.cpu_cores(),
        "torch_version": torch.__version__,
        "goal_ratio_vs_torch": 1.5,
    }
