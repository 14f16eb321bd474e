"""optax optimizers and learning-rate schedules from the `optim` config."""

import optax

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")


def make_optimizer(cfg, total_steps: int) -> optax.GradientTransformation:
    """Builds the optimizer named by `cfg.name`.

    Weight decay is coupled L2 (added to the gradient before the update), the
    meaning of `weight_decay` in the official PyTorch code's optimizers.

    Args:
      cfg: the `optim` config: name, learning_rate, b1, b2, momentum,
        weight_decay, schedule, warmup_steps.
      total_steps: number of training steps, for the cosine schedule.
    """
    if cfg.schedule == "constant":
        lr = (
            optax.join_schedules(
                [
                    optax.linear_schedule(0.0, cfg.learning_rate, cfg.warmup_steps),
                    optax.constant_schedule(cfg.learning_rate),
                ],
                [cfg.warmup_steps],
            )
            if cfg.warmup_steps
            else cfg.learning_rate
        )
    else:
        lr = optax.warmup_cosine_decay_schedule(
            0.0, cfg.learning_rate, cfg.warmup_steps, max(total_steps, cfg.warmup_steps + 1)
        )
    if cfg.name == "adam":
        update = optax.adam(lr, b1=cfg.b1, b2=cfg.b2)
    else:
        update = optax.sgd(lr, momentum=cfg.momentum or None, nesterov=False)
    if cfg.weight_decay:
        return optax.chain(optax.add_decayed_weights(cfg.weight_decay), update)
    return update
