"""How tpsearch reads trial states: infeasible draws are PRUNED untrained, told apart by `feasible: false`."""
from __future__ import annotations

import optuna
from optuna.trial import TrialState

TRAINED = (TrialState.COMPLETE, TrialState.PRUNED)


def is_trained(trial: optuna.trial.FrozenTrial) -> bool:
    """Completed or pruned after training: what `--trials` counts (infeasible draws are pruned untrained)."""
    return trial.state in TRAINED and trial.user_attrs.get("feasible", True) is not False


def is_infeasible(trial: optuna.trial.FrozenTrial) -> bool:
    return trial.user_attrs.get("feasible") is False
