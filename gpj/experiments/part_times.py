"""Each paper part's measured times in `<workdir>/part_times.json`, per seed count it reached
({part: {n: seconds}}): what the scorecard took, and the expected time of a later stage."""

import json
import os

import jax

from gpj.report.common import write_json


class PartTimes:
    """The times of a paper workdir's parts, read at start and written at every record."""

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "part_times.json")
        self.seconds = {}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                self.seconds = json.load(f)

    def record(self, name: str, n: int, seconds: float, add: bool = True) -> None:
        """Adds `seconds` spent bringing `name` to `n` seeds (a part stopped at a budget and
        resumed adds each share), or with `add=False` sets them if none are recorded yet (a part
        found finished)."""
        times = self.seconds.setdefault(name, {})
        if add or str(n) not in times:
            times[str(n)] = times.get(str(n), 0.0) * add + seconds
        if jax.process_index() == 0:
            write_json(self.seconds, self.path)

    def expected(self, name: str, n: int) -> float | None:
        """Seconds to bring part `name` to `n` seeds: its measured time per seed, times the seeds
        it lacks; None before it has run."""
        times = self.seconds.get(name)
        if not times:
            return None
        reached = max(int(k) for k in times)
        return sum(times.values()) / reached * max(0, n - reached)

    def total(self, names) -> float:
        return sum(sum(self.seconds.get(name, {}).values()) for name in names)

    def announce(self, stage: int, stages: tuple, todo: list) -> None:
        """Prints the stage's parts and their expected time, from their measured time per seed."""
        if jax.process_index() != 0:
            return
        n = stages[stage - 1]
        expected = {name: self.expected(name, n) for name in todo}
        known = [s for s in expected.values() if s is not None]
        parts_text = ", ".join(
            f"{name} ({'not measured yet' if s is None else f'~{s / 60:.0f} min'})"
            for name, s in expected.items()
        )
        if not known:
            total = "no part measured yet"
        else:
            total = f"expected ~{sum(known) / 60:.0f} min" + (
                " for the measured parts" if len(known) < len(todo) else ""
            )
        print(f"Stage {stage} of {len(stages)}: {n} seeds for {parts_text}; {total}", flush=True)
