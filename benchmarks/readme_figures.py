"""Does every figure the README states still hold? Reruns the commands behind them and compares, figure by figure.

The README quotes accuracies, counts and ratios that came from commands; the code moves on and the text stays. Each
entry of FIGURES names the README text it checks (a regex whose groups are the figure, which must match README.md
and its pages under docs/ exactly once, so an entry whose text was edited away fails loudly instead of passing), the
commands that produce it (run in a temporary folder: `tpsearch ...` or `benchmarks/*.py`), how to read today's value
from the JSON line they print last, and the tolerance: seeded accuracies and counts exactly as the README prints
them, timing ratios within a factor (the README's own runs differ by that much under load). Entries that share their
commands share one run.

    python benchmarks/readme_figures.py                    # every figure (an hour or more on a 2-core CPU)
    python benchmarks/readme_figures.py --skip-slow        # leave out the commands over about 2 minutes
    python benchmarks/readme_figures.py --only quickstart,counts.xresnet --json
    python benchmarks/readme_figures.py --list

Not covered: `tpsearch simulate`'s strategy table (`benchmarks/build_table.py` rebuilds it), runs of a quarter
of an hour or more (`bench_fidelity.py`, the calibrate section), `bench_faults.py` (PostgreSQL and root), absolute
timings (they measure the machine's load), and figures no command in the README produces.

Prints one row per figure (where, README value, today's value, tolerance, OK or DRIFTED) and a progress line per
figure on stderr; the last line is JSON with --json. Exits 1 when a figure drifted or its command failed.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = ROOT / "docs"  # the README's pages: their figures are the README's too


def readme_text() -> str:
    """The README and every page under docs/ it links, as one text: a figure's pattern must match it once."""
    return "\n\n".join(path.read_text() for path in [README, *sorted(PAGES.glob("*.md"))])


@dataclass(frozen=True)
class Figure:
    name: str                      # group.item: --only takes either
    where: str                     # the README section
    pattern: str                   # a regex matching README.md once; its groups, joined by " / ", are the figure
    steps: tuple[tuple[str, ...], ...]   # commands run in one temporary folder, in order
    read: Callable[[list[dict]], str]    # today's figure from each step's JSON line, printed as the README prints it
    factor: float | None = None    # None: exact; else today's number may be within this factor of the README's
    slow: bool = False             # over about 2 minutes on an idle 2-core CPU

    def tolerance(self) -> str:
        return "exact" if self.factor is None else f"x{self.factor:g}"


def pct(x: float) -> str:
    return f"{x:.2%}"


def mean_std(row: dict, mean: str = "mean", std: str = "std") -> str:
    return f"{row[mean]:.2%} ± {row[std]:.2%}"


def cell(prefix: str, column: int) -> str:
    """A table row's cell: the row starts with `prefix` (its first cells, literally), `column` counts on from there."""
    return rf"(?m)^{re.escape(prefix)}(?:[^|\n]*\|){{{column - 1}}} ([^|\n]*?) \|"


# --- parameter and MAC counts: `tpsearch describe`, no training -----------------------------------------------------

def describe(preset: str, *flags: str) -> tuple[tuple[str, ...], ...]:
    return (("tpsearch", "describe", "--preset", preset, *flags, "--json"),)


def count(key: str) -> Callable[[list[dict]], str]:
    return lambda out: f"{out[-1][key]:,}"


# The presets of the spaces whose README tables list them, one row each; the zoo's table lists them all again.
PRESETS = {
    "resnet_5m": ("tpsnet_model1", "tpsnet_model2", "tpsnet", "resnet20"),
    "xresnet": ("se_mxresnet20", "se_mxresnet32", "se_mxresnet44", "se_mxresnet56", "xresnext29_16x2d",
                "se_mxresnext29_16x2d"),
    "convnets": ("vgglike", "resnetlike", "resnetlike_large", "resnextlike", "resnextlike_large", "densenetlike",
                 "densenetlike_large"),
    "inception": ("inception_v3_cifar",),
}
# (table row prefix, space, preset, [(column, key, describe's flags)]): each table's columns as the README lays them out
COUNT_TABLES = {
    **{space: [(f"| `{p}` |", space, p, [(2, "params", ()), (4, "macs", ())]) for p in presets]
       for space, presets in PRESETS.items()},
    "backbones": [(f"| `{p}` |", "backbones", p,
                   [(1, "params", ()), (2, "params", ("--num-classes", "256")), (3, "macs", ())]
                   + ([] if p.startswith(("densenet121", "squeezenet1_1")) and not p.endswith("_cifar")
                      else [(4, "macs", ("--dataset", "digits"))]))
                  for m in ("resnet18", "resnet34", "densenet121", "squeezenet1_1", "mobilenet_v3_small",
                            "mobilenet_v3_large") for p in (m, m + "_cifar")],
    "zoo": [(f"| {s} | `{p}` |", s, p, [(1, "params", ()), (2, "macs", ())])
            for s, presets in PRESETS.items() for p in presets],
}
SECTIONS = {"resnet_5m": "The `resnet_5m` space", "xresnet": "The `xresnet` space",
            "convnets": "The `convnets` space", "inception": "The `inception` space",
            "backbones": "The `backbones` space", "zoo": "The `zoo` space"}
COLUMN_NAMES = {("params", ()): "params", ("params", ("--num-classes", "256")): "params256",
                ("macs", ()): "macs", ("macs", ("--dataset", "digits")): "macs_digits"}

FIGURES: list[Figure] = [
    Figure(f"counts.{table}.{preset}.{COLUMN_NAMES[key, flags]}", SECTIONS[table], cell(prefix, column),
           describe(preset, "--space", space, *flags), count(key))
    for table, rows in COUNT_TABLES.items() for prefix, space, preset, columns in rows
    for column, key, flags in columns
] + [
    Figure("counts.resnet_5m.tiny.params", SECTIONS["resnet_5m"], r"\| `tiny` \| [^|]*\| ([\d,]+) on CIFAR",
           describe("tiny"), count("params")),
    Figure("counts.resnet_5m.tiny.params_digits", SECTIONS["resnet_5m"], r"on CIFAR, ([\d,]+) on digits",
           describe("tiny", "--dataset", "digits"), count("params")),
    Figure("counts.resnet_5m.tiny.macs", SECTIONS["resnet_5m"], cell("| `tiny` |", 4), describe("tiny"),
           count("macs")),
    Figure("counts.backbones.resnet18.params_1channel", SECTIONS["backbones"], r"`resnet18` ([\d,]+)\),",
           describe("resnet18", "--space", "backbones", "--dataset", "digits"), count("params")),
    Figure("counts.ablate.se_mxresnet20.params_digits", "Ablating training tricks", r"`se_mxresnet20` \(([\d,]+) "
           r"parameters on 8x8", describe("se_mxresnet20", "--dataset", "digits"), count("params")),
]

# --- the quick start: one seeded, --reproducible search --------------------------------------------------------------

QUICKSTART = (("tpsearch", "run", "--space", "resnet_5m", "--dataset", "digits", "--trials", "20", "--epochs", "8",
               "--max-params", "200000", "--train-images", "512", "--reproducible", "--no-progress", "--json"),)
FIGURES += [
    Figure("quickstart.best", "Quick start", r"finds \*\*([\d.]+%)\*\*", QUICKSTART,
           lambda out: pct(out[-1]["best_value"])),
    Figure("quickstart.best_trial", "Quick start", r"\*\* validation accuracy \(trial (\d+), ", QUICKSTART,
           lambda out: str(out[-1]["best_trial"])),
    Figure("quickstart.best_params", "Quick start", r"\(trial \d+, ([\d,]+)\s+parameters; 2026", QUICKSTART,
           lambda out: f"{out[-1]['best_params']:,}"),
    Figure("quickstart.counts", "Quick start", r"trains 20 trials \((\d+) completed, (\d+) stopped by ASHA, (\d+) "
           r"draws over the budget", QUICKSTART,
           lambda out: " / ".join(str(out[-1]["counts"][k]) for k in ("complete", "pruned", "infeasible"))),
    Figure("quickstart.performance", "Performance", r"finds ([\d.]+%) validation accuracy with ([\d,]+) parameters "
           r"\(see \[Quick start\]", QUICKSTART,
           lambda out: f"{pct(out[-1]['best_value'])} / {out[-1]['best_params']:,}"),
    Figure("quickstart.dashboard_caption", "Dashboards", r"today's finds ([\d.]+%) with ([\d,]+) parameters",
           QUICKSTART, lambda out: f"{pct(out[-1]['best_value'])} / {out[-1]['best_params']:,}"),
    Figure("train.tiny_digits", "Performance", r"--dataset digits --epochs 10` reaches ([\d.]+) validation accuracy",
           (("tpsearch", "train", "--preset", "tiny", "--dataset", "digits", "--epochs", "10", "--no-progress",
             "--json"),), lambda out: f"{out[-1]['val_accuracy']:.3f}"),
]

# --- two objectives: the two searches of "Accuracy against cost" ----------------------------------------------------

MO = ("tpsearch", "run", "--dataset", "digits", "--objectives", "accuracy,macs", "--trials", "16", "--epochs", "6",
      "--train-images", "512", "--max-params", "200000", "--scheduler", "none", "--reproducible", "--no-progress",
      "--json")
MO_STEPS = (MO + ("--study", "mo-tpe"), MO + ("--sampler", "nsga2", "--study", "mo-nsga2"))


def front(summary: dict) -> str:
    return "; ".join(f"{r['trial']}: {pct(r['accuracy'])}, {int(r['macs']):,}" for r in summary["pareto"])


for i, (label, name) in enumerate((("tpe", "TPE"), ("nsga2", "NSGA-II"))):
    # The row opens with its front ("27: 93.71%, ..."): "| TPE |" alone also opens a row of the samplers' table.
    opens = rf"(?m)^\| {name} \|"
    FIGURES += [
        Figure(f"objectives.{label}.front", "Accuracy against cost", opens + r" (\d+: [^|]*?) \|", MO_STEPS,
               lambda out, i=i: front(out[i]), slow=True),
        Figure(f"objectives.{label}.best", "Accuracy against cost", opens + r" \d+: [^|]* \| ([\d.]+%) \|", MO_STEPS,
               lambda out, i=i: pct(out[i]["best_value"]), slow=True),
        Figure(f"objectives.{label}.infeasible", "Accuracy against cost",
               opens + r" \d+: [^|]* \|[^|]*\|[^|]*\| (\d+) \|", MO_STEPS,
               lambda out, i=i: str(out[i]["counts"]["infeasible"]), slow=True),
    ]

# --- samplers over three seeds (under --stop-margin 2, as the README says they were measured) -----------------------

REPEAT = ("tpsearch", "run", "--dataset", "digits", "--trials", "20", "--epochs", "8", "--max-params", "200000",
          "--train-images", "512", "--reproducible", "--stop-margin", "2", "--repeat", "3", "--no-progress", "--json")
SAMPLER_STEPS = (REPEAT + ("--sampler", "tpe"), REPEAT + ("--sampler", "random"), ("tpsearch", "status", "--json"))


def per_seed(sampler: str, what: Callable[[dict], str]) -> Callable[[list[dict]], str]:
    return lambda out: ", ".join(what(out[-1]["studies"][f"resnet_5m-digits-{sampler}-seed{s}"]) for s in range(3))


for sampler, row in (("tpe", "| TPE | 3 |"), ("random", "| random | 3 |")):
    FIGURES += [
        Figure(f"samplers.{sampler}.best", "Comparing samplers", cell(row, 1), SAMPLER_STEPS,
               per_seed(sampler, lambda s: pct(s["best"])), slow=True),
        Figure(f"samplers.{sampler}.infeasible", "Comparing samplers", cell(row, 3), SAMPLER_STEPS,
               per_seed(sampler, lambda s: str(s["infeasible"])), slow=True),
    ]

# --- ablate: the two runs of "Ablating training tricks" -------------------------------------------------------------

ABLATE = ("tpsearch", "ablate", "--preset", "se_mxresnet20", "--dataset", "digits", "--tricks",
          "cosine,label_smoothing,mixup,reflect", "--no-progress", "--json")
ABLATE_RUNS = {"full": (ABLATE + ("--seeds", "3", "--epochs", "8"), 3, True),
               "256": (ABLATE + ("--train-images", "256", "--epochs", "15", "--seeds", "5"), 5, False)}
for run, (argv, seeds, slow) in ABLATE_RUNS.items():
    for k, label in enumerate(("baseline", "+ cosine", "+ label_smoothing", "+ mixup", "+ reflect")):
        FIGURES.append(Figure(f"ablate.{run}.row{k}", "Ablating training tricks",
                              cell(f"| {k} | {label} | {seeds} |", 1), (argv,),
                              lambda out, k=k: mean_std(out[-1]["rows"][k], "accuracy_mean", "accuracy_std"),
                              slow=slow))

# --- rerank: the quick start's search without ASHA (--reproducible, as there), then its top 5, then export ------------

RERANK_STEPS = (("tpsearch", "run", "--space", "resnet_5m", "--dataset", "digits", "--trials", "20", "--epochs", "8",
                 "--max-params", "200000", "--train-images", "512", "--scheduler", "none", "--study", "readme-digits",
                 "--reproducible", "--no-progress", "--json"),
                ("tpsearch", "rerank", "--study", "readme-digits", "--top", "5", "--seeds", "3", "--epochs", "8",
                 "--no-progress", "--json"),
                ("tpsearch", "export", "--study", "readme-digits", "--out", "best.pt", "--no-progress", "--json"))
FIGURES.append(Figure("rerank.search_counts", "Choosing the final architecture",
                      r"--study readme-digits --reproducible +# (\d+) completed, (\d+) infeasible draws", RERANK_STEPS,
                      lambda out: f"{out[0]['counts']['complete']} / {out[0]['counts']['infeasible']}", slow=True))
for rank in range(1, 6):
    # The row: its source trial, trained #, parameters, the search's score and rank, the rerank's mean ± std.
    FIGURES.append(Figure(
        f"rerank.rank{rank}", "Choosing the final architecture",
        rf"(?m)^\| {rank} \| trial (\d+) \(trained #(\d+)\) \| ([\d,]+) \| ([\d.]+%) \| (\d) \| "
        r"([\d.]+% ± [\d.]+%) \|",
        RERANK_STEPS, lambda out, r=rank - 1: " / ".join((
            str(out[1]["rows"][r]["source_trial"]), str(out[1]["rows"][r]["trained"]),
            f"{out[1]['rows'][r]['params']:,}", pct(out[1]["rows"][r]["search_value"]),
            str(out[1]["rows"][r]["search_rank"]), mean_std(out[1]["rows"][r]))),
        slow=True))
FIGURES.append(Figure("rerank.export", "Choosing the final architecture",
                      r"`export` wrote trial (\d+) with \"chosen by rerank: ([\d.]+% ± [\d.]+%) over \d seeds in "
                      r"'readme-digits-rerank'\" \(test\s+accuracy ([\d.]+) with", RERANK_STEPS,
                      lambda out: (f"{out[2]['trial']} / {pct(out[2]['rerank']['mean'])} ± "
                                   f"{pct(out[2]['rerank']['std'])} / {out[2]['test_accuracy']:.4f}"), slow=True))

# --- benchmarks/: their JSON lines ------------------------------------------------------------------------------------

PERF = "Performance"
QUANTIZE_DEEP = ("benchmarks/bench_quantize.py", "--arch", '{"layers": 3, "blocks": [1, 1, 1], "channels": 16}',
                 "--hparams", '{"optimizer": "sgd", "lr": 0.1, "batch_size": 64}', "--epochs", "15")
FIGURES += [
    # The README's own runs of the µs-against-ms ratios differ by 2x and more under load (its footnotes).
    Figure("bench.constraint.ratio_meta", PERF, r"([\d,]+)x faster than the meta-device count",
           (("benchmarks/bench_constraint.py",),), lambda out: f"{out[-1]['ratio_meta']:,.0f}", factor=2),
    Figure("bench.constraint.ratio", PERF, r"; ([\d,]+)x than the real build", (("benchmarks/bench_constraint.py",),),
           lambda out: f"{out[-1]['ratio']:,.0f}", factor=2),
    Figure("bench.macs.ratio", PERF, r"\| ([\d,]+)x faster \|", (("benchmarks/bench_macs.py",),),
           lambda out: f"{out[-1]['ratio']:,.0f}", factor=2),
    Figure("bench.loader.ratio", PERF, r"\| ([\d.]+)x \(worse of the two; goal 20x\)",
           (("benchmarks/bench_loader.py",),),
           lambda out: f"{out[-1]['ratio']:.1f}", factor=1.3),
    Figure("bench.train.ratio", PERF, r"\| ([\d.]+)x / ([\d.]+)x \|", (("benchmarks/bench_train.py",),),
           lambda out: " / ".join(f"{out[-1]['models'][m]['ratio']:.2f}" for m in ("resnet20", "tpsnet")), factor=1.3),
    Figure("bench.overhead.ratio", PERF, r"\| ([\d.]+) \(tpsearch / stock; goal", (("benchmarks/bench_overhead.py",),),
           lambda out: f"{out[-1]['ratio']:.2f}", factor=1.3),
    # The infeasible draws held over three idle runs (39 each) and were 40 in a run under load: TPE draws after the
    # tells that arrived first, so the count moves with the order trials report in (a run without --reproducible).
    # How many trials stock ASHA stops moves more (6 and 8), so that one is not checked.
    Figure("bench.overhead.counts", PERF, r"(?s)draws\n\((\d+) for 40 trials here",
           (("benchmarks/bench_overhead.py",),), lambda out: f"{out[-1]['tpsearch']['infeasible']}", factor=1.1),
    Figure("bench.imagefolder.first_ratio", PERF, r"\| ([\d.]+)x on the first load; ([\d.]+)x a later load",
           (("benchmarks/bench_imagefolder.py",),),
           lambda out: f"{out[-1]['first_ratio']:.1f} / {out[-1]['ratio']:.0f}", factor=2),
    Figure("bench.latency.check_share", PERF, r"the check costs [\d.]+ s, ([\d.]+)% of a 3-epoch trial",
           (("benchmarks/bench_latency.py",),),
           lambda out: f"{100 * out[-1]['architectures']['tiny']['check_share']:.1f}", factor=2),
    Figure("bench.dashboard.page_mb", PERF, r"\| [\d.]+ s \([\d.]+ s of it Optuna reading the trials\), ([\d.]+) MB "
           r"page \|", (("benchmarks/bench_dashboard.py",),), lambda out: f"{out[-1]['page_mb']:.1f}"),
]
for deep, steps, prefix in ((False, (("benchmarks/bench_quantize.py",),), "1 layer of 16 channels (15,034 parameters"),
                            (True, (QUANTIZE_DEEP,), "303,866 parameters):")):
    table = r"(?s)" + re.escape(prefix) + r".*?"  # the first such row after the sentence that opens its table
    name = "bench.quantize." + ("deep" if deep else "small")
    for method, label in (("full", r"float32"), ("ternary", r"ternary \([\d.]+% zeros\)"), ("binary", "binary"),
                          ("int8", "int8")):
        FIGURES.append(Figure(
            f"{name}.{method}", "Quantized export",
            table + rf"\| {label} \| ([\d.]+%) \|[^|\n]*\| ([\d,]+) \| ([\d,]+) \| ([\d.]+x) \|", steps,
            lambda out, m=method: (f"{pct(out[-1]['methods'][m]['accuracy'])} / "
                                   f"{out[-1]['methods'][m]['quantized_weights']:,} / "
                                   f"{out[-1]['methods'][m]['bytes']:,} / {out[-1]['methods'][m]['ratio']:.1f}x"),
            slow=True))


# --- running ---------------------------------------------------------------------------------------------------------

def find(figure: Figure, text: str) -> str:
    """The README's figure; a pattern that matches no text or several is a stale entry, and raises."""
    matches = list(re.finditer(figure.pattern, text))
    if len(matches) != 1:
        raise LookupError(f"{figure.name}: its pattern matches the README {len(matches)} times, not once "
                          f"(the README changed, or the entry is stale): {figure.pattern}")
    return " / ".join(g.strip() for g in matches[0].groups())


def last_json(stdout: str) -> dict:
    lines = stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else {}


def run_step(argv: tuple[str, ...], folder: Path) -> dict:
    """One command's JSON line. `describe` only counts (no training, no Ray): it runs in this process, which spares
    a torch import for each of the hundred count figures."""
    if argv[:2] == ("tpsearch", "describe"):
        from tpsearch.cli import main as cli

        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = cli(list(argv[1:]))
        if rc:
            raise RuntimeError(f"{' '.join(argv)} exited {rc}")
        return last_json(out.getvalue())
    command = ([sys.executable, "-m", "tpsearch", *argv[1:]] if argv[0] == "tpsearch"
               else [sys.executable, str(ROOT / argv[0]), *argv[1:]])
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True)
    # A benchmark whose own claim failed exits 1 with its JSON line printed: the figure is still read.
    if done.returncode and not done.stdout.strip().endswith("}"):
        raise RuntimeError(f"{' '.join(argv)} exited {done.returncode}: {done.stderr.strip()[-400:]}")
    return last_json(done.stdout)


def run_steps(steps: tuple[tuple[str, ...], ...]) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="readme_figures_") as tmp:
        return [run_step(argv, Path(tmp)) for argv in steps]


def holds(figure: Figure, readme: str, today: str) -> bool:
    if figure.factor is None:
        return readme == today
    numbers = [[float(n.replace(",", "")) for n in re.findall(r"[\d,]*\d(?:\.\d+)?", v)] for v in (readme, today)]
    return len(numbers[0]) == len(numbers[1]) and all(
        1 / figure.factor <= t / r <= figure.factor for r, t in zip(*numbers) if r)


def shell(steps: tuple[tuple[str, ...], ...]) -> str:
    return " && ".join(" ".join(f"'{a}'" if " " in a or "{" in a else a for a in argv) for argv in steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", metavar="NAME[,NAME]",
                        help="figures to run: full names or their leading groups (quickstart, counts.xresnet)")
    parser.add_argument("--list", action="store_true", help="list the figures and their commands; run nothing")
    parser.add_argument("--skip-slow", action="store_true", help="leave out the commands over about 2 minutes")
    parser.add_argument("--json", action="store_true", help="print the rows as one JSON object, last")
    args = parser.parse_args()

    text = readme_text()
    wanted = [w for w in args.only.split(",") if w]
    figures = [f for f in FIGURES if not wanted or any(f.name == w or f.name.startswith(w + ".") for w in wanted)]
    if wanted and not figures:
        parser.error(f"--only: no figure is named {args.only!r}; --list shows them")
    if args.skip_slow:
        figures = [f for f in figures if not f.slow]
    # Every entry's text first: a stale one stops the script before anything runs.
    readme, stale = {}, []
    for f in figures:
        try:
            readme[f.name] = find(f, text)
        except LookupError as e:
            stale.append(str(e))
    if stale:
        sys.exit("\n".join(["stale entries:", *stale]))

    if args.list:
        for f in figures:
            print(f"{f.name:<45} {'slow ' if f.slow else '':<5}{f.where}: {readme[f.name]!r}\n    {shell(f.steps)}")
        return

    results: dict[tuple, list[dict] | Exception] = {}
    rows = []
    for i, f in enumerate(figures, 1):
        started = time.perf_counter()
        if f.steps not in results:
            try:
                results[f.steps] = run_steps(f.steps)
            except Exception as e:  # a command that failed drifts its figures, it does not stop the others
                results[f.steps] = e
        out = results[f.steps]
        try:
            today = f.read(out) if not isinstance(out, Exception) else f"error: {out}"
        except (KeyError, IndexError, TypeError) as e:
            today = f"error: no {e} in the command's JSON"
        ok = not today.startswith("error") and holds(f, readme[f.name], today)
        rows.append({"name": f.name, "where": f.where, "readme": readme[f.name], "today": today,
                     "tolerance": f.tolerance(), "ok": ok, "command": shell(f.steps)})
        print(f"[{i}/{len(figures)}] {f.name}: {'OK' if ok else 'DRIFTED'} ({time.perf_counter() - started:.0f} s)",
              file=sys.stderr, flush=True)

    width = max([len(r["name"]) for r in rows] + [4])
    print(f"{'figure':<{width}}  {'where':<32}  {'README':<28}  {'today':<28}  {'tolerance':<9}  verdict")
    for r in rows:
        print(f"{r['name']:<{width}}  {r['where'][:32]:<32}  {r['readme']:<28}  {r['today']:<28}  "
              f"{r['tolerance']:<9}  {'OK' if r['ok'] else 'DRIFTED'}")
    drifted = [r["name"] for r in rows if not r["ok"]]
    print(f"{len(rows) - len(drifted)} of {len(rows)} figures hold" + (f"; drifted: {', '.join(drifted)}"
                                                                       if drifted else ""))
    if args.json:
        print(json.dumps({"figures": rows, "drifted": drifted}))
    sys.exit(1 if drifted else 0)


if __name__ == "__main__":
    main()
