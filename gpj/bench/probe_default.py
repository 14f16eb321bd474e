"""`probe_default`: wall time and peak memory of the default main job.

Runs `python -m gpj.main --config=configs/probe.py` twice, each in a fresh temporary workdir,
with one fresh persistent compilation cache (all deleted afterwards): the first run compiles
every program, the second loads them from the cache. Each takes minutes, so the `repeats` of the
other benchmarks do not apply. Wall time is the child's, start to exit; peak memory is the
child's largest resident set (VmHWM, Linux).
"""

import os
import shutil
import subprocess
import sys
import tempfile
import time

import gpj
from gpj import results as results_file

CONFIG = os.path.join("configs", "probe.py")
GOAL_WALL_S = 300
GOAL_PEAK_RSS_GIB = 3.0


def run_job(root: str, argv: list) -> tuple[float, int, dict]:
    """(wall seconds, peak KiB, results.json) of one `python ARGV` in a fresh workdir."""
    workdir = tempfile.mkdtemp(prefix="gpj-probe-default-")
    try:
        wall_s, peak_kib, code, err = _run_child(
            [sys.executable, *argv, f"--workdir={workdir}"], cwd=root
        )
        if code != 0:
            tail = "\n".join(err.strip().splitlines()[-10:])
            sys.exit(f"error: the probe job failed (exit {code}):\n{tail}")
        return wall_s, peak_kib, results_file.read(workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def repository_root() -> str:
    """The folder holding `configs/probe.py`: gpj's repository, else the current directory."""
    for root in (os.path.dirname(os.path.dirname(os.path.abspath(gpj.__file__))), os.getcwd()):
        if os.path.isfile(os.path.join(root, CONFIG)):
            return root
    sys.exit(
        f"error: {CONFIG} not found in gpj's repository or the current directory; "
        "run from the repository root"
    )


def _peak_rss_kib(pid: int) -> int:
    """The process's peak resident set (VmHWM) so far, in KiB; 0 once it has gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
    except OSError:
        return 0


def _run_child(argv: list[str], cwd: str) -> tuple[float, int, int, str]:
    """Runs `argv` to its end: (wall seconds, peak RSS in KiB, exit code, stderr).

    The peak is the child's own VmHWM, read every 50 ms while it runs. `ru_maxrss` would not
    do: Linux carries the parent's peak over fork and exec into the child's.
    """
    with tempfile.TemporaryFile("w+") as stderr:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        peak = 0
        while proc.poll() is None:
            peak = max(peak, _peak_rss_kib(proc.pid))
            time.sleep(0.05)
        wall_s = time.perf_counter() - started
        stderr.seek(0)
        return wall_s, peak, proc.returncode, stderr.read()


def run(repeats: int, args=()) -> dict:
    """Runs the job twice, cold then with a warm compilation cache (`repeats` is ignored). `args`
    go after the default arguments; one of the form `--config=...` replaces the default config
    (e.g. `--config=configs/probe.py:tiny`)."""
    del repeats
    root = repository_root()
    args = list(args)
    config = [] if any(a.startswith("--config=") for a in args) else [f"--config={CONFIG}"]
    argv = ["-m", "gpj.main", *config, *args]
    cache = tempfile.mkdtemp(prefix="gpj-probe-default-cache-")
    try:
        (wall_s, peak_kib, results), (warm_s, _, again) = (
            run_job(root, [*argv, f"--compilation_cache={cache}"]) for _ in range(2)
        )
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    peak_rss_gib = peak_kib / 2**20
    accuracy = {
        f"accuracy_{row['head']}_{row['task']}": row["accuracy"]["mean"]
        for row in results.get("summary", [])
    }
    return {
        "wall_s": wall_s,
        "wall_cached_s": warm_s,
        "cached_speedup": wall_s / warm_s,
        "same_results_cached": results["summary"] == again["summary"],
        "peak_rss_gib": peak_rss_gib,
        "goal_wall_s": GOAL_WALL_S,
        "goal_peak_rss_gib": GOAL_PEAK_RSS_GIB,
        "met": wall_s <= GOAL_WALL_S and peak_rss_gib <= GOAL_PEAK_RSS_GIB,
        "command": " ".join(["python", *argv, "--workdir=<tmp>"]),
        **accuracy,
    }
