"""JAX's persistent compilation cache: a second run of the same programs loads them from disk."""

import os

import jax


def default_dir() -> str:
    """$JAX_COMPILATION_CACHE_DIR if set, else `gpj/jax` in the user's cache folder."""
    cache_home = os.environ.get("XDG_CACHE_HOME") or os.path.join("~", ".cache")
    return os.environ.get("JAX_COMPILATION_CACHE_DIR") or os.path.join(cache_home, "gpj", "jax")


def enable(path: str) -> None:
    """Caches every compiled program in `path` (created if needed); an empty path disables it."""
    if not path:
        jax.config.update("jax_enable_compilation_cache", False)
        return
    jax.config.update("jax_compilation_cache_dir", os.path.expanduser(path))
    # gpj's programs are small enough that even the quick ones are worth keeping.
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
