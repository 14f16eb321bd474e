"""What `python -m gpj.main` says before it runs: its usage, where a config file is, and any
command-line mistake as one line."""

import importlib
import os
import re

from gpj.configs.evals import MOVED, override

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


def old_evals(argv: list) -> str | None:
    """The one-line error for an override that gives `evals` as a list of names, as an older gpj
    took it, or None."""
    for arg in argv:
        flag, _, value = arg.partition("=")
        if re.fullmatch(r"--config\.(\w+\.)?evals", flag) and value.strip()[:1] in "([":
            names = re.findall(r"\w+", value)
            return (
                f"{flag} is now a map of evaluator names to their settings (empty: the "
                f"defaults): {override(names, flag)}"
            )
    return None


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
        if moved := moved_field(bad[0]):
            return f"{bad[0]} is now {moved} (evaluator settings sit under evals.<name>)"
        suggestion = re.search(r'Did you mean "([^"]+)"', text)
        hint = (
            f"; did you mean {suggestion[1]!r}?"
            if suggestion
            else "; see the config file for the fields and their defaults"
        )
        return f"{bad[0]}: the config has no field {key!r}{hint}"
    return f"{argv_flag(argv, '--config')}: {type(error).__name__}: {error}"


def moved_field(flag: str) -> str | None:
    """The new spelling of an override `--config.<path>` that names a field `MOVED` (the last
    place in the path where an old field starts: a paper part's `attack.attack.fill` is
    `attack.evals.attack.fill`), or None."""
    path = flag.removeprefix("--config.")
    keys = path.split(".")
    for start in reversed(range(len(keys))):
        for old, new in MOVED.items():
            n = old.count(".") + 1
            after_evals = start and keys[start - 1] == "evals"  # already the new spelling
            if ".".join(keys[start : start + n]) == old and not after_evals:
                return "--config." + ".".join([*keys[:start], new, *keys[start + n :]])
    return None
