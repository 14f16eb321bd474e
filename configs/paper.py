"""Every claim of the paper at embedded scale, and a scorecard.

The config and its presets live in `gpj/configs/paper.py` (docstring: the parts and runtimes).
"""

from gpj.configs.paper import get_config  # noqa: F401
