"""Which of a search's best trials is really the best? Retrain the K best (or the Pareto front) several times each
at a higher fidelity, and rank them by the mean over the seeds.

    >>> from tpsearch.search import RerankOptions, rerank
    >>> result = rerank(RerankOptions(study="resnet_5m-cifar10", top=5, seeds=3, epochs=30))  # doctest: +SKIP
    >>> [(row["source_trial"], row["mean"], row["std"], row["search_rank"]) for row in result["rows"]]  # doctest: +SKIP

A search scores each trial once, at a low fidelity, on one validation split: the top trials often sit within one
standard error of each other (README, "choosing the final architecture"), so its order among them is partly noise.
The rerank is a linked study, `<study>-rerank` (its user attributes name the `source_study`), run by the search's
own driver with planned trials, as `tpsearch ablate` is: each (source trial, seed) is one trial enqueued with the
source trial's params as they were drawn (architecture, options and training hyperparameters), and user attributes
`source_trial` (its number in the source study) and `seed`. So calling it again trains only what the study lacks,
and a larger --top or --seeds reuses what is there. The data split is the search's (its seed), so the validation
images are the same; the training is plain (no scheduler, hence none of ASHA's restarts at its rungs), on the
whole training split unless told otherwise, for the search's epochs unless told otherwise.

The re-ranked order is computed from the rerank study's trials whenever it is read (`reranked`), never stored, so
it cannot go stale: `tpsearch export` without --trial takes its winner (`rerank_winner`).
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from tpsearch.exceptions import UsageError
from tpsearch.planned._planned import _SEARCH, PlannedOptions
from tpsearch.search import RunOptions
from tpsearch.study import accuracy_of, objectives_of, pareto_front

DEFAULT_TOP = 5


def rerank_study_name(source: str) -> str:
    return f"{source}-rerank"


@dataclass
class RerankOptions(PlannedOptions):
    """Everything `tpsearch rerank` takes; each field is the flag of the same name (the trainings' fields are
    `PlannedOptions`'). Invalid values raise `UsageError` when the options are made."""

    study: str | None = None              # the search to re-rank; None: the only study in the storage
    top: int | None = None                # the K best completed trials; None: 5, or the whole front with --pareto
    pareto: bool = False                  # the Pareto front (fewer parameters, higher accuracy) instead
    seed: int = 0                         # the first training seed (weights, batches); the split stays the search's
    epochs: int | None = None             # None: the search's

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.top is not None and (isinstance(self.top, bool) or not isinstance(self.top, int) or self.top < 1):
            raise UsageError(f"--top must be an integer of at least 1, but got {self.top!r}")
        self.run_options({"space": "resnet_5m", "dataset": "digits", "seed": 0, "epochs": 1})  # fidelity, devices

    def run_options(self, source: dict[str, Any], tricks: Iterable[str] = (),
                    options: Iterable[str] = (), max_params: int = _SEARCH.max_params) -> RunOptions:
        """The driver's options for the rerank study of a source study with user attributes `source`."""
        return self.planned_run(
            seed=int(source.get("seed") or 0), space=source["space"], dataset=source["dataset"],
            study=rerank_study_name(source.get("name", "study")), epochs=self.epochs or int(source["epochs"]),
            max_params=max_params, tricks=list(tricks), options=list(options))


def rerank(opts: RerankOptions) -> dict[str, Any]:
    """Train the rerank's missing trials through the driver, then read every architecture back from the rerank
    study: a dict with `rows` in the re-ranked order (each with its seeds' accuracies, mean, spread, and the
    search's own score and rank), the `winner` and what was trained how."""
    import optuna

    from tpsearch import spaces, trainers
    from tpsearch.search import PlannedTrial, run_search
    from tpsearch.study import ranked, trained_index
    from tpsearch.planned._planned import existing_trials, made_trials
    from tpsearch.storages import load_study, open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the table and the progress bar say what its INFO would
    started = time.time()
    source = load_study(open_storage(opts.storage, create=False), opts.study)
    attrs = {**source.user_attrs, "name": source.study_name}
    for key in ("space", "dataset", "epochs"):
        if attrs.get(key) is None:
            raise UsageError(f"study {source.study_name!r} records no {key!r}: was it written by `tpsearch run`?")
    if source.user_attrs.get("source_study") is not None:
        raise UsageError(f"study {source.study_name!r} is itself a rerank (of {source.user_attrs['source_study']!r}):"
                         f" give the search's study")
    source_trials = source.get_trials(deepcopy=False)
    order = ranked(source_trials)
    candidates = _candidates(order, opts, objectives_of(source))
    if not candidates:
        raise UsageError(f"study {source.study_name!r} has no completed trial yet ({len(source_trials)} trials): "
                         f"run the search longer, or wait for it")
    space = spaces.get(attrs["space"])
    data = trainers.load_dataset(attrs["dataset"], opts.data_dir, seed=int(attrs.get("seed") or 0))
    tricks, options = _drawn_with(space, candidates, data.shape)
    max_params = max([int(attrs.get("max_params") or _SEARCH.max_params)]
                     + [int(t.user_attrs.get("params") or 0) for t in candidates])
    run = opts.run_options(attrs, tricks, options, max_params)
    # Seed by seed: a run stopped half way already has every architecture at least once.
    planned = [PlannedTrial(dict(t.params), {"source_trial": t.number, "seed": opts.seed + s})
               for s in range(opts.seeds) for t in candidates]
    link = {"source_study": source.study_name}
    before = len(made_trials(existing_trials(run, "a rerank", link), planned))
    summary = run_search(run, planned=planned, study_attrs=link)
    if summary.interrupted:
        raise KeyboardInterrupt  # the trials finished so far are in the study: the same call resumes
    trials = existing_trials(run, "a rerank", link)
    made = made_trials(trials, planned)

    search_rank = {t.number: i for i, t in enumerate(order, start=1)}
    index = trained_index(source_trials)
    by_number = {t.number: t for t in source_trials}
    rows = reranked(trials)
    untrained = [t for t in candidates if t.number not in {row["source_trial"] for row in rows}]
    rows += [_row(t.number, [], t.user_attrs) for t in untrained]
    for row in rows:
        t = by_number.get(row["source_trial"])
        row.update(search_value=accuracy_of(t) if t is not None else None,
                   search_rank=search_rank.get(row["source_trial"]), trained=index.get(row["source_trial"]))
    best = order[0]
    return {
        "study": source.study_name, "rerank_study": run.study_name(), "storage": summary.storage,
        "space": space.name, "dataset": data.name, "epochs": run.epochs,
        "train_images": trainers.images_per_epoch(data, run.train_config({})),
        "search_epochs": int(attrs["epochs"]), "search_train_images": _search_images(data, attrs),
        "validation_images": len(data.val_y), "seeds": opts.seeds, "first_seed": opts.seed,
        "chosen": "pareto" if opts.pareto else "top", "top": opts.top or (None if opts.pareto else DEFAULT_TOP),
        "completed": len(order), "candidates": [t.number for t in candidates],
        "rows": rows, "winner": rows[0]["source_trial"] if rows and rows[0]["n"] else None,
        "search_best": best.number, "trained_now": len(made) - before, "missing": len(planned) - len(made),
        "seconds": round(time.time() - started, 1), "error": summary.error,
    }


def reranked(trials: Iterable[Any]) -> list[dict[str, Any]]:
    """Each architecture of a rerank study (its `source_trial`) with its seeds' accuracies, their mean, standard
    deviation and count, best mean first; ties go to fewer parameters, then to the earlier source trial. A seed
    that diverged counts at the chance accuracy it was scored at: an architecture that diverges is worse for it."""
    from tpsearch.study import Outcome, final_accuracy, outcome_of

    groups: dict[int, list[Any]] = {}
    for t in trials:
        if outcome_of(t) in (Outcome.COMPLETE, Outcome.DIVERGED) and "source_trial" in t.user_attrs \
                and final_accuracy(t) is not None:
            groups.setdefault(int(t.user_attrs["source_trial"]), []).append(t)
    rows = [_row(number, sorted(ts, key=lambda t: (t.user_attrs.get("seed", 0), t.number)), ts[0].user_attrs)
            for number, ts in groups.items()]
    # Rounded: equal means of seeds' accuracies can differ in the last bits of a float, and must tie.
    rows.sort(key=lambda r: (-round(r["mean"], 9), r["params"] if r["params"] is not None else float("inf"),
                             r["source_trial"]))
    for rank, row in enumerate(rows, start=1):
        row["rank"] = rank
    return rows


def rerank_winner(storage: Any, source: str) -> dict[str, Any] | None:
    """The re-ranked winner of study `source` (its row of `reranked`, with the rerank study's name as `study`),
    or None when the storage holds no rerank of it with a trained trial."""
    from tpsearch.storages import load_study, study_names

    name = rerank_study_name(source)
    if name not in study_names(storage):
        return None
    study = load_study(storage, name)
    if study.user_attrs.get("source_study") != source:  # a study that merely has the name
        return None
    rows = reranked(study.get_trials(deepcopy=False))
    return {**rows[0], "study": name} if rows else None


def _row(number: int, trials: list[Any], attrs: dict[str, Any]) -> dict[str, Any]:
    from tpsearch.study import Outcome, final_accuracy, outcome_of
    from tpsearch.planned._planned import mean_std

    accuracies = [float(final_accuracy(t)) for t in trials]
    mean, std = mean_std(accuracies)
    return {"source_trial": number, "rank": None, "params": attrs.get("params"), "arch": attrs.get("arch"),
            "hparams": attrs.get("hparams"), "n": len(trials), "accuracies": accuracies, "mean": mean, "std": std,
            "diverged": sum(1 for t in trials if outcome_of(t) == Outcome.DIVERGED),
            "trials": [{"number": t.number, "seed": t.user_attrs.get("seed"), "value": final_accuracy(t)}
                       for t in trials]}


def _candidates(order: list[Any], opts: RerankOptions, objectives: Sequence[str] = ("accuracy",)) -> list[Any]:
    """The source trials to retrain, best first: the K best, or the Pareto front (its K best with --top): the
    study's own over its objectives where it has several (`run --objectives`), else of parameters and accuracy."""
    if not opts.pareto:
        return order[:opts.top or DEFAULT_TOP]
    if len(objectives) > 1:
        on = {id(t) for t in pareto_front(order, objectives)}
        front = [t for t in order if id(t) in on]
        return front[:opts.top] if opts.top else front
    import numpy as np

    from tpsearch.study import pareto_mask  # the dashboards' front too, so the page and this agree

    cost = np.array([float(t.user_attrs.get("params") or 0) for t in order])
    mask = pareto_mask(cost, np.array([float(accuracy_of(t)) for t in order]))
    front = [t for t, on in zip(order, mask) if on]
    return front[:opts.top] if opts.top else front


def _drawn_with(space: Any, trials: list[Any], shape: dict[str, int]) -> tuple[list[str], list[str]]:
    """The --tricks and --options the source trials were drawn with, read off their params and proven by a dry run:
    each trial's params, enqueued, must come back through the space's draw as the very same params and
    architecture, or the rerank would train something else (or never find its trials again)."""
    import optuna

    from tpsearch.spaces import OPTIONS
    from tpsearch.spaces import SEARCHED_TRICKS

    found = set()
    for t in trials:
        # A trick's first dimension is named after it (mixup, schedule, ...); an option's is its `param`.
        tricks = tuple(name for name in SEARCHED_TRICKS if name in t.params)
        options = tuple(name for name, o in OPTIONS.items() if o.param in t.params)
        probe = optuna.create_study()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            probe.enqueue_trial(dict(t.params))
            drawn = probe.ask()
            try:
                arch = space.suggest_with_options(drawn, options, in_channels=shape["in_channels"],
                                                  image_size=shape["image_size"])
                space.suggest_training(drawn, tricks=tricks)
            except (ValueError, UsageError) as e:
                arch = str(e)
        if drawn.params != t.params or arch != t.user_attrs.get("arch"):
            raise UsageError(f"trial {t.number}'s params do not draw its architecture again in space "
                             f"{space.name!r} (was the space changed since the search?): it cannot be retrained")
        found.add((tricks, options))
    if len(found) > 1:
        raise UsageError(f"the trials to re-rank were drawn with different --tricks or --options ({sorted(found)}; "
                         f"the search was resumed with others): a smaller --top may keep to one kind")
    tricks, options = found.pop()
    return list(tricks), list(options)


def _search_images(data: Any, attrs: dict[str, Any]) -> int:
    """The training images per epoch of the search's trials."""
    from tpsearch.trainers import images_per_epoch

    search = RunOptions(train_fraction=float(attrs.get("train_fraction") or 1.0),
                        train_images=attrs.get("train_images"))
    return images_per_epoch(data, search.train_config({}))
