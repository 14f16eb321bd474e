"""The result tables of the README and the docs are exactly what the result files in results/
render."""

import json
import os
import pathlib
import re

import pytest
from test_claims import _depth_probe, _scorecard

from gpj import results as results_file
from gpj.analysis import claims, sequential
from gpj.report import readme

NOTE = "run python -m gpj.report.readme"


def test_every_page_is_what_the_result_files_render():
    texts = {path: pathlib.Path(path).read_text() for path in readme.pages()}
    for path, text in texts.items():
        assert readme.render(text, folder=readme.folder_of(path)) == text, (
            f"{os.path.relpath(path, readme.ROOT)}: {NOTE}"
        )
    every = "\n".join(texts.values())
    blocks = re.findall(r"<!-- (results|scorecard): (\w+)(?: beside ([\w ]+))? -->", every)
    names = {name for _, *block in blocks for name in " ".join(block).split()}
    assert {"paper", "paper_sequential", "probe", "paper_attack", "paper_shuffle_depth"} <= names
    assert {"seeds", "experiment", "train", "levers"} <= set(
        re.findall(r"<!-- bench: (\w+) -->", every)
    )
    assert {"probe", "invariance", "attack", "paper"} <= set(
        re.findall(r"<!-- config: (\w+) -->", every)
    )
    readme_text = texts[os.path.join(readme.ROOT, "README.md")]
    assert "<!-- headline: paper30 paper_sequential -->" in readme_text


def test_the_readme_is_a_front_page():
    """At most 150 lines; a headline table of one row per claim in at most 5 columns; the
    sentence that says at what scale every verdict was measured."""
    text = pathlib.Path(readme.ROOT, "README.md").read_text()
    assert len(text.splitlines()) <= 150
    block = text.split("<!-- headline: ")[1].split("<!-- /headline -->")[0]
    header, rule, *rows = block.splitlines()[1:]
    assert rule.count("|") == header.count("|") <= 6  # at most 5 columns
    assert [row.split(" | ")[0] for row in rows] == [
        f"| {k}. {readme.report.paper.CLAIMS[k]}" for k in range(1, 6)
    ]
    scale = " ".join(text.split())
    assert "every verdict below comes from 16×16 embedded handwritten digits" in scale
    assert "no GPU, TPU, Colab or paper-scale run has been made yet" in scale


def test_a_config_block_lists_every_field_with_its_default():
    from gpj.configs import probe

    text = readme.render("<!-- config: probe -->\n<!-- /config -->\n")
    config = probe.get_config()
    assert f"| `model.padding` | `{config.model.padding!r}` |" in text
    assert f"| `train.num_epochs` | `{config.train.num_epochs!r}` |" in text
    assert "`controls`" in text and "`tiny`" in text


def test_a_config_block_of_no_config_names_the_missing_file():
    with pytest.raises(FileNotFoundError, match=r"config block 'nope' needs gpj/configs/nope\.py"):
        readme.render("<!-- config: nope -->\n<!-- /config -->\n")


def test_a_block_without_its_result_file_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"README block 'probe' needs .*probe\.json"):
        readme.render("<!-- results: probe -->\n<!-- /results -->\n", str(tmp_path))


def test_a_bench_block_is_the_benchmark_file_as_a_table(tmp_path):
    (tmp_path / "results").mkdir()
    measured = {
        "seeds": {
            "images_per_s_S1": 721.06,
            "canvases_per_s": 94113.2,
            "repeats": 5,
            "cpu": "X",
            "jax": "0.1",
        }
    }
    with open(tmp_path / "results" / "bench_seeds.json", "w") as f:
        json.dump(measured, f)
    text = readme.render(
        "before\n<!-- bench: seeds -->\nstale\n<!-- /bench -->\nafter\n", str(tmp_path)
    )
    assert "stale" not in text and text.startswith("before\n") and text.endswith("after\n")
    # one table per benchmark, named once in its header; the machine is in the line below it
    assert "| `seeds` | value |" in text and "| `images_per_s_S1` | 721.1 |" in text
    assert "| `repeats` | 5 |" in text and "| `canvases_per_s` | 94,113 |" in text
    assert "`cpu`" not in text and "`jax`" not in text
    assert "`python -m gpj.bench --only=seeds`, on X, jax 0.1." in text


INTERVAL = re.compile(
    r"(?<![\w.])([+-]?\d+(?:\.\d+)?)‡? \[([+-]?\d+(?:\.\d+)?)‡?, ([+-]?\d+(?:\.\d+)?)‡?\]"
)


def intervals(text: str):
    """(mean, low, high, signed, where) of every `mean [low, high]` in `text`, leaving out the
    cells of columns whose header names R² (a share of variance explained: unbounded below)."""
    header = []
    for line in text.splitlines():
        cells = [line] if not line.startswith("|") else line.strip("|").split(" | ")
        if line.startswith("|---"):
            continue
        if line.startswith("|") and not header:
            header = cells
            continue
        header = header if line.startswith("|") else []
        for i, cell in enumerate(cells):
            if line.startswith("|") and i < len(header) and "R²" in header[i]:
                continue
            for m in INTERVAL.finditer(cell):
                mean, low, high = map(float, m.groups())
                yield mean, low, high, m.group(1)[0] in "+-", m.group(0)


def test_no_rendered_interval_leaves_its_metric_range():
    """Every block of every page, and the printed table of every result file (what the main job
    prints), keeps its intervals inside the metric's range: 0–100 % for a rate, ±100 points for
    a signed difference; clipped ends are marked ‡."""
    from gpj import report

    texts = [
        readme.BLOCKS[m.group(2)](m.group(3))
        for path in readme.pages()
        for m in readme.BLOCK.finditer(pathlib.Path(path).read_text())
    ]
    for path in sorted(pathlib.Path(readme.ROOT, "results").glob("**/*.json")):
        results = json.loads(path.read_text())
        if isinstance(results.get("experiment"), str) and results["experiment"] in report.RENDERERS:
            texts.append(report.table(results))
    found = [i for text in texts for i in intervals(text)]
    assert len(found) > 300
    for mean, low, high, signed, where in found:
        assert (-100 if signed else 0) <= low <= mean <= high <= 100, where
    assert any("‡" in where for *_, where in found)  # the clipping shows


def test_a_second_run_renders_as_a_stability_column(tmp_path):
    """README block `first beside other third`: the scorecard with each other run's verdict,
    stage, CPU and jax version per row, and where every run came from."""

    def paper_results(permutenet_object, cpu):
        outcome = {"shuffle_layer_4": _depth_probe(permutenet_object)}
        outcome["shuffle_layer_4"]["environment"]["cpu"] = cpu
        rows = _scorecard(outcome)
        return {
            "experiment": "paper",
            "config": {"shuffle_layer_4": {"num_seeds": 3}},
            "parts": {"shuffle_layer_4": "shuffle_layer_4/results.json"},
            "claims": rows,
            "design": sequential.operating_characteristics(sequential.Design((3,)), (1,)),
            "environment": {
                "argv": ["--config=configs/paper.py"],
                "device_count": 2,
                "platform": "cpu",
                "cpu": cpu,
                "packages": {"jax": "0.0"},
            },
            "wall_time_s": 60.0,
        }

    (tmp_path / "results").mkdir()
    for name, accuracy, cpu in (
        ("first", [0.2, 0.25, 0.22], "CPU A"),
        ("other", [0.93, 0.9, 0.94], "CPU B"),
        ("third", [0.2, 0.21, 0.23], "CPU C"),
    ):
        results_file.write(paper_results(accuracy, cpu), str(tmp_path / "results" / f"{name}.json"))
    block = "<!-- results: first beside other third -->\n<!-- /results -->\n"
    text = readme.render(block, str(tmp_path))
    assert "**Claim 2: Semantics are largely not channel-order dependent.** Measured:" in text
    assert "| setting | difference, points [interval] | verdict | in the other runs |" in text
    row = next(line for line in text.splitlines() if "shuffle layer 4" in line)
    assert f"**{claims.NOT_SUPPORTED}**" in row and "CPU A, jax 0.0" in row
    assert f"`other`: {claims.SUPPORTED} (stage 1, CPU B, jax 0.0)" in row
    assert f"`third`: {claims.NOT_SUPPORTED} (stage 1, CPU C, jax 0.0)" in row
    assert "At paper scale: `python -m gpj.main --config=configs/probe.py:" in text
    assert row.index("CPU B") < row.index("CPU C")
    rule = next(line for line in text.splitlines() if line.startswith("Verdicts by one rule"))
    assert "Simulated over 1,048,576 studies" in rule and "the scorecard's 1 row, " in rule
    assert "a part with two open rows 9." in rule  # ≈ 1 − 0.95², each rate ± its MC error
    assert "earlier fixed-n" not in rule  # one stage: no earlier look to state
    assert "`other`: *From [`results/other.json`]" in text
    assert "`third`: *From [`results/third.json`]" in text
