"""Retrain the K best trials of a search (or its Pareto front) several times each at a higher fidelity, and rank
them by the mean over the seeds, beside the search's own order. It runs as a linked study (STUDY-rerank, each
trial recording its source trial): running it again trains only what that study lacks, and `tpsearch export`
without --trial then takes the re-ranked winner.

(`tpsearch rerank`: its flags are `RerankOptions`' fields, one to one, with the defaults from there.)
"""
from __future__ import annotations

import argparse
from typing import Any

from tpsearch.cli._flags import (add_planned_tail, add_planned_training, add_runs_dir, add_seeds, add_storage,
                                 add_study, run_planned)
from tpsearch.cli._registry import command


def _rerank_flags(p: argparse.ArgumentParser) -> None:
    from tpsearch.planned import DEFAULT_TOP, RerankOptions

    d = RerankOptions()
    g = p.add_argument_group("what to retrain")
    add_study(g, "the search's study (default: the only study in the storage)")
    add_storage(g)
    g.add_argument("--top", type=int, default=None, metavar="K",
                   help=f"the K best completed trials (default: {DEFAULT_TOP}; with --pareto, the whole front)")
    g.add_argument("--pareto", action="store_true",
                   help="the Pareto front of parameters and accuracy instead (its K best with --top)")
    add_seeds(g, d, "architecture", "the first seed of the trainings (the data split stays the search's)")
    add_planned_training(p.add_argument_group("the fidelity of each training"), d, "(default: the search's)")
    add_runs_dir(p, d.runs_dir)
    add_planned_tail(p)


@command(80, "rerank", _rerank_flags,
         description=__doc__.split("\n\n")[0])
def run_rerank(args: argparse.Namespace) -> int:
    """retrain a search's best trials over several seeds at a higher fidelity, and re-rank them

    Example: tpsearch rerank --study resnet_5m-cifar10 --top 5 --seeds 3 --epochs 30
    """
    from tpsearch import dashboards
    from tpsearch.planned import RerankOptions, rerank

    return run_planned(args, "rerank", RerankOptions, rerank, "rerank_study", "rerank.html", dashboards.write_rerank,
                       _table)


def _table(result: dict[str, Any]) -> list[str]:
    """The human table's lines, in the re-ranked order (`run_planned` prints them, with what is missing and the
    page's path)."""
    from tpsearch.study import trial_label

    lines = [f"rerank of {result['study']!r} on {result['dataset']}: {result['seeds']} seeds each of {result['epochs']}"
             f" epochs on {result['train_images']:,} images (the search: {result['search_epochs']} epochs on "
             f"{result['search_train_images']:,}), scored on {result['validation_images']:,} validation images; "
             f"study {result['rerank_study']!r} ({result['trained_now']} trained now, {result['seconds']:.0f} s)"]
    if result["chosen"] == "top" and result["completed"] < result["top"]:
        lines.append(f"  the search has {result['completed']} completed trial(s), fewer than --top {result['top']}: "
                     f"all are re-ranked (trials the scheduler stopped early are not compared)")
    labels = [trial_label(row["source_trial"], row["trained"]) for row in result["rows"]]
    width = max(len("architecture"), *map(len, labels)) if labels else len("architecture")
    lines.append(f"  {'rank':>4}  {'architecture':<{width}}  {'parameters':>10}  {'search':>7}  {'(rank)':>6}  "
                 f"{'rerank mean ± std':>17}  {'seeds':>5}")
    for row, label in zip(result["rows"], labels):
        search = f"{row['search_value']:.2%}" if row["search_value"] is not None else "?"
        search_rank = f"({row['search_rank']})" if row["search_rank"] is not None else ""
        rerank = f"{row['mean']:.2%} ± {row['std']:.2%}" if row["n"] else "not trained"
        params = f"{row['params']:,}" if isinstance(row["params"], int) else "?"
        lines.append(f"  {row['rank'] or '':>4}  {label:<{width}}  {params:>10}  {search:>7}  {search_rank:>6}  "
                     f"{rerank:>17}  {row['n']:>5}")
    for row in result["rows"]:
        if row["diverged"]:  # scored at chance accuracy, as a search scores a diverged trial
            lines.append(f"  trial {row['source_trial']}: {row['diverged']} of its {row['n']} trainings diverged "
                         f"(scored at chance accuracy)")
    if result["winner"] is not None:
        same = "the search's best too" if result["winner"] == result["search_best"] else \
            f"the search's best was trial {result['search_best']}"
        lines.append(f"re-ranked winner: trial {result['winner']} ({same}); `tpsearch export --study "
                     f"{result['study']}` takes it")
    return lines
