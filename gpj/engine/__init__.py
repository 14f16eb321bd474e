"""One training engine for every gpj experiment."""

from gpj.engine.loop import fit
from gpj.engine.optim import OPTIMIZERS, SCHEDULES, make_optimizer
from gpj.engine.parallel import check_batch_size, make_mesh, replicated, shard_batch
from gpj.engine.state import TrainState, create_state
from gpj.engine.steps import compile_eval_step, compile_train_step, evaluate

__all__ = ["fit", "OPTIMIZERS", "SCHEDULES", "make_optimizer", "check_batch_size",
           "make_mesh", "replicated", "shard_batch", "TrainState", "create_state", "compile_eval_step",
           "compile_train_step", "evaluate"]
