"""The result tables of the README and the documentation, rendered from the result files kept
in `results/`.

In README.md and docs/*.md, each block between `<!-- results: NAME -->` and `<!-- /results -->`
is the headline table of `results/NAME.json` (a run's results.json), with the command, machine
and wall time it came from; `<!-- results: NAME beside OTHER ... -->` renders a paper scorecard
with the verdicts of each `results/OTHER.json` (another machine's or design's run) in a
stability column; `<!-- scorecard: ... -->` is the same without the shuffle-depth table;
`<!-- headline: NAME OTHER ... -->` is the front page's table, one row per claim from the first
run that has it; each block between `<!-- bench: NAME -->` and `<!-- /bench -->` is the table
of `results/bench_NAME.json` (`python -m gpj.bench --only=NAME --out=...`), and
`<!-- ratios: bench -->` one table of every benchmark's ratios against its goal; each
`config: NAME` block lists the fields of `configs/NAME.py` with their defaults and comments;
`<!-- caption: FIGURE -->`, under a figure's image, is the caption its renderer gave
`results/FIGURE`, with a link to its SVG twin. A
NAME is `results/NAME.json` or a run folder kept as `results/NAME/results.json`. Text and runs cannot
drift: a test checks that every page is what this renders.

  python -m gpj.report.readme            # rewrites the pages' result blocks
  python -m gpj.report.readme --check    # exits 1 when a page and the result files disagree
"""

import ast
import glob
import importlib
import inspect
import io
import json
import os
import re
import shlex
import sys
import textwrap
import tokenize

from gpj import report
from gpj import results as results_file
from gpj.report import figures
from gpj.report.common import markdown_table, metrics_table, vector_twin

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _shell(arg: str) -> str:
    """A command-line argument as a shell needs it typed: `--config.parts="('a', 'b')"`."""
    name, equals, value = arg.partition("=")
    if equals and re.search(r"[^\w@%+=:,./~-]", value) and not re.search(r'["$`\\]', value):
        return f'{name}="{value}"'
    return shlex.quote(arg)


def result_file(name: str, root: str = ROOT) -> str:
    """Where run NAME's results are, under results/: `NAME.json`, or `NAME/results.json` for a run
    folder kept as it ran."""
    folder = os.path.join(name, "results.json")
    return folder if os.path.isfile(os.path.join(root, "results", folder)) else f"{name}.json"


def source_line(name: str, results: dict, root: str = ROOT) -> str:
    env = results["environment"]
    local = ("--workdir", "--compilation_cache")  # where this machine kept its files
    args = [a for a in env.get("argv", []) if not a.startswith(local)]
    minutes, seconds = divmod(round(results["wall_time_s"]), 60)
    file = result_file(name, root)
    return (
        f"*From [`results/{file}`](results/{file}): "
        f"`python -m gpj.main {' '.join(map(_shell, args))}`, {minutes} min {seconds} s on "
        f"{env['device_count']} {env['platform']} devices ({env.get('cpu', 'unknown CPU')}), "
        f"jax {env['packages']['jax']}.*"
    )


def _path(name: str, file: str, root: str) -> str:
    path = os.path.join(root, "results", file)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"README block {name!r} needs {path}, which does not exist")
    return path


def _load(name: str, file: str, root: str) -> dict:
    """An experiment's results file of results/ (`gpj.results`)."""
    return results_file.read(_path(name, file, root))


def _load_json(name: str, file: str, root: str) -> dict:
    """Another file of results/: a benchmark's, the captions."""
    with open(_path(name, file, root)) as f:
        return json.load(f)


def block(name: str, root: str = ROOT, depth: bool = True) -> str:
    name, _, beside = name.partition(" beside ")
    results = _load(name, result_file(name, root), root)
    if not beside and depth:
        return f"{report.table(results)}\n\n{source_line(name, results, root)}\n"
    others = {other: _load(other, result_file(other, root), root) for other in beside.split()}
    sources = "".join(f"\n\n`{n}`: {source_line(n, r, root)}" for n, r in others.items())
    table = report.paper.table(results, beside=others, depth=depth)
    return f"{table}\n\n{source_line(name, results, root)}{sources}\n"


def headline_block(names: str, root: str = ROOT) -> str:
    """The front page's table (`paper.headline`) of the named paper runs (`result_file`), the
    current design's first."""
    runs = {}
    for name in names.split():
        file = result_file(name, root)
        runs[name] = (_load(name, file, root), f"results/{file}")
    return f"{report.paper.headline(runs)}\n"


def scorecard_block(name: str, root: str = ROOT) -> str:
    return block(name, root, depth=False)


def caption_block(figure: str, root: str = ROOT) -> str:
    """The caption of the committed figure `results/FIGURE` (a PNG), as its renderer wrote it
    (`results/captions.json`, by `python -m gpj.report.figures`), in italics, and a link to its
    vector twin."""
    captions = _load_json(figure, figures.CAPTIONS, root)
    if figure not in captions:
        raise FileNotFoundError(
            f"results/{figures.CAPTIONS} has no caption of {figure!r} (python -m "
            "gpj.report.figures draws the figures named in its COPIES and WORKDIRS)"
        )
    twin = vector_twin(figure)
    return f"*{captions[figure]}* ([vector: {os.path.basename(twin)}](results/{twin}))\n"


def bench_block(name: str, root: str = ROOT) -> str:
    """The tables of `results/bench_NAME.json`, one per benchmark in it, with the command and the
    machine it ran on (which the tables then leave out)."""
    results = _load_json(name, f"bench_{name}.json", root)
    where = ", ".join(sorted({f"{m['cpu']}, jax {m['jax']}" for m in results.values()}))
    return (
        f"{metrics_table(results, leave_out=('cpu', 'jax'))}\n\n*From [`results/bench_{name}.json`]"
        f"(results/bench_{name}.json): `python -m gpj.bench --only={','.join(results)}`, "
        f"on {where}.*\n"
    )


def config_block(name: str, root: str = ROOT) -> str:
    """Every field of `configs/NAME.py` with its default and what it is, from the comment on or
    above the line that sets it (a paper config's parts: their names, each part being its
    experiment's config), and the presets; from the imported package, so `root` is not read."""
    del root
    try:
        module = importlib.import_module(f"gpj.configs.{name}")
    except ModuleNotFoundError:
        raise FileNotFoundError(
            f"config block {name!r} needs gpj/configs/{name}.py, which does not exist"
        ) from None

    def fields(tree, prefix=()):
        for key, value in tree.items():
            if isinstance(value, dict) and "experiment" in value:  # a paper part
                yield (*prefix, key), f"the `{value['experiment']}` config"
            elif isinstance(value, dict) and value:
                yield from fields(value, (*prefix, key))
            else:
                yield (*prefix, key), f"`{value!r}`"

    comments = config_comments(module.get_config)
    rows = [
        [f"`{'.'.join(key)}`", value, _cell(field_comment(comments, key))]
        for key, value in fields(module.get_config().to_dict())
    ]
    presets = ", ".join(f"`{preset}`" for preset in module.PRESETS)
    return (
        f"{markdown_table(['field', 'default', 'what it is'], rows)}\n\nPresets (after a colon, "
        f"combined with commas: `configs/{name}.py:{next(iter(module.PRESETS))}`): {presets}.\n"
    )


def _cell(text: str) -> str:
    """`text` as one cell of a markdown table, as GitHub and MyST read it: `|` escaped (not a
    new cell), and `<` outside code (not the start of an HTML tag, as in test_<metric>)."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;") for i, p in enumerate(parts))


def config_comments(function, depth: int = 0) -> dict:
    """{field: comment} of every field that `function` (a config's `get_config`, or a section or
    helper of gpj/configs) sets on the ConfigDict it builds, each field a tuple of keys (`*`
    for a key computed in the code, as in `c[name] = ...`); "" for a field without a comment.
    A field's comment is the run of comment lines right above the line that sets it, then the
    comment at the end of that line. A field set to what another function of gpj/configs
    returns (`c.train = sections.train()`) has that function's fields below it too;
    `c.x.update(key=...)` sets `x.key`. A function that builds no ConfigDict (a preset, a helper)
    sets the fields of its first argument."""
    source = textwrap.dedent(inspect.getsource(function))
    above, after = {}, {}  # line number -> comment text: whole-line comments, end-of-line ones
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            whole_line = not token.line[: token.start[1]].strip()
            (above if whole_line else after)[token.start[0]] = token.string.lstrip("#").strip()
    (definition,) = ast.parse(source).body
    statements = sorted(
        (node for node in ast.walk(definition) if isinstance(node, ast.stmt)),
        key=lambda node: node.lineno,
    )
    roots = {  # the names bound to the ConfigDicts the function builds
        target.id
        for node in statements
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
        for target in node.targets
        if isinstance(target, ast.Name) and ast.unparse(node.value.func).endswith("ConfigDict")
    }
    if not roots:  # a helper given the config
        roots = {arg.arg for arg in definition.args.args[:1]}

    def key_path(node):
        keys = []
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            if isinstance(node, ast.Attribute):
                keys.append(node.attr)
            elif isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
                keys.append(node.slice.value)
            else:
                keys.append("*")
            node = node.value
        return tuple(reversed(keys)) if isinstance(node, ast.Name) and node.id in roots else None

    def comment(node):
        lines, line = [], node.lineno - 1
        while line in above:
            lines.insert(0, above[line])
            line -= 1
        text = " ".join(lines)
        for end in [after[n] for n in (node.lineno, node.end_lineno) if n in after][:1]:
            text += (" " if text[-1:] in ".:;" else "; ") + end if text else end
        return text

    def callee(call):
        names = ast.unparse(call.func).split(".")
        found = function.__globals__.get(names[0])
        for name in names[1:]:
            found = getattr(found, name, None)
        is_config = inspect.isfunction(found) and found.__module__.startswith("gpj.configs")
        return found if is_config and depth < 4 else None

    own, below = {}, {}
    for node in statements:
        assigned = []  # (field, the call whose result it is, if any)
        if isinstance(node, ast.Assign):
            call = node.value if isinstance(node.value, ast.Call) else None
            assigned = [(key_path(target), call) for target in node.targets]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            func = node.value.func
            if isinstance(func, ast.Attribute) and func.attr == "update":
                base = key_path(func.value)
                keys = [k.arg for k in node.value.keywords if k.arg]
                assigned = [((*base, key), None) for key in keys] if base is not None else []
        for field, call in assigned:
            if field is None:
                continue
            own[field] = own.get(field) or comment(node)
            if call is not None and (helper := callee(call)):
                for sub, text in config_comments(helper, depth + 1).items():
                    below[(*field, *sub)] = below.get((*field, *sub)) or text
    for field, text in own.items():
        if text or field not in below:
            below[field] = text
    return below


def field_comment(comments: dict, field: tuple) -> str:
    """The comment of `field` in `config_comments`' answer: its own, or, for a field the code
    never names, that of a computed key (`*`) in its place; "" if it has none."""
    if field in comments:
        return comments[field]
    for pattern, text in comments.items():
        if len(pattern) == len(field) and all(p in ("*", k) for p, k in zip(pattern, field)):
            return text
    return ""


# What the ratios block lists, in order, a line each (indented lines continue the one above):
# benchmark, metric, goal (`>=` or `<=` a bound, as docs/performance.md sets it; `-`: none),
# unit (`-`: none), what the metric compares.
RATIOS = """
train          ratio_vs_torch              >=1    ×    train step, images/s: gpj ÷ the
                                                       official code's PyTorch model
train          fraction_of_matmul_peak     >=0.5  -    model FLOP/s ÷ the matmul peak of
                                                       the same run
scores         ratio                       >=10   ×    position scores, images/s: the one-pass
                                                       sweep ÷ an eager per-image loop
scores         ratio_vs_jitted_loop        -      ×    the same ÷ the per-image loop jitted
canvas         ratio                       >=100  ×    canvases/s at batch 48: pasted on the
                                                       device ÷ the official per-sample loop
canvas         ratio_batch_480             -      ×    the same at batch 480
probe_default  wall_s                      <=300  s    the main job's wall time, programs
                                                       compiled (cold)
probe_default  wall_s                      <=120  s    the same, the stretch goal
probe_default  peak_rss_gib                <=3    GiB  the main job's peak memory
levers         train_bench_speedup_matmul  -      ×    `train`'s step, images/s: strided 1x1
                                                       convolutions as matmuls ÷ XLA's
                                                       convolutions
levers         train_bench_speedup_im2col  -      ×    the same, every convolution an im2col
                                                       matmul
levers         default_speedup_matmul      -      ×    the default probe model's step: matmul
                                                       ÷ convolution
levers         default_speedup_im2col      -      ×    the same, im2col ÷ convolution
seeds          speedup_vs_one_after_another_S2
                                           -      ×    images/s: 2 seeds in one program ÷ one
                                                       seed after another
seeds          speedup_vs_one_after_another_S4
                                           -      ×    the same, 4 seeds
seeds          speedup_vs_one_after_another_S8
                                           -      ×    the same, 8 seeds
seeds          stacked_vs_plain_S1         -      ×    images/s: one seed in the stacked program
                                                       (what `engine.fit` runs) ÷ the plain
                                                       one-seed step
experiment     ratio_vs_torch              >=1    ×    the main job's training: PyTorch's time
                                                       ÷ gpj's, programs loaded from the cache
                                                       (warm)
experiment     ratio_vs_torch_cold         -      ×    the same, programs compiled (cold)
experiment     gpj_job_wall_cold_s         <=300  s    the main job's wall time, cold
"""


def _ratio_lines():
    """`RATIOS` as (benchmark, metric, goal, unit, what it compares), continued lines joined."""
    words = []
    for line in RATIOS.strip().splitlines():
        if not line[0].isspace():
            words.append([])
        words[-1] += line.split()
    return [(*w[:4], " ".join(w[4:])) for w in words]


def ratios_block(name: str, root: str = ROOT) -> str:
    """The `RATIOS` of the benchmark NAME (`bench`: of every benchmark) as one table: what each
    compares, the value measured in `results/bench_<benchmark>.json`, its goal and whether it is
    met, and the machine it was measured on."""
    rows, files = [], {}
    for bench, metric, goal, unit, compared in _ratio_lines():
        if name not in ("bench", bench):
            continue
        if bench not in files:
            files[bench] = _load_json(name, f"bench_{bench}.json", root)[bench]
        measured = files[bench].get(metric)
        if isinstance(measured, bool) or not isinstance(measured, int | float):
            raise KeyError(f"results/bench_{bench}.json has no number {metric!r}")
        unit = "" if unit == "-" else unit if unit == "×" else f" {unit}"
        target, verdict = "none set", ""
        if goal != "-":
            sign, bound = goal[:2], float(goal[2:])
            met = measured >= bound if sign == ">=" else measured <= bound
            target = f"{'≥' if sign == '>=' else '≤'} {_number(bound)}{unit}"
            verdict = "met" if met else "**not met**"
        measured_text = f"**{_number(measured)}{unit}**"
        machine = files[bench].get("cpu", "")
        rows.append(
            [f"`{bench}`", f"`{metric}`", _cell(compared), measured_text, target, verdict, machine]
        )
    if not rows:
        raise KeyError(f"ratios block {name!r}: no benchmark of that name in RATIOS")
    header = ["benchmark", "metric", "what it compares", "measured", "goal", "verdict", "machine"]
    sources = ", ".join(f"[`results/bench_{b}.json`](results/bench_{b}.json)" for b in files)
    return f"{markdown_table(header, rows)}\n\n*From {sources}; each benchmark's table below.*\n"


def _number(value: float) -> str:
    """A measured value to 3 significant digits (from 1,000 on: whole, with separators)."""
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


BLOCKS = {
    "results": block,
    "scorecard": scorecard_block,
    "headline": headline_block,
    "caption": caption_block,
    "bench": bench_block,
    "config": config_block,
    "ratios": ratios_block,
}
BLOCK = re.compile(
    rf"(<!-- ({'|'.join(BLOCKS)}): ([\w/.]+(?: beside)?(?: \w+)*) -->\n)(.*?)(<!-- /\2 -->)",
    re.DOTALL,
)


RESULTS_LINK = re.compile(r"(\]\(|<img [^>]*src=\")results/")  # a link to a result file


def render(readme: str, root: str = ROOT, folder: str = "") -> str:
    """`readme` with every block rendered afresh from `root`/results/ (and the configs). The
    blocks link result files from the repository's root (`results/NAME`); for a page in
    `folder` (e.g. "docs") the links are made relative to it (`../results/NAME`), so that they
    resolve where the page is read, on GitHub as on the site."""
    up = os.path.relpath(".", folder) if folder else "."

    def relink(text):
        return text if up == "." else RESULTS_LINK.sub(rf"\1{up}/results/", text)

    return BLOCK.sub(
        lambda m: m.group(1) + relink(BLOCKS[m.group(2)](m.group(3), root)) + m.group(5), readme
    )


def folder_of(path: str, root: str = ROOT) -> str:
    """The folder of the page at `path`, relative to `root` ("" for README.md)."""
    return os.path.dirname(os.path.relpath(path, root))


def pages(root: str = ROOT) -> list:
    """The files whose blocks are rendered: README.md and the documentation's pages."""
    return [os.path.join(root, "README.md"), *sorted(glob.glob(os.path.join(root, "docs", "*.md")))]


def main(argv) -> int:
    check, stale = "--check" in argv, []
    for path in pages():
        with open(path) as f:
            current = f.read()
        try:
            rendered = render(current, folder=folder_of(path))
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
