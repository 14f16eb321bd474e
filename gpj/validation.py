"""Config checks that fail fast with one line naming the field and what is valid."""

from collections.abc import Iterable

from gpj.errors import ConfigError


def field(config, path: str):
    """The value at a dotted path such as `model.padding`."""
    value = config
    for key in path.split("."):
        value = value[key]
    return value


def check_choice(config, path: str, allowed: Iterable) -> None:
    allowed = tuple(allowed)
    if field(config, path) not in allowed:
        raise ConfigError(
            f"{path}={field(config, path)!r} is not valid; choose one of: "
            f"{', '.join(map(str, allowed))}"
        )


def check_positive(config, path: str) -> None:
    value = field(config, path)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise ConfigError(f"{path}={value!r} must be a positive number")


def check_range(config, path: str, low, high) -> None:
    value = field(config, path)
    if not low <= value <= high:
        raise ConfigError(f"{path}={value!r} must be between {low} and {high}")
