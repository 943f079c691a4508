"""Resuming a run from the state its `checkpoint` hook saved ends exactly where a run without the break ends."""
from __future__ import annotations

import pytest
import torch

from tpsearch import spaces
from tpsearch.trainers import TrainConfig, make_synthetic, train

pytestmark = pytest.mark.slow  # trains

SPACE = spaces.get("resnet_5m")


@pytest.fixture(scope="module")
def data():
    return make_synthetic(300, image_size=8)


def _model(data, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return SPACE.build(SPACE.preset("tiny"), num_classes=data.num_classes, in_channels=data.in_channels,
                       image_size=data.image_size)


def _fields(history) -> list[tuple[int, float, float, float]]:
    return [(r.epoch, r.val_accuracy, r.val_loss, r.train_loss) for r in history]


@pytest.mark.parametrize("optimizer, tricks", [
    ("sgd", {}), ("adamw", {}),
    # Mixup draws from the loader's generator every batch: the saved state must carry those draws too.
    ("sgd", {"mixup_alpha": 0.2, "confidence_penalty": 0.1, "schedule": "step", "pad_mode": "zero"}),
])
def test_resumed_run_equals_uninterrupted_run(data, tmp_path, optimizer, tricks):
    config = TrainConfig(epochs=3, batch_size=32, optimizer=optimizer, seed=5, **tricks)
    whole = _model(data, 0)
    full = train(whole, data, config)

    path = tmp_path / "state.pt"
    first = train(_model(data, 0), data, config, checkpoint=lambda state: torch.save(state, path),
                  callback=lambda report: report.epoch == 1)  # stop after the first epoch, as a kill would
    assert first.status == "stopped" and first.epochs == 1
    state = torch.load(path, weights_only=True)  # tensors and plain containers only
    assert state["epoch"] == 1 and len(state["history"]) == 1

    # Another initialisation: the weights must come from the state, not from the seed.
    resumed_model = _model(data, 99)
    seen = []
    resumed = train(resumed_model, data, config, resume=state, callback=lambda r: seen.append(r.epoch))
    assert seen == [2, 3]  # the callback hears only the epochs trained in this call
    assert resumed.status == "completed" and resumed.epochs == 3
    assert _fields(resumed.history) == _fields(full.history)
    for (name, a), b in zip(whole.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.equal(a, b), name


def test_resume_refuses_a_different_budget(data, tmp_path):
    states = []
    train(_model(data, 0), data, TrainConfig(epochs=2, batch_size=32), checkpoint=states.append,
          callback=lambda r: True)
    with pytest.raises(ValueError, match="2 epochs"):
        train(_model(data, 0), data, TrainConfig(epochs=4, batch_size=32), resume=states[0])
    with pytest.raises(ValueError, match="with cosine decay, but this run .* with step decay"):
        train(_model(data, 0), data, TrainConfig(epochs=2, batch_size=32, schedule="step"), resume=states[0])
