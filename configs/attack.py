"""Position-channel attack: rank channels by flip scores, ablate the top N beside N random ones.

The config and its presets live in `gpj/configs/attack.py` (docstring: commands and runtimes).
"""

from gpj.configs.attack import get_config  # noqa: F401
