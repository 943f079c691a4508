"""The GPU paths, run where a GPU is lent (`pytest -m cuda`; benchmarks/gpu_report.sh runs them); skipped elsewhere."""
from __future__ import annotations

import warnings

import pytest
import torch

from tpsearch import spaces
from tpsearch.trainers import TrainConfig, make_synthetic, train
from tpsearch.trainers._loop import native_bf16

pytestmark = pytest.mark.cuda


def test_training_steps_do_not_wait_for_the_gpu():
    """Under sync debugging, every host sync warns. The trainer's deliberate ones are per epoch (the epoch's loss,
    the loader's grouping, the validation score) and one divergence check per 16 steps; a step that synced (an
    `.item()`, a bool of a tensor) would add a warning per step."""
    data = make_synthetic(1100)  # 990 training images: 31 steps of 32 per epoch
    model = spaces.get("resnet_5m").build(spaces.get("resnet_5m").preset("tiny"), **data.shape)
    steps = 2 * 31
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = train(model, data, TrainConfig(epochs=2, batch_size=32, device="cuda"))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    syncs = [w for w in caught if "synchroniz" in str(w.message).lower()]
    assert result.status == "completed", result.reason
    assert len(syncs) < steps // 2, f"{len(syncs)} host syncs in {steps} steps: a step waits for the GPU"


def test_bf16_only_where_native_and_fused_optimizers():
    data = make_synthetic(300)
    model = spaces.get("resnet_5m").build(spaces.get("resnet_5m").preset("tiny"), **data.shape)
    result = train(model, data, TrainConfig(epochs=1, batch_size=64, device="cuda"))
    assert result.status == "completed" and result.device.startswith("cuda")
    assert native_bf16(torch.device("cuda")) == (torch.cuda.get_device_capability() >= (8, 0))


def test_two_trials_share_one_gpu_at_half_a_gpu_each(ray_session, tmp_path):
    import optuna

    from tpsearch.search import run_search
    from tpsearch.search.testing import run_options

    opts = run_options(tmp_path, trials=2, epochs=1, gpus_per_trial=0.5, device="auto", max_params=60_000)
    summary = run_search(opts)
    assert summary.error is None and summary.finished == 2, summary
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    assert {t.user_attrs.get("device") for t in study.trials if "device" in t.user_attrs} == {"cuda"}
