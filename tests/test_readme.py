"""The README's result tables are exactly what the result files in results/ render."""

import json
import os
import re

import pytest

from gpj.report import readme


def test_readme_tables_are_rendered_from_the_result_files():
    with open(os.path.join(readme.ROOT, "README.md")) as f:
        text = f.read()
    blocks = re.findall(r"<!-- results: (\w+)(?: beside ([\w ]+))? -->", text)
    names = {name for block in blocks for name in " ".join(block).split()}
    assert {"paper", "paper_sequential", "probe", "paper_attack", "paper_shuffle_depth"} <= names
    # the scorecard with its stability columns: the fixed-n runs on two machines
    assert ("paper_sequential", "paper paper_intel paper_seeds2") in blocks
    benches = re.findall(r"<!-- bench: (\w+) -->", text)
    assert {"seeds", "experiment", "train", "levers"} <= set(benches)
    assert readme.render(text) == text, "run python -m gpj.report.readme"


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
