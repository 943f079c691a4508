"""The sampler a search draws with (`--sampler`), as Optuna makes it, with two fixes to TPE for a search.

1. Its start-up trials are trained trials. Optuna's TPE samples at random until `n_startup_trials` trials are
   COMPLETE or PRUNED, and a draw over the budget is told PRUNED at once: on a space where half the draws break the
   budget, TPE modelled "good" trials on the least infeasible draws before a single network had trained.
2. Multi-objective studies with pruning. TPE ranks a pruned trial by its last intermediate value, read through
   `study.direction`, which a multi-objective study refuses (`RuntimeError: A single direction cannot be retrieved
   from a multi-objective study`): `--objectives accuracy,COST` under ASHA crashed as soon as TPE left its start-up
   trials. A search's intermediate values are accuracies (the first objective, maximised), so TPE is shown the
   study with that direction as its single one; its split of completed trials reads `directions`, unchanged.
"""
from __future__ import annotations

import warnings
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from tpsearch.search._options import RunOptions
from tpsearch.study import is_trained


def make_sampler(opts: RunOptions) -> optuna.samplers.BaseSampler:
    if opts.sampler == "random":
        return optuna.samplers.RandomSampler(seed=opts.seed)
    if opts.sampler == "nsga2":
        # Its generations are of completed trials; constraints (the budgets) reach it through each trial's.
        return optuna.samplers.NSGAIISampler(seed=opts.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        # multivariate+group model the conditional dimensions jointly; constant_liar spreads concurrent trials.
        # The budget reaches TPE through each trial's constraint (set when it is drawn).
        return SearchTPE(seed=opts.seed, n_startup_trials=opts.startup_trials, multivariate=True, group=True,
                         constant_liar=True)


class SearchTPE(optuna.samplers.TPESampler):
    """Optuna's TPE, its start-up counted in trained trials and its pruned-trial ranking on accuracy (see above)."""

    def __init__(self, *, seed: int, n_startup_trials: int = 10, **kwargs: Any) -> None:
        super().__init__(seed=seed, n_startup_trials=n_startup_trials, **kwargs)
        self._startup = n_startup_trials
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._warming_up = True

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        super().before_trial(study, trial)
        if self._warming_up:  # a study's trained trials only grow: once past the start-up, no need to count again
            done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED))
            self._warming_up = sum(1 for t in done if is_trained(t)) < self._startup

    def sample_relative(self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, Any]) -> dict[str, Any]:
        if self._warming_up:
            return {}
        return super().sample_relative(_AccuracyFirst(study), trial, search_space)  # type: ignore[arg-type]

    def sample_independent(self, study: optuna.Study, trial: FrozenTrial, param_name: str,
                           param_distribution: Any) -> Any:
        if self._warming_up:
            return self._random.sample_independent(study, trial, param_name, param_distribution)
        return super().sample_independent(_AccuracyFirst(study), trial, param_name,  # type: ignore[arg-type]
                                          param_distribution)


class _AccuracyFirst:
    """A study as TPE's ranking of pruned trials needs it: the same study, whose `direction` is its first one."""

    def __init__(self, study: optuna.Study) -> None:
        self._study = study

    @property
    def direction(self) -> optuna.study.StudyDirection:
        return self._study.directions[0]

    def __getattr__(self, name: str) -> Any:
        return getattr(self._study, name)
