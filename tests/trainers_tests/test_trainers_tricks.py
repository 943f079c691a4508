"""The training tricks: mixup, the confidence penalty, step decay; each off by default, and off means untouched."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tpsearch import spaces
from tpsearch.trainers import DeviceLoader, TrainConfig, lr_schedule, make_synthetic, train, training_loss

pytestmark = pytest.mark.slow  # trains

SPACE = spaces.get("resnet_5m")


@pytest.fixture(scope="module")
def data():
    return make_synthetic(300, image_size=8)


def _model(data, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return SPACE.build(SPACE.preset("tiny"), num_classes=data.num_classes, in_channels=data.in_channels,
                       image_size=data.image_size)


def _fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of a fixed tiny model (a seeded linear layer) on a fixed batch, and its labels."""
    torch.manual_seed(0)
    model = torch.nn.Linear(6, 4)
    x = torch.randn(8, 6)
    return model(x).detach(), torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])


def test_mixup_blends_each_image_with_a_partner_of_the_batch(data):
    loader = DeviceLoader(data.train_x[:32], data.train_y[:32], batch_size=32, mean=data.mean, std=data.std, seed=3)
    images, labels = next(iter(loader))
    mixed, partner, weight = loader.mixup(images, labels, 0.2)
    assert 0.0 < weight < 1.0 and mixed.shape == images.shape
    assert sorted(partner.tolist()) == sorted(labels.tolist())  # a permutation of the batch's labels
    order = [next(j for j in range(len(images))
                  if torch.allclose(mixed[i], weight * images[i] + (1 - weight) * images[j], atol=1e-5))
             for i in range(len(images))]
    assert labels[order].tolist() == partner.tolist()
    # The draws come from the loader's seeded generator: the same seed mixes the same way.
    again = DeviceLoader(data.train_x[:32], data.train_y[:32], batch_size=32, mean=data.mean, std=data.std, seed=3)
    images2, labels2 = next(iter(again))
    assert torch.equal(again.mixup(images2, labels2, 0.2)[0], mixed)


def test_the_mixed_loss_is_the_cross_entropy_against_mixed_smoothed_targets():
    logits, labels = _fixed_batch()
    partner, weight, smoothing = labels.roll(1), 0.3, 0.1
    config = TrainConfig(label_smoothing=smoothing, mixup_alpha=0.2)
    loss = training_loss(logits, labels, config, (partner, weight))

    def smoothed(y: torch.Tensor) -> torch.Tensor:
        return F.one_hot(y, 4).float() * (1 - smoothing) + smoothing / 4

    targets = weight * smoothed(labels) + (1 - weight) * smoothed(partner)
    expected = -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() != pytest.approx(training_loss(logits, labels, config).item(), rel=1e-3)


def test_the_confidence_penalty_is_the_loss_minus_beta_times_the_entropy():
    logits, labels = _fixed_batch()
    entropy = torch.distributions.Categorical(logits=logits).entropy().mean()
    loss = training_loss(logits, labels, TrainConfig(confidence_penalty=0.1))
    assert loss.item() == pytest.approx((F.cross_entropy(logits, labels) - 0.1 * entropy).item(), rel=1e-6)
    assert torch.equal(training_loss(logits, labels, TrainConfig()), F.cross_entropy(logits, labels))


def test_tricks_change_training_and_alpha_zero_is_no_mixup_bit_for_bit(data):
    base = TrainConfig(epochs=1, batch_size=32, seed=1)
    plain, zero = _model(data), _model(data)
    a = train(plain, data, base)
    b = train(zero, data, TrainConfig(epochs=1, batch_size=32, seed=1, mixup_alpha=0.0, confidence_penalty=0.0))
    assert (a.train_loss, a.val_loss, a.val_accuracy) == (b.train_loss, b.val_loss, b.val_accuracy)
    assert all(torch.equal(p, q) for p, q in zip(plain.state_dict().values(), zero.state_dict().values()))
    mixed = train(_model(data), data, TrainConfig(epochs=1, batch_size=32, seed=1, mixup_alpha=0.4))
    assert mixed.status == "completed" and mixed.train_loss != a.train_loss


def test_step_decay_drops_tenfold_at_half_and_three_quarters_of_each_cycle():
    schedule = lr_schedule(TrainConfig(epochs=4, warmup_epochs=0.5, schedule="step"), 100)
    assert (schedule.warmup, schedule.ends, schedule.kind) == (50, (400,), "step")
    assert schedule.factor(0, 10) == pytest.approx(0.2)  # the warm-up is the same as cosine's
    # After the warm-up (50 images) the cycle runs 350 images: the steps at 50 + 175 and 50 + 262.5 images.
    for seen, factor in ((50, 1.0), (224, 1.0), (225, 0.1), (312, 0.1), (313, 0.01), (399, 0.01)):
        assert schedule.factor(seen, 10) == pytest.approx(factor), seen
    restarted = lr_schedule(TrainConfig(epochs=4, restarts=(2,), warmup_epochs=0.0, schedule="step"), 100)
    assert [restarted.factor(s, 10) for s in (0, 100, 150, 199, 200, 300, 350)] == \
        pytest.approx([1.0, 0.1, 0.01, 0.01, 1.0, 0.1, 0.01])
    with pytest.raises(ValueError, match="schedule must be one of cosine, step"):
        TrainConfig(schedule="linear")
