"""Train one preset bare, then with each named training trick switched on in turn (cumulatively), several seeds
per row, and print each row's accuracy and error with the spread over the seeds. It runs as a small study
(ablate-PRESET-DATASET): running it again trains only what the study lacks, and optuna-dashboard reads it.

(`tpsearch ablate`: its flags are `AblateOptions`' fields, one to one, with the defaults from there.)
"""
from __future__ import annotations

import argparse
from typing import Any

from tpsearch.cli._flags import (add_dataset, add_planned_tail, add_planned_training, add_runs_dir,
                                 add_seeds, add_storage, names_list, run_planned)
from tpsearch.cli._registry import command


def _ablate_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.planned import AblateOptions
    from tpsearch.spaces import BATCH_SIZES, TRICKS

    d = AblateOptions()
    tricks = "; ".join(f"{t.name}: {t.field} {t.off} -> {t.on}" for t in TRICKS.values())
    p.description = __doc__.split("\n\n")[0] + f" Tricks (the baseline has every one off): {tricks}."
    g = p.add_argument_group("what to compare")
    g.add_argument("--preset", default=d.preset, help="the architecture, a preset (default: %(default)s)")
    g.add_argument("--space", default=None, help="the preset's space (default: the space that has it)")
    g.add_argument("--tricks", type=names_list(TRICKS), default=d.tricks, metavar="T1,T2",
                   help=f"tricks switched on in this order, one row each (default: {','.join(d.tricks)})")
    add_seeds(g, d, "row", "the first seed (initial weights and batches), and the data split's")
    g = p.add_argument_group("training of each row")
    add_dataset(g, d.dataset)
    g.add_argument("--batch-size", type=int, default=d.batch_size, choices=BATCH_SIZES,
                   help="(default: %(default)s)")
    add_planned_training(g, d)
    g = p.add_argument_group("where it is recorded")
    g.add_argument("--study", default=None, help="study name (default: ablate-PRESET-DATASET)")
    add_storage(g)
    add_runs_dir(g, d.runs_dir)
    add_planned_tail(p)


@command(70, "ablate", _ablate_flags)
def run_ablate(args: argparse.Namespace) -> int:
    """what each training trick adds: a preset bare, then tricks added in turn, several seeds

    Example: tpsearch ablate --preset se_mxresnet20 --tricks cosine,label_smoothing,mixup,reflect --epochs 30
    """
    from tpsearch import dashboards
    from tpsearch.planned import AblateOptions, ablate

    return run_planned(args, "ablate", AblateOptions, ablate, "study", "ablation.html", dashboards.write_ablation,
                       _table)


def _table(result: dict[str, Any]) -> list[str]:
    """The human table's lines (`run_planned` prints them, with what is missing and the page's path)."""
    lines = [f"{result['preset']} ({result['params']:,} parameters) on {result['dataset']}: {result['epochs']} "
             f"epochs of {result['train_images']:,} images, batch {result['batch_size']}, {result['seeds']} seeds "
             f"per row; study {result['study']!r} ({result['trained_now']} trained now, {result['seconds']:.0f} s)"]
    names = [" + ".join(row["tricks"]) or "baseline" for row in result["rows"]]
    width = max(len("tricks"), *map(len, names))
    lines.append(f"  {'row':>3}  {'tricks':<{width}}  {'seeds':>5}  {'accuracy':>17}  {'error':>7}")
    for row, tricks in zip(result["rows"], names):
        if row["seeds"]:
            accuracy = f"{row['accuracy_mean']:.2%} ± {row['accuracy_std']:.2%}"
            error = f"{row['error_mean']:.2%}"
        else:
            accuracy, error = "not trained", ""
        lines.append(f"  {row['row']:>3}  {tricks:<{width}}  {row['seeds']:>5}  {accuracy:>17}  {error:>7}")
    for row in result["rows"]:
        if row["diverged"]:  # scored at chance accuracy, as a search scores a diverged trial
            lines.append(f"  row {row['row']}: {row['diverged']} of its {row['seeds']} trainings diverged "
                         f"(scored at chance accuracy)")
    return lines
