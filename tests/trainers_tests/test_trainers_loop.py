"""The training loop on the CPU: reproducible, budgeted, and every failure a result with a reason."""
from __future__ import annotations

import math

import optuna
import pytest
import torch

from tpsearch import spaces
from tpsearch.trainers import (EpochReport, TrainConfig, TrainResult, evaluate, lr_schedule, make_synthetic,
                               train)
from tpsearch.trainers._augment import normalize
from tpsearch.testing.trainers import inject_fault

pytestmark = pytest.mark.slow  # trains

SPACE = spaces.get("resnet_5m")


@pytest.fixture(scope="module")
def data():
    return make_synthetic(400, image_size=8)


def _model(data, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return SPACE.build(SPACE.preset("tiny"), num_classes=data.num_classes, in_channels=data.in_channels,
                       image_size=data.image_size)


def _fields(history: list[EpochReport]) -> list[tuple[float, float, float]]:
    return [(r.val_accuracy, r.val_loss, r.train_loss) for r in history]


def test_trains_and_reports_every_epoch(data):
    reports: list[EpochReport] = []
    result = train(_model(data), data, TrainConfig(epochs=3, batch_size=32), callback=reports.append)
    assert isinstance(result, TrainResult)
    assert (result.status, result.reason, result.epochs, result.device) == ("completed", None, 3, "cpu")
    assert [r.epoch for r in reports] == [1, 2, 3] and result.history == reports
    for r in reports:
        assert 0 <= r.val_accuracy <= 1 and r.seconds > 0 and r.images_per_s > 0
        assert math.isfinite(r.val_loss) and math.isfinite(r.train_loss)
    assert result.val_accuracy == reports[-1].val_accuracy and result.train_loss == reports[-1].train_loss
    assert reports[-1].val_accuracy > 0.5  # synthetic classes are learnable: chance is 0.1
    assert result.images_per_s == pytest.approx(sum(r.images_per_s for r in reports) / 3)


def test_same_seed_same_history_and_weights(data):
    config = TrainConfig(epochs=2, batch_size=32, seed=3)
    a, b = _model(data), _model(data)
    ra, rb = train(a, data, config), train(b, data, config)
    assert _fields(ra.history) == _fields(rb.history)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    rc = train(_model(data), data, TrainConfig(epochs=2, batch_size=32, seed=4))
    assert _fields(rc.history) != _fields(ra.history)


def _count_training_images(model: torch.nn.Module) -> list[int]:
    seen: list[int] = []
    model.register_forward_hook(lambda m, inputs, out: seen.append(len(inputs[0])) if m.training else None)
    return seen


@pytest.mark.parametrize("budget, batch, per_epoch, steps", [
    ({"train_images": 64}, 32, 64, 2),
    ({"train_fraction": 0.5}, 32, 180, 6),  # 180 of the 360 training images: five full batches, a sixth filled up
    ({"train_images": 50}, 64, 50, 1),      # fewer images than one batch: one batch of all of them
])
def test_fidelity_knob_sets_the_training_images(data, budget, batch, per_epoch, steps):
    model = _model(data)
    seen = _count_training_images(model)
    reports: list[EpochReport] = []
    result = train(model, data, TrainConfig(epochs=2, batch_size=batch, **budget), callback=reports.append)
    assert result.status == "completed"
    assert [r.images for r in reports] == [per_epoch, 2 * per_epoch]
    assert seen == [min(batch, per_epoch)] * (2 * steps)


@pytest.mark.parametrize("batch, images", [(32, 180), (64, 180), (128, 180), (32, 65)])
def test_every_batch_size_sees_the_same_images_each_epoch_in_full_batches(data, batch, images):
    """Epoch k is k * images images for every batch size, the unit in which a search compares trials, and every
    step has the full batch (the last is filled up with images of the same epoch), so a GPU autotunes one shape."""
    model = _model(data)
    seen = _count_training_images(model)
    reports: list[EpochReport] = []
    train(model, data, TrainConfig(epochs=2, batch_size=batch, train_images=images), callback=reports.append)
    assert [r.images for r in reports] == [images, 2 * images]
    assert seen == [batch] * (2 * -(-images // batch))


def test_a_filled_last_batch_shows_every_image_of_the_epoch_and_repeats_only_its_first():
    from tpsearch.trainers._augment import DeviceLoader

    x = torch.arange(70, dtype=torch.uint8).view(70, 1, 1, 1).expand(70, 1, 2, 2).contiguous()
    y = torch.arange(70)
    loader = DeviceLoader(x, y, batch_size=32, mean=(0.0,), std=(1 / 255,), last="fill", seed=1)
    for _ in range(2):
        batches = [labels.tolist() for _, labels in loader]
        assert [len(b) for b in batches] == [32, 32, 32] and len(loader) == 3
        order = sum(batches, [])
        assert sorted(order[:70]) == list(range(70)) and order[70:] == order[:26]
    assert loader.images_per_epoch == 70


def test_evaluation_runs_in_batches_of_one_shape_and_scores_every_image_once(data):
    from tpsearch.trainers._loop import eval_batches

    assert [eval_batches(n, 1024) for n in (5000, 1025, 300, 1024)] == [1000, 513, 300, 1024]
    model = _model(data)
    shapes: list[int] = []
    model.register_forward_hook(lambda m, inputs, out: shapes.append(len(inputs[0])))
    accuracy, loss = evaluate(model, data.val_x, data.val_y, data, batch_size=7)  # 40 images: 6 batches of 7, 2 padded
    assert set(shapes) == {7} and len(shapes) == 6
    whole_acc, whole_loss = evaluate(model, data.val_x, data.val_y, data, batch_size=len(data.val_x))
    assert accuracy == pytest.approx(whole_acc) and loss == pytest.approx(whole_loss, rel=1e-5)


def test_schedule_warms_up_then_reaches_zero_at_every_restart_and_the_end():
    config = TrainConfig(epochs=4, restarts=(1, 2), warmup_epochs=1.0)
    schedule = lr_schedule(config, 100)
    # The warm-up is capped at a quarter of the first cycle (one epoch of 100 images), whatever was asked.
    assert (schedule.warmup, schedule.ends) == (25, (100, 200, 400))
    assert schedule.factor(0, 5) == pytest.approx(0.2) and schedule.factor(20, 10) == 1.0
    for end in schedule.ends:
        assert schedule.factor(end - 1, 1) < 1e-3  # annealed by the end of each cycle ...
    assert schedule.factor(100, 10) == schedule.factor(200, 10) == 1.0  # ... and back at the peak after it
    # Past the warm-up the factor depends on the images seen only, never on the batch size.
    assert schedule.factor(150, 10) == schedule.factor(150, 50)
    assert lr_schedule(TrainConfig(epochs=4, warmup_epochs=0.5), 100).ends == (400,)


@pytest.mark.parametrize("restarts", [(4,), (2, 1), (1, 1), (0,), ("1",)])
def test_bad_restarts_are_refused(restarts):
    with pytest.raises(ValueError, match="restarts"):
        TrainConfig(epochs=4, restarts=restarts)


def test_halved_config_scales_the_learning_rate_by_the_optimizers_rule():
    sgd = TrainConfig(batch_size=128, lr=0.2).halved()
    assert (sgd.batch_size, sgd.lr, sgd.eval_batch_size) == (64, pytest.approx(0.1), 512)
    adamw = TrainConfig(batch_size=256, optimizer="adamw").halved()
    assert (adamw.batch_size, adamw.lr) == (128, pytest.approx(2e-3 / math.sqrt(2)))


def test_restarted_run_trains(data):
    result = train(_model(data), data, TrainConfig(epochs=3, batch_size=32, restarts=(1,)))
    assert result.status == "completed" and result.val_accuracy > 0.3


def test_oom_above_fault_fits_at_a_smaller_batch(data):
    failed = train(inject_fault(_model(data), "oom_above_40"), data, TrainConfig(epochs=1, batch_size=64))
    assert (failed.status, failed.reason, failed.failure) == ("failed", "out of memory at batch size 64",
                                                              "out of memory")
    fits = train(inject_fault(_model(data), "oom_above_40"), data, TrainConfig(epochs=1, batch_size=32))
    assert fits.status == "completed" and fits.failure is None


def test_nan_fault_diverges_within_the_first_epoch(data):
    result = train(inject_fault(_model(data), "nan"), data, TrainConfig(epochs=3, batch_size=32))
    assert (result.status, result.reason, result.epochs, result.failure) == ("failed", "diverged", 0, "diverged")
    assert result.val_accuracy is None and result.train_loss is None and result.history == []


def test_huge_learning_rate_diverges(data):
    result = train(_model(data), data, TrainConfig(epochs=3, batch_size=32, lr=1e30))
    assert (result.status, result.reason, result.epochs) == ("failed", "diverged", 0)


def test_out_of_memory_fault_is_a_failed_result(data):
    result = train(inject_fault(_model(data), "oom"), data, TrainConfig(epochs=2, batch_size=64))
    assert (result.status, result.reason, result.epochs) == ("failed", "out of memory at batch size 64", 0)


def test_raise_fault_propagates_like_a_bug(data):
    with pytest.raises(RuntimeError, match="injected fault"):
        train(inject_fault(_model(data), "raise"), data, TrainConfig(epochs=1, batch_size=32))


def test_an_unknown_fault_is_refused():
    with pytest.raises(ValueError, match="fault must be one of oom, nan, raise, hang or oom_above_N"):
        inject_fault(torch.nn.Linear(1, 1), "segfault")


def test_callback_stops_the_run(data):
    result = train(_model(data), data, TrainConfig(epochs=4, batch_size=32), callback=lambda r: r.epoch == 2)
    assert (result.status, result.reason, result.epochs) == ("stopped", None, 2)


def test_adamw_and_label_smoothing_train(data):
    result = train(_model(data), data, TrainConfig(epochs=1, batch_size=32, optimizer="adamw",
                                                   label_smoothing=0.1, pad_mode="zero"))
    assert result.status == "completed" and math.isfinite(result.train_loss)


def test_evaluate_restores_the_mode(data):
    model = _model(data).train()
    accuracy, loss = evaluate(model, data.val_x, data.val_y, data, batch_size=7)
    assert 0 <= accuracy <= 1 and loss > 0 and model.training


def test_only_the_chosen_epochs_and_the_last_are_scored(data):
    reports: list[EpochReport] = []
    result = train(_model(data), data, TrainConfig(epochs=4, batch_size=32, eval_epochs=(2,)),
                   callback=reports.append)
    scored = [r.epoch for r in reports if r.val_accuracy is not None]
    assert scored == [2, 4] and all((r.val_loss is None) == (r.epoch not in scored) for r in reports)
    assert all(math.isfinite(r.train_loss) for r in reports)  # every epoch still reports its training loss
    assert result.val_accuracy == reports[-1].val_accuracy and result.train_loss == reports[-1].train_loss
    # Stopped after an unscored epoch, the result holds the last score there was.
    stopped = train(_model(data), data, TrainConfig(epochs=4, batch_size=32, eval_epochs=(1,)),
                    callback=lambda r: r.epoch == 3)
    assert stopped.epochs == 3 and stopped.val_accuracy == stopped.history[0].val_accuracy is not None


@pytest.mark.parametrize("epochs", [(0,), (5,), "2", (1.5,)])
def test_bad_eval_epochs_are_refused(epochs):
    with pytest.raises(ValueError, match="eval_epochs"):
        TrainConfig(epochs=4, eval_epochs=epochs)


def test_flip_tta_scores_the_mean_of_an_image_and_its_mirror(data):
    model = _model(data).eval()
    accuracy, loss = evaluate(model, data.val_x, data.val_y, data, batch_size=64, tta_flip=True)
    with torch.no_grad():
        x = normalize(data.val_x, data.mean, data.std)
        logits = 0.5 * (model(x) + model(x.flip(3)))
    assert accuracy == pytest.approx((logits.argmax(1) == data.val_y).float().mean().item())
    assert loss == pytest.approx(torch.nn.functional.cross_entropy(logits, data.val_y).item(), rel=1e-5)
    assert (accuracy, loss) != evaluate(model, data.val_x, data.val_y, data, batch_size=64)


def test_from_hparams_takes_what_spaces_suggest():
    trial = optuna.trial.FixedTrial({"optimizer": "adamw", "lr_adamw": 3e-3, "weight_decay": 1e-4,
                                     "batch_size": 256, "label_smoothing": 0.1})
    hparams = SPACE.suggest_training(trial)
    config = TrainConfig.from_hparams(hparams, epochs=5, train_images=1000)
    assert (config.optimizer, config.lr, config.batch_size, config.epochs, config.train_images) == \
        ("adamw", 3e-3, 256, 5, 1000)
    assert TrainConfig.from_hparams(hparams, batch_size=64).batch_size == 64  # overrides win


@pytest.mark.parametrize("hparams, overrides, match", [
    ({"momentun": 0.9}, {}, "unknown training hyperparameter 'momentun'"),
    ({"batch_size": "128"}, {}, "batch_size must be an integer, but got '128'"),
    ({"lr": True}, {}, "lr must be a finite number, but got True"),
    ({"lr": -1.0}, {}, "lr must be > 0.0, but got -1.0"),
    ({"optimizer": "adam"}, {}, "optimizer must be one of sgd, adamw, but got 'adam'"),
    ({"label_smoothing": 1.0}, {}, "label_smoothing must be >= 0.0 and < 1.0"),
    ({}, {"epoch": 3}, "unknown TrainConfig field 'epoch'"),
    ({}, {"train_fraction": 0.5, "train_images": 10}, "not both"),
])
def test_from_hparams_rejects_bad_input(hparams, overrides, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_hparams(hparams, **overrides)


def test_too_many_training_images_is_refused_before_training(data):
    with pytest.raises(ValueError, match="train_images must be at most the 360 training images"):
        train(_model(data), data, TrainConfig(epochs=1, train_images=10_000))
