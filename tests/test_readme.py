"""The result tables of the README and the docs are exactly what the result files in results/
render."""

import json
import os
import pathlib
import re

import pytest

from gpj.report import readme

NOTE = "run python -m gpj.report.readme"


def test_every_page_is_what_the_result_files_render():
    texts = {path: pathlib.Path(path).read_text() for path in readme.pages()}
    for path, text in texts.items():
        assert readme.render(text) == text, f"{os.path.relpath(path, readme.ROOT)}: {NOTE}"
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
    # the README's scorecard, without the shuffle-depth table, beside the other runs
    scorecard = "paper_sequential beside paper_sequential_seeds2 paper paper_intel paper_seeds2"
    readme_text = texts[os.path.join(readme.ROOT, "README.md")]
    assert f"<!-- scorecard: {scorecard} -->" in readme_text
    assert len(readme_text.splitlines()) <= 200


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
    assert "| seeds | images_per_s_S1 | 721.1 |" in text and "| seeds | repeats | 5 |" in text
    assert "| seeds | canvases_per_s | 94,113 |" in text
    assert "`python -m gpj.bench --only=seeds`, on X, jax 0.1." in text
