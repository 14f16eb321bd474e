"""The command line itself: its usage, config files found from any folder, the resolved config,
and mistakes as one line that leave nothing behind."""

import importlib

from conftest import assert_command_line_errors, gpj_command

from gpj import command_line


def test_help_exits_zero_and_lists_every_config_with_its_presets():
    proc = gpj_command("gpj.main", "--help")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    for name in command_line.CONFIGS:
        presets = importlib.import_module(f"gpj.configs.{name}").PRESETS
        line = next(line for line in out.splitlines() if f"configs/{name}.py:" in line)
        assert line.split(":", 1)[1].strip().split(", ") == list(presets)
    assert "--print_config" in out


def test_a_mistyped_field_is_one_line_with_the_suggestion(tmp_path):
    cases = {
        "typo": (
            ["--config.model.paddingg=zero"],
            "--config.model.paddingg: the config has no field 'paddingg'; did you mean 'padding'?",
        ),
        "bad value": (["--config.model.padding=mirror"], "model.padding='mirror' is not valid"),
    }
    assert_command_line_errors("configs/probe.py:tiny", cases, tmp_path)


def test_an_evaluator_setting_of_an_older_spelling_names_the_new_one(tmp_path):
    cases = {
        "attack": (
            ["--config.attack.num_channels=(1,4)"],
            "--config.attack.num_channels is now --config.evals.attack.num_channels",
        ),
        "probe grid": (
            ["--config=configs/invariance.py:tiny", "--config.eval.probe_grid=2"],
            "--config.eval.probe_grid is now --config.evals.position_probe.grid",
        ),
        "a paper part's": (
            ["--config=configs/paper.py:tiny", "--config.attack.attack.fill=mean"],
            "--config.attack.attack.fill is now --config.attack.evals.attack.fill",
        ),
    }
    assert_command_line_errors("configs/attack.py:tiny", cases, tmp_path)


def test_an_evaluator_entry_left_empty_takes_its_defaults(tmp_path):
    """An evaluator added on the command line with no settings runs with its defaults: the
    resolved config shows them (those of `gpj.configs.evals`: the map given replaces the tiny
    preset's, which had 2 consistency pairs)."""
    proc = gpj_command(
        "gpj.main",
        "--config=configs/invariance.py:tiny",
        "--config.evals={'shift': {'step': 2}, 'position_probe': {}, 'scores': {}}",
        "--print_config",
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    evals = out.split("\nevals:\n", 1)[1].split("\nexperiment:", 1)[0]
    assert evals.split() == [
        *("position_probe:", "grid:", "3", "seed:", "0", "scores:", "{}"),
        *("shift:", "consistency_pairs:", "5", "consistency_seed:", "0", "step:", "2"),
    ], evals


def test_print_config_shows_presets_and_overrides_from_any_folder_and_runs_nothing(tmp_path):
    workdir = tmp_path / "never"
    proc = gpj_command(
        "gpj.main",
        "--config=configs/probe.py:tiny,controls",
        "--config.train.num_epochs=7",
        "--print_config",
        f"--workdir={workdir}",
        cwd=tmp_path,  # no configs/ folder here: the installed config is used
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "num_epochs: 7" in out and "image_size: 8" in out  # override, tiny preset
    assert "sum:object" in out  # the controls preset's runs
    assert not workdir.exists()


def test_a_config_file_from_the_current_folder_wins_over_the_installed_one(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "probe.py").write_text(
        "from gpj.configs.probe import get_config as base\n\n\n"
        "def get_config(arg=None):\n    c = base(arg)\n    c.num_seeds = 5\n    return c\n"
    )
    proc = gpj_command("gpj.main", "--config=configs/probe.py", "--print_config", cwd=tmp_path)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "num_seeds: 5" in out


COMMAND_LINE_MISTAKES = {
    "value": (["--config.model.padding=mirror"], "model.padding='mirror' is not valid"),
    "preset": (
        ["--config=configs/probe.py:tiny,huge"],
        "unknown preset 'huge'; valid presets: cifar10, circular, controls, converged, imagenette",
    ),
    "field": (["--config.model.depth=3"], "--config.model.depth: the config has no field 'depth'"),
    "old evals": (
        ["--config.evals=('every_cell','scores')"],
        (
            "--config.evals is now a map of evaluator names to their settings (empty: the defaults): "
            "--config.evals=\"{'every_cell': {}, 'scores': {}}\""
        ),
    ),
    "workdir": (["--workdir=/proc/gpj"], "--workdir=/proc/gpj is not writable"),
    "missing file": (
        ["--config=configs/nothing.py"],
        "No such file or directory: 'configs/nothing.py'",
    ),
}


def test_each_kind_of_command_line_mistake_is_one_clear_line(tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def get_config(:\n")
    cases = {
        **COMMAND_LINE_MISTAKES,
        "file that does not parse": (
            [f"--config={broken}"],
            f"--config={broken}: SyntaxError: invalid syntax (broken.py, line 1)",
        ),
    }
    assert_command_line_errors("configs/probe.py:tiny", cases, tmp_path)
