"""One training engine for every gpj experiment."""

from gpj.engine.loop import Lane, fit, plateaued, restore, stack_states, val_plateaued
from gpj.engine.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from gpj.engine.parallel import (
    check_batch_size,
    make_mesh,
    replicated,
    seed_mesh,
    seeds_sharding,
    shard_batch,
    shard_seeds_batch,
)
from gpj.engine.state import TrainState, compile_init, create_state
from gpj.engine.steps import (
    compile_eval_step,
    compile_seeds_train_step,
    compile_train_step,
    evaluate,
)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "Lane",
    "TrainState",
    "check_batch_size",
    "compile_eval_step",
    "compile_init",
    "compile_seeds_train_step",
    "compile_train_step",
    "create_state",
    "evaluate",
    "fit",
    "make_mesh",
    "make_optimizer",
    "plateaued",
    "replicated",
    "restore",
    "seed_mesh",
    "seeds_sharding",
    "shard_batch",
    "shard_seeds_batch",
    "stack_states",
    "val_plateaued",
]
