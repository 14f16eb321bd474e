"""The one-time rewrites of results/: the per-seed values added to files written before
`stats.describe` kept them come from the files' own runs, only where n and mean agree; the part
of each row of an older scorecard is named in the order it was written; the schema version is
stamped and nothing else changes; all are in place."""

import json
import os
import pathlib
import shutil

import pytest

from gpj import results as results_file
from gpj.migrations import row_parts, schema, seed_values

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_values_fill_only_a_summary_with_the_same_n_and_mean():
    stored = {"a": {"mean": 0.5, "n": 2}, "b": [{"mean": 0.1, "n": 3}], "c": {"mean": 0.2, "n": 2}}
    fresh = {
        "a": {"mean": 0.5, "n": 2, "values": [0.4, 0.6]},
        "b": [{"mean": 0.1, "n": 2, "values": [0.0, 0.2]}],  # another n: not the same summary
        "c": {"mean": 0.3, "n": 2, "values": [0.2, 0.4]},  # another mean
    }
    assert seed_values.add_values(stored, fresh) == 1
    assert stored["a"]["values"] == [0.4, 0.6]
    assert "values" not in stored["b"][0] and "values" not in stored["c"]


def test_the_committed_results_have_every_value_their_runs_give(tmp_path, capsys):
    """Run again over a copy of results/, the migration finds nothing left to fill."""
    shutil.copytree(os.path.join(ROOT, "results"), tmp_path / "results")
    assert seed_values.main([str(tmp_path / "results")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 20 and all(
        line.endswith(": 0 summaries given their values") for line in lines
    )


def test_an_older_scorecards_rows_are_named_in_the_order_they_were_written():
    results = {
        "parts": {"invariance": "", "probe": "", "attack": ""},
        "claims": [{"claim": c} for c in (1, 2, 3, 4, 5)],
    }
    assert row_parts.name_parts(results)
    parts = [row["part"] for row in results["claims"]]
    assert parts == ["probe", "probe", "invariance", "attack", "attack"]
    assert not row_parts.name_parts(results)  # already named: left as it is
    results["claims"].append({"claim": 5})
    with pytest.raises(ValueError, match="5 of 6 rows name their part"):
        row_parts.name_parts(results)


def test_every_committed_scorecard_row_names_its_part(tmp_path, capsys):
    shutil.copytree(os.path.join(ROOT, "results"), tmp_path / "results")
    assert row_parts.main([str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out == ""
    with open(os.path.join(ROOT, "results", "paper.json")) as f:
        assert all("part" in row for row in json.load(f)["claims"])


def as_schema_2(config: dict) -> None:
    """The inverse of the 2 -> 3 migration, written out here: `evals` back to a list of names,
    the attack's settings to `attack`, the shift and probe settings to `eval.*`."""
    for value in config.values():
        if isinstance(value, dict):
            as_schema_2(value)
    if not isinstance(config.get("evals"), dict):
        return
    evals = config["evals"]
    if "attack" in evals:
        config["attack"] = evals["attack"]
    old = {"step": "shift_step", "grid": "probe_grid", "seed": "probe_seed"}
    for name in ("shift", "position_probe"):
        for key, value in evals.get(name, {}).items():
            config["eval"][old.get(key, key)] = value
    config["evals"] = list(evals)


@pytest.mark.parametrize("name", ["paper_probe", "paper_invariance", "paper_attack", "paper"])
def test_the_schema_migration_brings_older_files_to_the_committed_bytes(name, tmp_path, capsys):
    """A file as an older gpj wrote it (schema 1: no `schema`, or schema 2: `evals` a list of
    names) becomes, byte for byte, the committed file; a benchmark's file is left alone; a rerun
    finds nothing to do."""
    committed = pathlib.Path(ROOT, "results", f"{name}.json").read_text()
    for version in (1, 2):
        older = json.loads(committed)
        as_schema_2(older["config"])
        assert older["config"] != json.loads(committed)["config"]
        if version == 1:
            del older["schema"]
        else:
            older["schema"] = 2
        (tmp_path / f"{name}.json").write_text(json.dumps(older, indent=1))
        bench = pathlib.Path(ROOT, "results", "bench_experiment.json").read_text()
        (tmp_path / "bench_experiment.json").write_text(bench)  # its "experiment" is a benchmark
        assert schema.main([str(tmp_path)]) == 0
        assert (tmp_path / f"{name}.json").read_text() == committed
        assert (tmp_path / "bench_experiment.json").read_text() == bench
        assert capsys.readouterr().out == f"{tmp_path}/{name}.json: schema {results_file.SCHEMA}\n"
        assert schema.main([str(tmp_path)]) == 0 and capsys.readouterr().out == ""


def test_every_committed_result_file_is_of_the_current_schema(tmp_path, capsys):
    shutil.copytree(os.path.join(ROOT, "results"), tmp_path / "results")
    assert schema.main([str(tmp_path / "results")]) == 0
    assert capsys.readouterr().out == ""
    for path in pathlib.Path(ROOT, "results").glob("**/*.json"):
        found = json.loads(path.read_text())
        if isinstance(found.get("experiment"), str):
            assert results_file.read(str(path))["schema"] == results_file.SCHEMA
