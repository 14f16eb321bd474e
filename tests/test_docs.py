"""The documentation site builds without a broken link, and every command it and the README
show would start: its config file and presets exist and its overrides name valid fields."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest
from conftest import ROOT, parse_config

from gpj.report import readme


def shown_commands(text: str) -> list:
    """Every `python -m gpj.main ...` command in a page: in code blocks (continued lines joined)
    and in inline code, up to a comment, `&&`, or the end of the code."""
    text = re.sub(r"\\\n\s*", " ", text)
    found = []
    for code in re.findall(r"```[a-z]*\n(.*?)```", text, re.DOTALL) + re.findall(
        r"(?<!`)`([^`\n]+)`(?!`)", re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    ):
        for line in code.splitlines():
            for match in re.finditer(r"python -m gpj\.main (.*?)(?=\s+#|\s*&&|\s*;|$)", line):
                found.append(shlex.split(match.group(1)))
    return found


def check_command(args: list, page: str = "") -> None:
    """What `gpj.main` checks before any data is read: its flags exist, the config file and its
    presets load, the overrides name fields of the right type, every field's value is valid.
    Converted weights (`model.init_from`) must be what a `gpj.convert` command on the same
    `page` writes; the rest is checked as if they were absent."""
    from absl import flags

    import gpj.main  # noqa: F401  (defines the command's flags)
    from gpj.experiments import EXPERIMENTS, paper

    config_args = [a for a in args if a.startswith("--config")]
    for arg in args:
        name = arg.split("=")[0].lstrip("-")
        assert arg.startswith("--") and (arg in config_args or name in flags.FLAGS), (
            f"{arg}: gpj.main has no such flag"
        )
    config = parse_config(config_args)
    parts = [p for _, p in paper.parts(config)] if config.experiment == "paper" else []
    for c in (config, *parts):
        if c.get("model") and c.model.init_from:
            assert f"--out={c.model.init_from}" in page, (
                f"no gpj.convert writes {c.model.init_from}"
            )
            c.model.init_from = ""
            c.train.num_epochs = c.train.num_epochs or 1  # 0 evaluates the weights as loaded
        EXPERIMENTS[c.experiment].validate(c)


TEXTS = {os.path.relpath(page, ROOT): pathlib.Path(page).read_text() for page in readme.pages()}
COMMANDS = [
    (page, command)
    for page, text in TEXTS.items()
    for command in shown_commands(text)
    if not any("<" in arg or "…" in arg for arg in command)  # templates: configs/<name>.py, ARGS…
]


def test_the_pages_show_commands_of_every_experiment():
    configs = {arg for _, command in COMMANDS for arg in command if arg.startswith("--config=")}
    for experiment in ("probe", "invariance", "attack", "paper"):
        assert any(f"configs/{experiment}.py" in arg for arg in configs), experiment
    assert len(COMMANDS) >= 20


@pytest.mark.parametrize("page, command", COMMANDS, ids=[" ".join(c) for _, c in COMMANDS])
def test_every_shown_command_names_a_config_its_presets_and_valid_fields(page, command):
    check_command(command, TEXTS[page])


@pytest.mark.parametrize(
    "command, message",
    [
        (["--config=configs/probe.py:nope"], "nope"),
        (["--config=configs/probe.py", "--config.train.nope=1"], "nope"),
        (["--config=configs/probe.py", "--config.model.padding=mirror"], "model.padding"),
        (["--config=configs/paper.py", "--config.probe.num_seeds=0"], "num_seeds"),
        (["--config=configs/probe.py", "--work_dir=runs/x"], "no such flag"),
    ],
)
def test_the_command_check_finds_a_bad_command(command, message):
    with pytest.raises(Exception, match=message):
        check_command(command)


def test_the_docs_build_strict(tmp_path):
    """`mkdocs build --strict`: every page in the nav, every link and anchor found, every API
    page's module documented (mkdocstrings)."""
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "index.html").is_file()


def test_getting_started_shows_the_readmes_two_commands():
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", TEXTS["README.md"])
    assert len(commands) == 2
    for command in commands:
        assert command in TEXTS[os.path.join("docs", "index.md")]
