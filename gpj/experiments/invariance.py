"""Translation invariance (AugShift): does training make predictions and latents ignore shifts?

Variants: a single-view baseline with random shifts, the two-view control (lambda = 0), AugShift
(two shifted views, cross-entropy on both plus `augshift.weight` * MSE between their global-pooled
latents), BlurPool anti-aliasing, and AugShift with BlurPool. Evaluators (`config.evals`, default:
shift accuracy and consistency, and the linear position probe) measure every trained run.
"""

import dataclasses

from gpj import kinds, models, tasks
from gpj.analysis import stats
from gpj.data import shift, sources
from gpj.errors import ConfigError
from gpj.validation import check_choice, check_range


@dataclasses.dataclass(frozen=True)
class Variant:
    """How one variant trains: number of views, latent-MSE weight, BlurPool on or off."""

    views: int
    augshift: bool
    blur: bool


VARIANTS = {
    "baseline": Variant(views=1, augshift=False, blur=False),
    "two_view": Variant(views=2, augshift=False, blur=False),
    "augshift": Variant(views=2, augshift=True, blur=False),
    "blurpool": Variant(views=1, augshift=False, blur=True),
    "augshift_blurpool": Variant(views=2, augshift=True, blur=True),
}
METRICS = ("centred_accuracy", "shifted_accuracy", "consistency", "position_probe_accuracy")
# Paired by seed (a - b in consistency): AugShift against its fair control, the same two views
# without the latent term, and against the one-view baseline; the two views alone, too.
COMPARISONS = (("augshift", "two_view"), ("augshift", "baseline"), ("two_view", "baseline"))


EVALS = ("shift", "position_probe")  # what the report shows


def check(config) -> None:
    """Cheap checks of the invariance experiment's own fields."""
    check_choice(config, "shift.mode", shift.SHIFT_MODES)
    check_choice(config, "shift.pad_mode", ("zero", "reflect"))
    check_range(config, "shift.max_shift", 1, 10_000)
    check_range(config, "blurpool.filter_size", 1, 5)
    check_range(config, "augshift.weight", 0.0, float("inf"))
    if not config.variants:
        raise ConfigError(f"variants is empty; choose from: {', '.join(VARIANTS)}")
    for name in config.variants:
        if name not in VARIANTS:
            raise ConfigError(
                f"variants entry {name!r} is not valid; choose from: {', '.join(VARIANTS)}"
            )


def kind(config, name: str, dataset) -> kinds.Kind:
    """The runs of one variant (its folder is the variant's name)."""
    variant, s = VARIANTS[name], config.shift
    task = tasks.Shift(
        s.max_shift,
        s.mode,
        s.pad_mode,
        views=variant.views,
        weight=config.augshift.weight if variant.augshift else 0.0,
    )
    blur = config.blurpool.filter_size if variant.blur else 0
    return kinds.Kind(
        name=name,
        labels={"variant": name},
        config=config,
        data=dataset,
        task=task,
        model=models.from_config(
            config.model, num_classes=dataset.num_classes, head="linear", blur_filter=blur
        ),
        evals=config.evals,
        fingerprint={
            "variant": name,
            "shift": s.to_dict(),
            "augshift": config.augshift.to_dict(),
            "blurpool": config.blurpool.to_dict(),
        },
    )


def declare(config) -> list:
    """The run kinds: one per variant, on the images of `config.data`."""
    dataset = sources.from_config(config.data)
    return [kind(config, name, dataset) for name in config.variants]


def derived(runs: list) -> dict:
    """The results' fields computed from the runs: each variant's metrics over seeds, and the
    `COMPARISONS` of the variants that ran, paired by seed (with two seeds or more)."""
    summary = stats.summarise(runs, ("variant",), METRICS)
    for row in summary:  # the probe's chance depends only on the seeded offsets
        row["position_probe_chance"] = runs[0]["position_probe_chance"]
    present = {r["variant"] for r in runs}
    comparisons = [
        stats.paired(runs, "variant", a, b, "consistency")
        for a, b in COMPARISONS
        if {a, b} <= present and len({r["seed"] for r in runs}) > 1
    ]
    return {"summary": summary, "comparisons": comparisons}


def fields(config, declared: list) -> dict:
    """The images' data, the evaluated shifts and the chance accuracy."""
    dataset = declared[0].data
    return {
        "dataset": sources.summary(dataset, input=list(declared[0].task.input_shape(dataset)[1:])),
        "shift_grid": shift.shift_grid(config.shift.max_shift, config.evals.shift.step).tolist(),
        "chance": {"object": 1.0 / dataset.num_classes},
    }
