"""What `python -m gpj.main` says before it runs: its usage, where a config file is, and any
command-line mistake as one line."""

import importlib
import os
import re

CONFIGS = ("probe", "invariance", "attack", "paper")  # gpj/configs/<name>.py, run by name
PACKAGE_CONFIGS = os.path.join(os.path.dirname(__file__), "configs")


def usage() -> str:
    """The `--help` text: the command, every config with its presets, the general flags."""
    lines = [
        "Runs one gpj experiment from a config file.",
        "",
        "  python -m gpj.main --config=configs/NAME.py[:PRESET,...] [--config.FIELD=VALUE ...]",
        "                     [--workdir=DIR] [--print_config]",
        "",
        "Configs (found from any folder) and their presets, combined with commas:",
    ]
    for name in CONFIGS:
        presets = importlib.import_module(f"gpj.configs.{name}").PRESETS
        lines.append(f"  configs/{name}.py: {', '.join(presets)}")
    lines += [
        "",
        "Every field, its default and what it does: docs/configs.md, or --print_config.",
        "  --workdir=DIR      output folder (default: runs/<experiment>-<time>); a finished or",
        "                     interrupted run there resumes",
        "  --print_config     print the resolved config (presets and overrides applied), then exit",
        "  --helpfull         every flag, the multi-process and XLA ones included",
    ]
    return "\n".join(lines)


def resolve_config(argv: list) -> list:
    """`argv` with `--config=configs/NAME.py[:presets]` pointing at the installed gpj config
    when no such file exists from the current folder, so the README's commands run anywhere."""
    resolved = []
    for arg in argv:
        match = re.fullmatch(r"--config=(?:configs/)?(\w+)\.py(:.*)?", arg)
        if match and match[1] in CONFIGS and not os.path.exists(arg.split("=", 1)[1].split(":")[0]):
            arg = f"--config={os.path.join(PACKAGE_CONFIGS, match[1] + '.py')}{match[2] or ''}"
        resolved.append(arg)
    return resolved


def argv_flag(argv, name: str) -> str:
    """The command-line argument that set flag `name` (for error messages)."""
    return next((a for a in argv if a.split("=")[0] == name), name)


def one_line(error: Exception, argv: list) -> str:
    """A config file's or override's failure as one line: a mistyped field names the override
    and ml_collections' suggestion; anything else the config file and the cause."""
    # ml_collections' message for a missing field is the repr of a KeyError's: quotes and a
    # literal "\n" before "Did you mean ...".
    text = str(error)
    key = (re.match(r"[\\'\"]*(\w+)", text) or [None, ""])[1]
    bad = [
        a.split("=")[0]
        for a in argv
        if a.startswith("--config.") and key in a.split("=")[0].split(".")
    ]
    if isinstance(error, (AttributeError, KeyError)) and bad:  # an override names no field
        suggestion = re.search(r'Did you mean "([^"]+)"', text)
        hint = (
            f"; did you mean {suggestion[1]!r}?"
            if suggestion
            else "; see the config file for the fields and their defaults"
        )
        return f"{bad[0]}: the config has no field {key!r}{hint}"
    return f"{argv_flag(argv, '--config')}: {type(error).__name__}: {error}"
