"""The documentation site builds strictly, without a broken link or an end-of-life notice, its
generated tables are complete, and every command it and the README show would start: its config
file and presets exist and its overrides name valid fields."""

import json
import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest
from absl import flags
from conftest import ROOT, parse_config

from gpj.errors import ConfigError
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
    import gpj.main  # noqa: F401  (defines the command's flags)
    from gpj import experiments
    from gpj.experiments import paper

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
    experiments.check_fields(config)


ROOT_PATH = pathlib.Path(ROOT)
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
    "command, error, message",
    [
        (["--config=configs/probe.py:nope"], flags.IllegalFlagValueError, "nope"),
        (["--config=configs/probe.py", "--config.train.nope=1"], AttributeError, "nope"),
        (
            ["--config=configs/probe.py", "--config.model.padding=mirror"],
            ConfigError,
            "model.padding",
        ),
        (["--config=configs/paper.py", "--config.probe.num_seeds=0"], ConfigError, "num_seeds"),
        (["--config=configs/probe.py", "--work_dir=runs/x"], AssertionError, "no such flag"),
    ],
)
def test_the_command_check_finds_a_bad_command(command, error, message):
    with pytest.raises(error, match=message):
        check_command(command)


# What a build must not print: a notice that one of its tools is at or near its end of life, in
# its last maintenance, or deprecating what the site uses (Material for MkDocs printed one on
# every build; docs/layout.md says why the site moved to Sphinx).
NOTICE = re.compile(
    r"end[ -]of[ -]life|maintenance|no longer maintained|unmaintained|successor|deprecat",
    re.IGNORECASE,
)
# The packages whose every module the API page documents (their entry points aside).
PUBLIC = ("analysis", "convert", "data", "engine", "evaluators", "experiments", "models")


def test_the_docs_build_strict_and_print_no_end_of_life_notice(tmp_path):
    """`sphinx-build -W -c docs . SITE`, the command the README shows: every warning an error, so
    every page in the navigation, every link, anchor and image found, every module on the API
    page imported. And nothing it prints is an end-of-life, maintenance or deprecation notice."""
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "-c", "docs", ".", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    printed = done.stdout + done.stderr
    assert done.returncode == 0, printed[-5000:]
    assert not NOTICE.search(printed), NOTICE.search(printed).group(0) + "\n" + printed[-5000:]
    assert (tmp_path / "index.html").is_file() and (tmp_path / "docs" / "index.html").is_file()
    api = (tmp_path / "docs" / "api.html").read_text()
    for module in re.findall(r"automodule:: (\S+)", TEXTS[os.path.join("docs", "api.md")]):
        assert f'id="module-{module}"' in api, f"{module}: not on the built API page"
    # the results/ links of a page lead to the result files, the figures are in the site, and
    # the run reports in results/ are pages of it
    performance = (tmp_path / "docs" / "performance.html").read_text()
    (download,) = set(re.findall(r'href="\.\./(_downloads/\w+/bench_train\.json)"', performance))
    result_file = ROOT_PATH / "results" / "bench_train.json"
    assert (tmp_path / download).read_bytes() == result_file.read_bytes()
    probe = (tmp_path / "docs" / "probe.html").read_text()
    assert (tmp_path / "_images" / "paper_probe_per_cell_accuracy.png").is_file()
    assert 'src="../_images/paper_probe_per_cell_accuracy.png"' in probe
    assert (tmp_path / "results" / "paper30" / "scorecard.html").is_file()


def test_the_docs_folder_has_no_symlink():
    """Pages reach results/ through the build's configuration (docs/conf.py), not a symlink that
    some generators and GitHub's view do not follow."""
    links = [p.name for p in (ROOT_PATH / "docs").rglob("*") if p.is_symlink()]
    assert not links, links


PAGES = [ROOT_PATH / "README.md", *sorted((ROOT_PATH / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a markdown link's or image's target


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_resolves_from_its_page(page):
    """Where the page is read, on GitHub as on the site: from the page's own folder."""
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.DOTALL)
    targets = {t.split("#")[0] for t in LINK.findall(text) if not re.match(r"\w+:|#", t)}
    missing = [t for t in sorted(targets) if not (page.parent / t).exists()]
    assert not missing, f"{page.name}: {missing}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_figure_has_its_caption_under_it(page):
    """The paragraph under each image is its caption in italics; on the docs pages, the one
    its renderer wrote (a caption block naming the same figure)."""
    lines = [line for line in page.read_text().split("\n") if line.strip()]
    for i, line in enumerate(lines):
        image = re.match(r"!\[[^\]]*\]\(([^)]+\.png)\)$", line)
        if not image:
            continue
        under = lines[i + 1]
        if page.parent.name == "docs":
            figure = os.path.relpath(page.parent / image.group(1), ROOT_PATH / "results")
            assert under == f"<!-- caption: {figure} -->", f"{page.name}: {line}"
            assert lines[i + 2].startswith("*"), f"{page.name}: {line}"
        else:
            assert under.startswith("*"), f"{page.name}: {line}"


def test_every_committed_figure_has_a_caption():
    with open(ROOT_PATH / "results" / "captions.json") as f:
        captions = json.load(f)
    figures = {
        str(p.relative_to(ROOT_PATH / "results")) for p in ROOT_PATH.glob("results/**/*.png")
    }
    assert set(captions) == figures
    assert all(isinstance(c, str) and len(c) > 40 for c in captions.values())


def test_a_caption_block_of_an_unknown_figure_names_it():
    with pytest.raises(FileNotFoundError, match="no caption of 'nope.png'"):
        readme.render("<!-- caption: nope.png -->\n<!-- /caption -->\n")


def test_the_api_page_documents_every_public_module():
    import importlib
    import pkgutil

    documented = set(re.findall(r"automodule:: (\S+)", TEXTS[os.path.join("docs", "api.md")]))
    for package in PUBLIC:
        path = importlib.import_module(f"gpj.{package}").__path__
        for module in pkgutil.iter_modules(path, f"gpj.{package}."):
            if not module.name.endswith("__main__"):
                assert module.name in documented, f"docs/api.md does not document {module.name}"
    assert {"gpj.driver", "gpj.kinds", "gpj.tasks", "gpj.models"} <= documented


def test_a_ratios_block_sets_each_ratio_against_its_goal(tmp_path):
    (tmp_path / "results").mkdir()
    measured = {"ratio_vs_torch": 1.25, "fraction_of_matmul_peak": 0.25, "cpu": "X", "jax": "0.1"}
    (tmp_path / "results" / "bench_train.json").write_text(json.dumps({"train": measured}))
    text = readme.render("<!-- ratios: train -->\nstale\n<!-- /ratios -->\n", str(tmp_path))
    assert "stale" not in text
    rows = [line for line in text.splitlines() if line.startswith("| `train`")]
    assert len(rows) == 2
    assert "**1.25×** | ≥ 1× | met | X |" in rows[0]
    assert "**0.25** | ≥ 0.5 | **not met** | X |" in rows[1]
    assert "[`results/bench_train.json`](results/bench_train.json)" in text
    # every benchmark of the page's block, each against the goal the page states
    page = TEXTS[os.path.join("docs", "performance.md")]
    assert "<!-- ratios: bench -->" in page
    assert page.index("<!-- ratios: bench -->") < page.index("<!-- bench: ")
    del measured["fraction_of_matmul_peak"]
    (tmp_path / "results" / "bench_train.json").write_text(json.dumps({"train": measured}))
    with pytest.raises(KeyError, match="fraction_of_matmul_peak"):
        readme.render("<!-- ratios: train -->\n<!-- /ratios -->\n", str(tmp_path))


@pytest.mark.parametrize("name", ["probe", "invariance", "attack", "paper"])
def test_a_config_block_describes_every_field_from_its_comment(name):
    text = readme.render(f"<!-- config: {name} -->\n<!-- /config -->\n")
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    assert rows
    for row in rows:
        field, _, description = (cell.strip() for cell in row.strip("|").split(" | "))
        assert description, f"{field} of configs/{name}.py has no comment to describe it"
    # a comment at the end of the line, one above it, and one in the section it comes from
    described = {row.split(" | ")[0].strip("| `"): row.split(" | ")[2] for row in rows}
    if name == "probe":
        assert described["data.grid_size"].startswith("the canvas is grid_size * image_size")
        assert described["runs"].startswith('Each run is "head:task"')
        assert described["model.padding"].startswith("zero \\| reflect \\| replicate")
        assert described["train.stop_on_plateau"].startswith("Plateau stop")
    if name == "paper":  # set in a loop over the parts
        assert described["shuffle_layer_3"] == described["shuffle_layer_1"]
        assert described["shuffle_layer_1"].startswith("claim 2")


def test_config_comments_reads_helpers_updates_and_computed_keys():
    from gpj.configs import paper, sections

    comments = readme.config_comments(paper.get_config)
    assert readme.field_comment(comments, ("shuffle_layer_2",)).startswith("claim 2")
    assert readme.field_comment(comments, ("alpha",)).startswith("each row's two-sided error")
    assert readme.field_comment(comments, ("experiment",)) != comments[("*",)]
    train = readme.config_comments(sections.train)
    assert train[("plateau_on",)].startswith("What plateaus: train_loss")
    probe = readme.config_comments(sys.modules["gpj.configs.probe"].converged)
    assert ("train", "plateau_on") in probe  # set by `c.train.update(...)`


def test_getting_started_shows_the_readmes_two_commands():
    commands = re.findall(r"```bash\n(python3 -m venv .*?)\n```", TEXTS["README.md"])
    assert len(commands) == 2
    for command in commands:
        assert command in TEXTS[os.path.join("docs", "index.md")]
