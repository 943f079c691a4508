"""`tpsearch run --tricks` and `--options`: the training tricks and the architecture options join a search's draws
only when named, and a search that names none draws exactly what it drew before they existed."""
from __future__ import annotations

import optuna
import pytest
from optuna.trial import FixedTrial

from tpsearch import spaces
from tpsearch.search._samplers import make_sampler
from tpsearch.search._searcher import StudySearcher
from tpsearch.testing.search import run_options
from tpsearch.spaces._training import HPARAMS, SEARCHED_TRICKS, TRICKS, params_of, suggest
from tpsearch.trainers import HPARAM_KEYS, TrainConfig

SPACE = spaces.get("resnet_5m")
TRICK_PARAMS = {"mixup", "mixup_alpha", "confidence_penalty", "schedule", "pad_mode"}


def _suggest_before_tricks(trial) -> dict:
    """`spaces._training.suggest` as it was before the tricks: the draws seeded searches were recorded with."""
    optimizer = trial.suggest_categorical("optimizer", ["sgd", "adamw"])
    lr = (trial.suggest_float("lr_sgd", 1e-2, 0.4, log=True) if optimizer == "sgd"
          else trial.suggest_float("lr_adamw", 1e-4, 1e-2, log=True))
    return {"optimizer": optimizer, "lr": lr,
            "weight_decay": trial.suggest_float("weight_decay", 1e-5, 1e-3, log=True),
            "batch_size": trial.suggest_categorical("batch_size", [64, 128, 256, 512]),
            "label_smoothing": trial.suggest_float("label_smoothing", 0.0, 0.2)}


def _draws(tmp_path, n: int, sampler: str, **kw) -> list[optuna.trial.FrozenTrial]:
    """`n` trials drawn by the driver's own draw (the searcher's budget check included), in memory, told 0.5."""
    # No MACs cap, as the draws were recorded (the driver settles --max-macs auto before a searcher sees it).
    opts = run_options(tmp_path, sampler=sampler, seed=7, max_params=60_000, max_macs=None, **kw)
    study = optuna.create_study(direction="maximize", sampler=make_sampler(opts))
    searcher = StudySearcher(study, SPACE, opts, shape=dict(num_classes=10, in_channels=1, image_size=8),
                             checkpoint_dir=None)
    for _ in range(n):
        trial, _, _ = searcher._ask_feasible()
        study.tell(trial, 0.5)
    return study.trials


@pytest.fixture(autouse=True)
def _quiet_optuna():
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.mark.parametrize("sampler", ["tpe", "random"])
def test_without_tricks_a_seeded_search_draws_what_it_drew_before(tmp_path, sampler, monkeypatch):
    now = _draws(tmp_path / "now", 12, sampler)
    assert not TRICK_PARAMS & {k for t in now for k in t.params}
    assert not [k for t in now for k in t.params if k.startswith("opt_")]
    monkeypatch.setattr(type(SPACE), "suggest_training", lambda self, trial, tricks=(): _suggest_before_tricks(trial))
    before = _draws(tmp_path / "before", 12, sampler)
    assert [t.params for t in now] == [t.params for t in before]
    assert [t.user_attrs.get("hparams") for t in now] == [t.user_attrs.get("hparams") for t in before]


def test_named_tricks_are_searched_and_reach_the_trainer(tmp_path):
    trials = _draws(tmp_path, 12, "random", tricks=["schedule", "mixup", "pad_mode", "confidence_penalty"])
    feasible = [t for t in trials if t.user_attrs["feasible"]]
    assert feasible
    for t in feasible:
        assert {"mixup", "confidence_penalty", "schedule", "pad_mode"} <= set(t.params)
        assert ("mixup_alpha" in t.params) == t.params["mixup"]  # alpha is drawn only when mixup is on
        config = TrainConfig.from_hparams(t.user_attrs["hparams"])  # what the worker and export's retrain do
        assert config.schedule == t.params["schedule"] and config.pad_mode == t.params["pad_mode"]
        assert config.mixup_alpha == t.params.get("mixup_alpha", 0.0)
        assert config.confidence_penalty == t.params["confidence_penalty"]
    assert {t.params["schedule"] for t in feasible} == {"cosine", "step"}
    assert {t.params["mixup"] for t in feasible} == {False, True}


def test_a_training_configuration_is_enqueued_through_params_of():
    for hparams in ({"optimizer": "adamw", "lr": 3e-3, "weight_decay": 1e-4, "batch_size": 256,
                     "label_smoothing": 0.1, "mixup_alpha": 0.2, "confidence_penalty": 0.05, "schedule": "step",
                     "pad_mode": "zero"},
                    {"optimizer": "sgd", "lr": 0.1, "weight_decay": 5e-4, "batch_size": 128,
                     "label_smoothing": 0.0, "mixup_alpha": 0.0, "confidence_penalty": 0.0, "schedule": "cosine",
                     "pad_mode": "reflect"}):
        assert suggest(FixedTrial(params_of(hparams)), list(SEARCHED_TRICKS)) == hparams


def test_params_of_inverts_every_draw():
    """`params_of` is read from the records, not written by hand: it gives back the params of any draw (and the
    trainer's defaults for the tricks the draw did not name)."""
    defaults = {h.field: h.default for h in SEARCHED_TRICKS.values()}
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(40):
        trial = study.ask()
        hparams = suggest(trial, list(SEARCHED_TRICKS)[:i % (len(SEARCHED_TRICKS) + 1)])
        params = params_of(hparams)
        assert params.items() >= trial.params.items()
        assert suggest(FixedTrial(params), list(SEARCHED_TRICKS)) == {**defaults, **hparams}
        study.tell(trial, 0.5)


def test_each_training_hyperparameter_is_a_field_the_trainer_takes_and_each_switch_a_setting_it_trains():
    assert tuple(HPARAMS) == HPARAM_KEYS  # what spaces draw is what `TrainConfig.from_hparams` takes, in its order
    for t in TRICKS.values():
        assert t.field in HPARAMS
        for value in (t.off, t.on):
            assert getattr(TrainConfig.from_hparams({t.field: value}), t.field) == value


def test_an_unknown_trick_is_refused_naming_the_known_ones(tmp_path):
    with pytest.raises(Exception, match="unknown trick 'cutout' to search; choose from: mixup, confidence_penalty"):
        run_options(tmp_path, tricks=["mixup", "cutout"])


def test_named_options_are_searched_into_the_architecture_and_counted(tmp_path):
    trials = _draws(tmp_path, 16, "random", options=["stochastic_depth", "se", "mish", "factorized"])
    feasible = [t for t in trials if t.user_attrs["feasible"]]
    assert feasible
    for t in trials:
        assert {"opt_se", "opt_act", "opt_factorized", "opt_drop_path"} <= set(t.params)
        arch = t.user_attrs["arch"]
        assert arch.get("se", False) == t.params["opt_se"] and arch.get("act", "relu") == t.params["opt_act"]
        assert arch.get("factorized", False) == t.params["opt_factorized"]
        assert t.user_attrs["params"] == SPACE.count_params(arch, num_classes=10, in_channels=1, image_size=8)
        options = ["se", "mish", "factorized", "stochastic_depth"]
        again = SPACE.suggest_with_options(FixedTrial(SPACE.params_with_options(arch, options, in_channels=1,
                                                                                image_size=8)),
                                           options, in_channels=1, image_size=8)
        assert again == arch  # how an enqueued architecture with options comes back
    assert {t.params["opt_se"] for t in trials} == {False, True}


def test_an_option_the_space_does_not_take_is_refused_before_anything_is_written(tmp_path, capsys):
    from tpsearch.cli import main

    storage = f"sqlite:///{tmp_path}/studies.db"
    assert main(["run", "--space", "xresnet", "--dataset", "digits", "--options", "se", "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("tpsearch run: error: --options se is not an option of space 'xresnet' (its options: "
                           "factorized, stochastic_depth)")
    assert not (tmp_path / "studies.db").exists()
