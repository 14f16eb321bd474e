"""The result tables of the README and the documentation, rendered from the result files kept
in `results/`.

In README.md and docs/*.md, each block between `<!-- results: NAME -->` and `<!-- /results -->`
is the headline table of `results/NAME.json` (a run's results.json), with the command, machine
and wall time it came from; `<!-- results: NAME beside OTHER ... -->` renders a paper scorecard
with the verdicts of each `results/OTHER.json` (another machine's or design's run) in a
stability column; `<!-- scorecard: ... -->` is the same without the shuffle-depth table; each
block between `<!-- bench: NAME -->` and `<!-- /bench -->` is the table of
`results/bench_NAME.json` (`python -m gpj.bench --only=NAME --out=...`); each `config: NAME`
block lists the fields of `configs/NAME.py` with their defaults. Text and runs cannot
drift: a test checks that every page is what this renders.

  python -m gpj.report.readme            # rewrites the pages' result blocks
  python -m gpj.report.readme --check    # exits 1 when a page and the result files disagree
"""

import glob
import importlib
import json
import os
import re
import shlex
import sys

from gpj import report
from gpj.report.common import markdown_table, metrics_table

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _shell(arg: str) -> str:
    """A command-line argument as a shell needs it typed: `--config.parts="('a', 'b')"`."""
    name, equals, value = arg.partition("=")
    if equals and re.search(r"[^\w@%+=:,./~-]", value) and not re.search(r'["$`\\]', value):
        return f'{name}="{value}"'
    return shlex.quote(arg)


def source_line(name: str, results: dict) -> str:
    env = results["environment"]
    local = ("--workdir", "--compilation_cache")  # where this machine kept its files
    args = [a for a in env.get("argv", []) if not a.startswith(local)]
    minutes, seconds = divmod(round(results["wall_time_s"]), 60)
    return (
        f"*From [`results/{name}.json`](results/{name}.json): "
        f"`python -m gpj.main {' '.join(map(_shell, args))}`, {minutes} min {seconds} s on "
        f"{env['device_count']} {env['platform']} devices ({env.get('cpu', 'unknown CPU')}), "
        f"jax {env['packages']['jax']}.*"
    )


def _load(name: str, file: str, root: str) -> dict:
    path = os.path.join(root, "results", file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"README block {name!r} needs {path}, which does not exist")
    with open(path) as f:
        return json.load(f)


def block(name: str, root: str = ROOT, depth: bool = True) -> str:
    name, _, beside = name.partition(" beside ")
    results = _load(name, f"{name}.json", root)
    if not beside and depth:
        return f"{report.table(results)}\n\n{source_line(name, results)}\n"
    others = {other: _load(other, f"{other}.json", root) for other in beside.split()}
    sources = "".join(f"\n\n`{n}`: {source_line(n, r)}" for n, r in others.items())
    table = report.paper.table(results, beside=others, depth=depth)
    return f"{table}\n\n{source_line(name, results)}{sources}\n"


def scorecard_block(name: str, root: str = ROOT) -> str:
    return block(name, root, depth=False)


def bench_block(name: str, root: str = ROOT) -> str:
    results = _load(name, f"bench_{name}.json", root)
    where = ", ".join(sorted({f"{m['cpu']}, jax {m['jax']}" for m in results.values()}))
    return (
        f"{metrics_table(results)}\n\n*From [`results/bench_{name}.json`]"
        f"(results/bench_{name}.json): `python -m gpj.bench --only={','.join(results)}`, "
        f"on {where}.*\n"
    )


def config_block(name: str, root: str = ROOT) -> str:
    """Every field of `configs/NAME.py` with its default (a paper config's parts: their names,
    each part being its experiment's config), and the presets; from the imported package, so
    `root` is not read."""
    del root
    try:
        module = importlib.import_module(f"gpj.configs.{name}")
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"config block {name!r} needs gpj/configs/{name}.py, which does not exist"
        ) from None

    def fields(tree, prefix=""):
        for key, value in tree.items():
            if isinstance(value, dict) and "experiment" in value:  # a paper part
                yield f"{prefix}{key}", f"the `{value['experiment']}` config"
            elif isinstance(value, dict):
                yield from fields(value, f"{prefix}{key}.")
            else:
                yield f"{prefix}{key}", f"`{value!r}`"

    rows = [[f"`{key}`", value] for key, value in fields(module.get_config().to_dict())]
    presets = ", ".join(f"`{preset}`" for preset in module.PRESETS)
    return (
        f"{markdown_table(['field', 'default'], rows)}\n\nPresets (after a colon, "
        f"combined with commas: `configs/{name}.py:{next(iter(module.PRESETS))}`): {presets}.\n"
    )


BLOCKS = {
    "results": block,
    "scorecard": scorecard_block,
    "bench": bench_block,
    "config": config_block,
}
BLOCK = re.compile(
    rf"(<!-- ({'|'.join(BLOCKS)}): (\w+(?: beside \w+(?: \w+)*)?) -->\n)(.*?)(<!-- /\2 -->)",
    re.DOTALL,
)


def render(readme: str, root: str = ROOT) -> str:
    """`readme` with every block rendered afresh from `root`/results/ (and the configs)."""
    return BLOCK.sub(
        lambda m: m.group(1) + BLOCKS[m.group(2)](m.group(3), root) + m.group(5), readme
    )


def pages(root: str = ROOT) -> list:
    """The files whose blocks are rendered: README.md and the documentation's pages."""
    return [os.path.join(root, "README.md"), *sorted(glob.glob(os.path.join(root, "docs", "*.md")))]


def main(argv) -> int:
    check, stale = "--check" in argv, []
    for path in pages():
        with open(path) as f:
            current = f.read()
        try:
            rendered = render(current)
        except FileNotFoundError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        if rendered != current:
            stale.append(os.path.relpath(path, ROOT))
            if not check:
                with open(path, "w") as f:
                    f.write(rendered)
    if stale and check:
        print(f"{', '.join(stale)}: blocks differ from results/; run python -m gpj.report.readme")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
