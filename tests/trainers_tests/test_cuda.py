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
    `host_sync`: setup, the end of an epoch, its score). A step that synced (an `.item()`, the bool of a tensor, a
    blocking copy, a loss check that read the device) would end the run with that error; the loss checks copy to
    pinned memory asynchronously; mixup's draws are made on the CPU generator and only the permutation is copied
    to the device; the filled last batch is a gather on the device."""
    data = make_synthetic(1100)  # 990 training images: 31 steps of 32 per epoch, the last filled up
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
    from tpsearch.testing.search import run_options

    opts = run_options(tmp_path, trials=2, epochs=1, gpus_per_trial=0.5, device="auto", max_params=60_000)
    summary = run_search(opts)
    assert summary.error is None and summary.finished == 2, summary
    study = optuna.load_study(study_name=opts.study_name(), storage=opts.storage)
    assert {t.user_attrs.get("device") for t in study.trials if "device" in t.user_attrs} == {"cuda"}


def test_a_run_feeds_the_convolutions_two_shapes_so_cudnn_autotunes_each_once():
    """Every training batch is full (990 images at 64: 15 full, the 16th filled up) and the evaluation runs in
    equal batches (110 validation images at 64: two of 55), so `cudnn.benchmark` autotunes two shapes a run."""
    data = make_synthetic(1100)
    space = spaces.get("resnet_5m")
    model = space.build(space.preset("tiny"), **data.shape)
    shapes: set[tuple[int, ...]] = set()
    first = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    first.register_forward_hook(lambda m, inputs, out: shapes.add(tuple(inputs[0].shape)))
    result = train(model, data, TrainConfig(epochs=2, batch_size=64, eval_batch_size=64, device="cuda"))
    assert result.status == "completed", result.reason
    assert shapes == {(64, 3, 32, 32), (55, 3, 32, 32)}


def test_a_diverged_loss_ends_the_run_on_the_gpu_without_a_host_sync_mid_epoch():
    """NaN logits from the first step: the loss checks read their asynchronous copies, which the GPU completes
    long before the epoch's 112 steps are over, so the run ends inside its first epoch as "diverged", under sync
    debugging set to "error" (a check that waited would raise instead)."""
    from tpsearch.testing.trainers import inject_fault

    data = make_synthetic(4000)  # 3,600 training images: 113 steps of 32
    space = spaces.get("resnet_5m")
    model = inject_fault(space.build(space.preset("tiny"), **data.shape), "nan")
    steps: list[int] = []
    model.register_forward_hook(lambda m, inputs, out: steps.append(1) if m.training else None)
    torch.cuda.set_sync_debug_mode("error")
    try:
        result = train(model, data, TrainConfig(epochs=2, batch_size=32, device="cuda"))
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert (result.status, result.reason, result.epochs) == ("failed", "diverged", 0)
    assert len(steps) < 113


def test_auto_packs_trials_on_the_gpu_and_caps_each_ones_memory(ray_session, tmp_path):
    """--gpus-per-trial auto (the default) on this GPU: Ray gives each trial 1 / trials_per_gpu of it (a quarter
    of an 80 GB H100), and the worker caps the trial's share of the GPU memory to match."""
    import json

    from tpsearch.search import run_search
    from tpsearch.search._auto import trials_per_gpu
    from tpsearch.search._worker import gpu_share, trial_device
    from tpsearch.testing.search import run_options

    seen = tmp_path / "seen"
    seen.mkdir()

    def probe(config, *, opts, space):  # a trainable that reports what the worker was given, and trains nothing
        from ray import tune

        device = trial_device(opts)
        record = {"device": device, "share": gpu_share(),
                  "fraction": torch.cuda.get_per_process_memory_fraction() if device == "cuda" else None}
        (seen / f"{config['trial_number']}.json").write_text(json.dumps(record))
        tune.report({"epoch": opts.epochs, "images": 1, "val_accuracy": 0.5, "status": "running"})

    opts = run_options(tmp_path, trials=2, epochs=1, device="auto", max_params=60_000)
    assert opts.gpus_per_trial == "auto"
    summary = run_search(opts, trainable=probe)
    assert summary.error is None and summary.finished == 2, summary
    share = 1 / trials_per_gpu(min(torch.cuda.get_device_properties(i).total_memory
                                   for i in range(torch.cuda.device_count())))
    records = [json.loads(p.read_text()) for p in sorted(seen.iterdir())]
    assert len(records) == 2
    for r in records:
        assert r["device"] == "cuda" and r["share"] == pytest.approx(share)
        assert r["fraction"] == pytest.approx(share if share < 1 else 1.0)


def test_the_largest_capped_trial_fits_its_share_of_an_80gb_gpu():
    """The design of `--gpus-per-trial auto`: a trial under the default MACs cap, at the largest batch size the
    spaces draw (512), trains within `GIB_PER_TRIAL` GiB (bf16, channels_last, as the trainer runs it)."""
    from tpsearch.search._auto import GIB_PER_TRIAL, default_max_macs
    from tpsearch.trainers._loop import _optimizer, training_loss

    space = spaces.get("resnet_5m")
    # Near the cap: one layer of eleven 3x3 blocks of 48 channels, all at 32x32 (1.84 GMAC, 1.8M parameters).
    arch = {"layers": 1, "blocks": [11], "channels": 48, "kernels": [3], "skip_kernels": [1], "pool": 8}
    macs = space.count_macs(arch)
    assert default_max_macs(32) / 2 < macs <= default_max_macs(32) and space.count_params(arch) <= 5_000_000
    model = space.build(arch).cuda().to(memory_format=torch.channels_last)
    config = TrainConfig(batch_size=512, device="cuda")
    optimizer = _optimizer(model, config, fused=True)
    torch.cuda.reset_peak_memory_stats()
    images = torch.randn(512, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (512,), device="cuda")
    for _ in range(2):  # the optimiser's state exists from the second step on
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = training_loss(model(images).float(), labels, config)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    torch.cuda.synchronize()
    assert torch.cuda.max_memory_allocated() < GIB_PER_TRIAL * 2**30
