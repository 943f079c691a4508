"""The GPU paths, run where a GPU is lent (`pytest -m cuda`; benchmarks/gpu_report.sh runs them); skipped elsewhere."""
from __future__ import annotations


import pytest
import torch

from tpsearch import spaces
from tpsearch.trainers import TrainConfig, make_synthetic, train
from tpsearch.trainers._loop import native_bf16

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("tricks", [{}, {"mixup_alpha": 0.2, "confidence_penalty": 0.1, "schedule": "step"}])
def test_training_steps_do_not_wait_for_the_gpu(tricks):
    """Under sync debugging set to "error", any host sync raises, except the trainer's deliberate ones (marked with
    `host_sync`: setup, a loss check every 16 steps, the end of an epoch, its score). A step that synced (an
    `.item()`, the bool of a tensor, a blocking copy) would end the run with that error; mixup's draws are made on
    the CPU generator and only the permutation is copied to the device."""
    data = make_synthetic(1100)  # 990 training images: 31 steps of 32 per epoch
    model = spaces.get("resnet_5m").build(spaces.get("resnet_5m").preset("tiny"), **data.shape)
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = train(model, data, TrainConfig(epochs=2, batch_size=32, device="cuda", eval_epochs=(1,), **tricks))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert result.status == "completed", result.reason
    assert [r.val_accuracy is not None for r in result.history] == [True, True]


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
