"""The one owner of results.json (`gpj.results`): an atomic write that stamps the schema, a
read that refuses another schema, a missing file or bad JSON with one line, and the checks that
name an earlier workdir passing that line on."""

import json
import os

import pytest

from gpj import checks
from gpj import results as results_file
from gpj.errors import ConfigError


def test_a_written_file_reads_back_with_its_schema(tmp_path):
    results = {"experiment": "probe", "config": {"seed": 0}, "runs": [{"seed": 0}]}
    path = str(tmp_path / results_file.FILE)
    results_file.write(results, path)
    assert os.listdir(tmp_path) == [results_file.FILE]  # no temporary file left
    read = results_file.read(str(tmp_path))
    assert read == {"experiment": "probe", "schema": results_file.SCHEMA, **results}
    assert list(read)[:2] == ["experiment", "schema"]
    results_file.write({**read, "schema": 1}, path)  # the writer's schema, whatever it was given
    assert results_file.read(path)["schema"] == results_file.SCHEMA


def test_an_older_file_is_refused_with_the_migration_to_run(tmp_path):
    (tmp_path / results_file.FILE).write_text(json.dumps({"experiment": "probe"}))
    with pytest.raises(results_file.ResultsError) as error:
        results_file.read(str(tmp_path))
    message = str(error.value)
    assert (
        "\n" not in message
        and f"is results schema 1, and this gpj reads schema {results_file.SCHEMA}" in message
    )
    assert message.endswith(f"python -m gpj.migrations.schema {tmp_path}")


@pytest.mark.parametrize("content, found", [(None, "No such file"), ("{", "Expecting")])
def test_a_missing_or_broken_file_is_one_line(tmp_path, content, found):
    if content is not None:
        (tmp_path / results_file.FILE).write_text(content)
    with pytest.raises(results_file.ResultsError, match=f"cannot read .*{found}"):
        results_file.read(str(tmp_path))


def test_an_earlier_workdir_of_an_older_gpj_is_named_in_the_config_error(tmp_path):
    (tmp_path / results_file.FILE).write_text(json.dumps({"experiment": "probe"}))
    with pytest.raises(ConfigError) as error:
        checks.check_finished(str(tmp_path), "classifier.probe_workdir", "probe")
    message = str(error.value)
    assert message.startswith(f"classifier.probe_workdir={str(tmp_path)!r} is not a finished")
    assert "python -m gpj.migrations.schema" in message
