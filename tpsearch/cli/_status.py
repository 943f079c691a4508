"""`tpsearch status`: the studies of a storage, their trials by outcome, and the best trials of one."""
from __future__ import annotations

import argparse
from typing import Any

import optuna

from tpsearch.exceptions import UsageError
from tpsearch.study import objectives_of, pareto_rows
from tpsearch.study import Outcome, accuracy_of, best_trial, count_outcomes, outcome_of, ranked, trained_index
from tpsearch.cli._flags import add_json, add_storage, add_study, emit_json
from tpsearch.cli._registry import command
from tpsearch.storages import load_study, open_storage, redact, study_names


def _status_flags(p: argparse.ArgumentParser) -> None:
    add_study(p, help="the study to detail")
    add_storage(p)
    p.add_argument("--top", type=int, default=10, help="best trials shown")
    add_json(p)


def study_counts(study: optuna.Study) -> dict[str, int]:
    """Trials per outcome (see `tpsearch.study.Outcome`), and "trained": what `--trials` counts."""
    counts = count_outcomes(study.get_trials(deepcopy=False))
    return {"trained": sum(n for o, n in counts.items() if o.trained), **{o.value: n for o, n in counts.items()}}


def best_rows(study: optuna.Study, top: int) -> list[dict[str, Any]]:
    index = trained_index(study.get_trials(deepcopy=False))
    return [{"trial": t.number, "trained": index.get(t.number), "val_accuracy": accuracy_of(t),
             "params": t.user_attrs.get("params"), "macs": t.user_attrs.get("macs"),
             "epochs": t.user_attrs.get("epochs"), "seconds": t.user_attrs.get("seconds"),
             "arch": t.user_attrs.get("arch")} for t in ranked(study)[:top]]


def failure_reasons(study: optuna.Study) -> list[dict[str, Any]]:
    """The failed trials grouped by their reason, most frequent first."""
    by_reason: dict[str, list[int]] = {}
    for t in study.get_trials(deepcopy=False):
        if outcome_of(t) is Outcome.FAILED:
            by_reason.setdefault(str(t.user_attrs.get("reason", "no reason recorded")), []).append(t.number)
    return [{"reason": r, "trials": n} for r, n in sorted(by_reason.items(), key=lambda kv: (-len(kv[1]), kv[0]))]


def budgets(study: optuna.Study) -> dict[str, int | None]:
    """The budgets of the study's last run: parameters, and MACs per image (None: no limit)."""
    return {"max_params": study.user_attrs.get("max_params"), "max_macs": study.user_attrs.get("max_macs")}


def _number(value: Any, width: int, millions: bool = False) -> str:
    """A count for the table, in millions if asked; '-' where there is none (or a study of another tool's)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value:
        return f"{'-':>{width}}"
    return f"{value / 1e6:{width}.1f}" if millions else f"{value:>{width},}"


def _objectives(study: optuna.Study) -> list[str] | None:
    """A tpsearch study's objectives; None for a study of another tool's (its directions are not ours)."""
    try:
        return objectives_of(study)
    except UsageError:
        return None


def _print_front(objectives: list[str], rows: list[dict[str, Any]]) -> None:
    costs = objectives[1:]
    print(f"\nPareto front over {', '.join(objectives)} ({len(rows)} trials, most accurate first):")
    print(f"{'trial':>6} {'trained':>7} {'val_acc':>8} " + " ".join(f"{c:>12}" for c in costs))
    for r in rows:
        cells = [f"{r[c]:>12.4g}" if c == "latency" else f"{r[c] or 0:>12,.0f}" for c in costs]
        print(f"{r['trial']:>6} {r['trained'] or '-':>7} {r['accuracy']:>8.4f} " + " ".join(cells))


def _dataset_label(dataset: object) -> str:
    """The table's short name: an image folder's own name and side, not its path (--json keeps the path)."""
    from tpsearch.trainers import dataset_label

    if isinstance(dataset, str) and dataset.startswith("imagefolder:"):
        return dataset_label(dataset)
    return str(dataset)


@command(100, "status", _status_flags)
def status(args: argparse.Namespace) -> int:
    """studies in the storage, trial counts by state, the best trials

    List the studies of a storage with their trial counts by state; with --study (or when there is one study), the best
    trials as a table, and the Pareto front of a study searched with several --objectives.
    """
    # One cached storage for every read: each optuna.load_study on a bare RDBStorage would read all trials again.
    storage = optuna.storages.get_storage(open_storage(args.storage, create=False))
    names = study_names(storage)
    detail_study = load_study(storage, args.study) if (args.study is not None or len(names) == 1) else None
    studies = {}
    for name in names:
        study = optuna.load_study(study_name=name, storage=storage)
        objectives = _objectives(study)
        best = best_trial(study.get_trials(deepcopy=False)) if objectives else None
        studies[name] = {"space": study.user_attrs.get("space"), "dataset": study.user_attrs.get("dataset"),
                         "objectives": objectives, **budgets(study), **study_counts(study),
                         "best": None if best is None else accuracy_of(best)}
    detail = None
    if detail_study is not None:
        detail = {"study": detail_study.study_name, **budgets(detail_study), "best": best_rows(detail_study, args.top),
                  "failures": failure_reasons(detail_study)}
        objectives = studies[detail_study.study_name]["objectives"]
        if objectives and len(objectives) > 1:
            detail.update(objectives=objectives,
                          pareto=pareto_rows(detail_study.get_trials(deepcopy=False), objectives))
    if args.json:
        emit_json({"storage": redact(args.storage), "studies": studies, **({"detail": detail} if detail else {})})
        return 0
    if not names:
        print(f"no studies in {redact(args.storage)}")
        return 0
    shown = [Outcome.COMPLETE, Outcome.PRUNED, Outcome.FAILED, Outcome.INFEASIBLE, Outcome.RUNNING]
    # The text columns as wide as their longest entry (a long study name, a FILE.py:CLASS space, an image
    # folder), so that the numbers after them stay in their columns.
    cells = {name: (name, str(s["space"]), _dataset_label(s["dataset"])) for name, s in studies.items()}
    w_name, w_space, w_data = (max([len(h), *(len(c[i]) for c in cells.values())])
                               for i, h in enumerate(("study", "space", "dataset")))
    print(f"{'study':<{w_name}} {'space':<{w_space}} {'dataset':<{w_data}} {'max params':>11} {'max MMACs':>9} "
          f"{'best':>7} {'trained':>7} " + " ".join(f"{o.value:>{len(o.value)}}" for o in shown))
    for name, s in studies.items():
        counts = " ".join(f"{s[o.value]:>{len(o.value)}}" for o in shown)
        best = f"{'-':>7}" if s["best"] is None else f"{s['best']:>7.4f}"
        study, space, data = cells[name]
        print(f"{study:<{w_name}} {space:<{w_space}} {data:<{w_data}} {_number(s['max_params'], 11)} "
              f"{_number(s['max_macs'], 9, millions=True)} {best} {s['trained']:>7} {counts}")
    if not detail:
        print(f"\n{len(names)} studies: add --study NAME for one study's best trials and failure reasons")
        return 0
    macs = _number(detail["max_macs"], 0)
    budget = "no MACs budget" if macs == "-" else f"at most {macs} MACs per image"
    print(f"\nbest trials of {detail['study']!r} ({budget}; trial: Optuna's number, which counts infeasible "
          f"draws too; trained: its place among the trained trials):")
    print(f"{'trial':>6} {'trained':>7} {'val_acc':>8} {'params':>10} {'MMACs':>9} {'epochs':>6}  arch")
    for r in detail["best"]:
        macs = _number(r["macs"], 9, millions=True)
        print(f"{r['trial']:>6} {r['trained'] or '-':>7} {r['val_accuracy']:>8.4f} {r['params'] or 0:>10,} {macs} "
              f"{r['epochs'] or 0:>6}  {r['arch']}")
    if detail.get("pareto") is not None:
        _print_front(detail["objectives"], detail["pareto"])
    if detail["failures"]:
        print("\nfailed trials, by reason:")
        for f in detail["failures"]:
            shown_numbers = ", ".join(map(str, f["trials"][:5])) + (", ..." if len(f["trials"]) > 5 else "")
            print(f"  {len(f['trials']):>4} x {f['reason']} (trials {shown_numbers})")
    return 0
