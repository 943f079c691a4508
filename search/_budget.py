"""A search's training budget in one unit, training images seen, and where ASHA compares trials in it.

The unit. Each epoch shows a trial every image of its fidelity (`--train-images`, `--train-fraction`) once,
whatever its batch size, so an epoch is the same images for a batch of 64 (many steps) and of 512 (few steps). The
trainer fills the epoch's last batch up to full size with the first images of the same epoch's order (one shape
for every step, which a GPU autotunes once); those fewer-than-a-batch repeats are not counted, so an epoch is
still its fidelity's images, for the schedule and the reports alike. Trials report `images` seen after every epoch; ASHA's `time_attr` is that
count, its `max_t` the whole budget (`--epochs` times the images of an epoch), and its rungs sit at
`--grace-epochs` times powers of `--reduction-factor` epochs' worth of images, so every trial, at any batch size,
is judged after the same data. Counted in steps, a batch of 512 would reach a rung after eight times the images.

The learning rate is a function of the images seen too (`tpsearch.trainers.LRSchedule`): its warm-up
(`--warmup-epochs`) ends by the first rung (`RunOptions` checks it; the trainer caps it at a quarter of the first
cycle), and its cosine reaches zero at every rung, then restarts at the peak (SGDR's warm restarts placed at the
rungs). A rung's score is therefore that of a model trained on that many images with a whole schedule, annealed
like the final one: comparable across trials and a fair predictor of the final score, instead of the accuracy at
the peak learning rate, which says more about the learning rate than about the end of the run. The cost: after a
rung a surviving trial goes back to its peak learning rate, and its last cycle anneals from there.

Optuna's intermediate values keep the epoch as their step: every trial sees the same images per epoch, so step k
is k times `images_per_epoch` images for all of them. The study records it all as its `training_budget` attribute;
the dashboards draw learning curves against images seen from it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tpsearch.search._options import RunOptions
    from tpsearch.trainers import Dataset

UNIT = "images"  # ASHA's time attribute: what every trial reports after each epoch
SCHEDULE = "linear warm-up, then cosine to zero at every rung and at the end, restarting at the peak after each rung"
STEP_NOTE = ("; a trial drawn with step decay (--tricks schedule) holds the peak instead and drops it x0.1 at half "
             "and at three quarters of each cycle")


@dataclass(frozen=True)
class Budget:
    """One search's budget, in images seen by a trial."""

    images_per_epoch: int     # every trial sees each of them once per epoch
    total: int                # a trial trained to the end (ASHA's max_t)
    warmup: int               # the learning rate's warm-up ends here, for every trial
    rungs: tuple[int, ...]    # where ASHA compares trials (empty without ASHA); also where the cosine restarts
    step_searched: bool = False  # whether some trials may decay in steps instead (`--tricks schedule`)
    val_images: int = 0       # every score is a fraction of these: the noise ASHA's margin is measured in

    @property
    def grace(self) -> int:
        """ASHA's grace period: its first rung (the whole budget when no rung falls below it)."""
        return self.rungs[0] if self.rungs else self.total

    def record(self) -> dict[str, Any]:
        """The study's `training_budget` attribute: what a reader needs to put the curves on one axis."""
        return {"unit": UNIT, "images_per_epoch": self.images_per_epoch, "total": self.total, "warmup": self.warmup,
                "rungs": list(self.rungs),
                "schedule": (SCHEDULE if self.rungs else "linear warm-up, then cosine")
                + (STEP_NOTE if self.step_searched else ""),
                "intermediate_step": "epoch", "val_images": self.val_images}


def budget_of(opts: "RunOptions", data: "Dataset") -> Budget:
    """The budget of a search under `opts` on `data`, from the trainer's own schedule (one definition of both)."""
    from tpsearch import trainers

    config = opts.train_config({})  # the schedule's positions depend on the options, not on sampled values
    per_epoch = trainers.images_per_epoch(data, config)
    schedule = trainers.lr_schedule(config, per_epoch)
    return Budget(images_per_epoch=per_epoch, total=schedule.ends[-1], warmup=schedule.warmup,
                  rungs=schedule.ends[:-1], step_searched="schedule" in opts.tricks, val_images=len(data.val_y))
