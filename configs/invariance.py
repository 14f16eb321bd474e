"""Translation invariance: baseline vs AugShift vs BlurPool vs both, on shifted images.

The config and its presets live in `gpj/configs/invariance.py` (docstring: commands and runtimes).
"""

from gpj.configs.invariance import get_config  # noqa: F401
