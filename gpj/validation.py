"""Config checks that fail fast with one line naming the field and what is valid. `where` is
the dotted path of `config` itself in the full config (e.g. "evals.attack."), for messages."""

from collections.abc import Iterable

from gpj.errors import ConfigError


def field(config, path: str):
    """The value at a dotted path such as `model.padding`."""
    value = config
    for key in path.split("."):
        value = value[key]
    return value


def check_choice(config, path: str, allowed: Iterable, where: str = "") -> None:
    allowed = tuple(allowed)
    if field(config, path) not in allowed:
        raise ConfigError(
            f"{where}{path}={field(config, path)!r} is not valid; choose one of: "
            f"{', '.join(map(str, allowed))}"
        )


def check_positive(config, path: str, where: str = "") -> None:
    value = field(config, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{where}{path}={value!r} must be a positive number")


def check_range(config, path: str, low, high, where: str = "") -> None:
    value = field(config, path)
    if not low <= value <= high:
        raise ConfigError(f"{where}{path}={value!r} must be between {low} and {high}")
