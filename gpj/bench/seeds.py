"""`seeds`: S seeds of the default probe model trained side by side in one program, against the
same seeds one after another; and one seed in the stacked program (a seed axis of one) against
the plain one-seed program, the two shapes of `engine.fit`.

The default main job's GAPNet (ResNet-18 at width 0.25, paper stem) on the location task: 16x16
digits pasted on a 3x3 grid (48x48 canvases), batch 48 per seed, Adam. One after another, S seeds
take S times the one-seed step, so their images/s is the one-seed program's. In one program the
seed axis is split over the devices (`engine.seed_mesh`) and vmapped within each device's share.
"""

import jax
import numpy as np

from gpj import engine, models, tasks
from gpj.bench.timing import interleaved_rates
from gpj.configs import sections

SEEDS = (1, 2, 4, 8)
BATCH_SIZE = 48
IMAGE_SIZE = 16
GRID_SIZE = 3
# Each side's turn in a round: steps back to back for about this long, as in training (a single
# step after another program's ran up to 1.4x slower).
ROUND_S = 2.0


def _side(seeds: int, stacked: bool = True):
    """A function of no arguments running one train step of `seeds` seeds (one seed: the plain
    program unless `stacked`), and its images."""
    model = models.build_model(
        "resnet18", num_classes=GRID_SIZE**2, width=0.25, stem="paper", head="gapnet"
    )
    tx = engine.make_optimizer(sections.optim(), total_steps=1)
    objective = tasks.Canvas(GRID_SIZE, "location").objective
    mesh = engine.make_mesh()
    init = engine.compile_init(
        model, tx, (1, GRID_SIZE * IMAGE_SIZE, GRID_SIZE * IMAGE_SIZE, 1), mesh
    )
    rng = np.random.default_rng(0)
    batch = {
        "image": rng.random((seeds, BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE, 1), np.float32),
        "label": np.zeros((seeds, BATCH_SIZE), np.int32),
    }
    if seeds == 1 and not stacked:
        step = engine.compile_train_step(objective, mesh)
        holder = {"state": init(0)}
        one = engine.shard_batch({k: v[0] for k, v in batch.items()}, mesh)
        args = (one,)
    else:
        seed_mesh = engine.seed_mesh(mesh, np.gcd(seeds, jax.local_device_count()))
        step = engine.compile_seeds_train_step(objective, seed_mesh)
        holder = {"state": engine.stack_states([init(s) for s in range(seeds)], seeds, seed_mesh)}
        active = np.ones(seeds, bool)
        sharding = engine.seeds_sharding(seed_mesh)
        args = (
            engine.shard_seeds_batch(batch, seed_mesh),
            jax.make_array_from_callback(active.shape, sharding, active.__getitem__),
        )

    def run_step():
        holder["state"], metrics = step(holder["state"], *args)
        return metrics["loss"]

    return run_step, seeds * BATCH_SIZE


def run(repeats: int) -> dict:
    sides = {f"S={s}": _side(s, stacked=s > 1) for s in SEEDS}
    sides["S=1 stacked"] = _side(1)
    rates = interleaved_rates(sides, repeats, min_round_s=ROUND_S)
    one = rates["S=1"]
    out = {}
    for s in SEEDS:
        out[f"images_per_s_S{s}"] = rates[f"S={s}"]
        out[f"speedup_vs_one_after_another_S{s}"] = rates[f"S={s}"] / one
    out["images_per_s_S1_stacked"] = rates["S=1 stacked"]
    out["stacked_vs_plain_S1"] = rates["S=1 stacked"] / one
    return {
        **out,
        "repeats": repeats,
        "round_s": ROUND_S,
        "model": "GAPNet ResNet-18 (width 0.25, paper stem), 48x48 canvases, batch 48 per seed, Adam",
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
    }
