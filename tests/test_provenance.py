"""Provenance: the git commit and dirtiness of the code a result was computed with."""

import subprocess

from conftest import ROOT

from gpj import provenance


def git(folder, *args) -> str:
    return subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_environment_records_this_checkouts_commit_and_dirtiness():
    recorded = provenance.environment()["git"]
    assert recorded["commit"] == git(ROOT, "rev-parse", "HEAD")
    assert len(recorded["commit"]) == 40
    assert recorded["dirty"] == bool(git(ROOT, "status", "--porcelain", "--untracked-files=no"))


def test_dirty_means_changes_to_tracked_files_and_untracked_folders_are_none(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    git(tmp_path, "add", "code.py")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "untracked.py").write_text("y = 1\n")
    # A folder the checkout does not track (e.g. a virtualenv inside it holding a wheel's code).
    assert provenance.git_state(str(tmp_path / "venv")) is None
    clean = {"commit": git(tmp_path, "rev-parse", "HEAD"), "dirty": False}
    assert provenance.git_state(str(tmp_path)) == clean
    (tmp_path / "code.py").write_text("x = 2\n")
    assert provenance.git_state(str(tmp_path)) == {**clean, "dirty": True}


def test_no_git_state_outside_a_checkout_or_without_git(tmp_path, monkeypatch):
    assert provenance.git_state(str(tmp_path)) is None
    monkeypatch.setenv("PATH", str(tmp_path))  # no git on it
    assert provenance.git_state(ROOT) is None
