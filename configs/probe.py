"""Position probe: GAPNet vs PermuteNet on the location and object canvas tasks.

The config and its presets live in `gpj/configs/probe.py` (docstring: commands and runtimes).
"""

from gpj.configs.probe import get_config  # noqa: F401
