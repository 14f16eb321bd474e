"""The README's result tables, rendered from the result files kept in `results/`.

Each block between `<!-- results: NAME -->` and `<!-- /results -->` in README.md is the headline
table of `results/NAME.json` (a default run's results.json), with the command, machine and wall
time it came from; `<!-- results: NAME beside OTHER ... -->` renders a paper scorecard with the
verdicts of each `results/OTHER.json` (another machine's or design's run) in a stability column;
each block between `<!-- bench: NAME -->` and `<!-- /bench -->` is the table of
`results/bench_NAME.json` (`python -m gpj.bench --only=NAME --out=...`). Text and runs cannot
drift: a test checks that the README is what this renders.

  python -m gpj.report.readme            # rewrites the README's result blocks
  python -m gpj.report.readme --check    # exits 1 when README and result files disagree
"""

import json
import os
import re
import sys

from gpj import report
from gpj.report.common import metrics_table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BLOCK = re.compile(
    r"(<!-- (results|bench): (\w+(?: beside \w+(?: \w+)*)?) -->\n)(.*?)(<!-- /\2 -->)", re.DOTALL
)


def source_line(name: str, results: dict) -> str:
    env = results["environment"]
    local = ("--workdir", "--compilation_cache")  # where this machine kept its files
    args = [a for a in env.get("argv", []) if not a.startswith(local)]
    minutes, seconds = divmod(round(results["wall_time_s"]), 60)
    return (
        f"*From [`results/{name}.json`](results/{name}.json): "
        f"`python -m gpj.main {' '.join(args)}`, {minutes} min {seconds} s on "
        f"{env['device_count']} {env['platform']} devices ({env.get('cpu', 'unknown CPU')}), "
        f"jax {env['packages']['jax']}.*"
    )


def _load(name: str, file: str, root: str) -> dict:
    path = os.path.join(root, "results", file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"README block {name!r} needs {path}, which does not exist")
    with open(path) as f:
        return json.load(f)


def block(name: str, root: str = ROOT) -> str:
    name, _, beside = name.partition(" beside ")
    results = _load(name, f"{name}.json", root)
    if not beside:
        return f"{report.table(results)}\n\n{source_line(name, results)}\n"
    others = {other: _load(other, f"{other}.json", root) for other in beside.split()}
    sources = "".join(f"\n\n`{n}`: {source_line(n, r)}" for n, r in others.items())
    return (
        f"{report.paper.table(results, beside=others)}\n\n{source_line(name, results)}{sources}\n"
    )


def bench_block(name: str, root: str = ROOT) -> str:
    results = _load(name, f"bench_{name}.json", root)
    where = ", ".join(sorted({f"{m['cpu']}, jax {m['jax']}" for m in results.values()}))
    return (
        f"{metrics_table(results)}\n\n*From [`results/bench_{name}.json`]"
        f"(results/bench_{name}.json): `python -m gpj.bench --only={','.join(results)}`, "
        f"on {where}.*\n"
    )


def render(readme: str, root: str = ROOT) -> str:
    """`readme` with every result and benchmark block rendered afresh from `root`/results/."""
    kinds = {"results": block, "bench": bench_block}
    return BLOCK.sub(
        lambda m: m.group(1) + kinds[m.group(2)](m.group(3), root) + m.group(5), readme
    )


def main(argv) -> int:
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        current = f.read()
    try:
        rendered = render(current)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if "--check" in argv:
        if rendered != current:
            print("README.md result blocks differ from results/; run python -m gpj.report.readme")
            return 1
        return 0
    with open(path, "w") as f:
        f.write(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
