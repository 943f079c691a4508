"""How a search stops trials early: successive halving that never stops a trial on noise.

Ray Tune's ASHA stops a trial at a rung when its score is below the rung's cutoff (the top 1/ETA quantile of the
scores recorded there before it), however small the gap. A score is a fraction of the validation split, so two
networks of the same quality differ by a few images by chance: on digits' 143 validation images one image is 0.7
points, and after a handful of optimizer steps every trial still sits near chance. Stock ASHA then stops almost
every trial on noise, and the first one to arrive sets the bar for all.

`NoiseAwareASHA` takes ASHA's decisions (same rungs, same cutoff) with two rules added:

1. **A margin.** A trial is stopped only where its score is below the cutoff by more than `margin` standard errors
   of the difference of two scores on the validation split (`difference_se`, the binomial one of that many
   images). Where the trials at a rung cannot be told apart (everyone still at chance) nobody is stopped there.
   A margin of 0 is stock ASHA's rule.
2. **Enough optimizer steps.** Rungs sit at images seen, the same data for every trial (`_budget`), but a batch of
   512 has taken 8 times fewer steps there than a batch of 64. A trial that has taken fewer than `min_steps` steps
   at a rung is neither judged there (it goes on to the next rung) nor a yardstick for the others.

With an `order` (`--reproducible`), decisions are taken in launch order rather than arrival order: see
`LaunchOrder`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from tpsearch.search._budget import UNIT
from tpsearch.search._options import METRIC


def difference_se(a: float, b: float, n: int) -> float:
    """The standard error of the difference of two accuracies measured on the same `n` validation images, each
    binomial (treating them as independent overstates it, which errs toward not stopping)."""
    return math.sqrt(max(a * (1 - a) + b * (1 - b), 0.0) / n)


@dataclass
class LaunchOrder:
    """Decisions in launch order, so that a seeded search gives the same study whatever the load of the machine.

    With `window` trials training at once, launch i is drawn only once every launch up to i - window has finished
    and been told to the study (the searcher holds back the tells of later ones until then), and at its rungs it
    is compared only with those launches. What the sampler saw when it drew a trial and what the scheduler compares
    it with are then fixed by launch numbers, not by which trial happened to report first. The cost: a free worker
    may wait while an earlier, slower trial finishes. With a window of 1 this is a sequential search.
    """

    window: int
    index: dict[str, int] = field(default_factory=dict)  # Ray Tune's trial id -> launch number (0, 1, ...)
    done: set[int] = field(default_factory=set)
    first_open: int = 0  # the lowest launch number that has not finished

    @property
    def next(self) -> int:
        return len(self.index)

    def may_launch(self) -> bool:
        """Whether every launch up to `next - window` has finished."""
        return self.first_open > self.next - self.window

    def launch(self, trial_id: str) -> int:
        self.index[trial_id] = self.next
        return self.index[trial_id]

    def finish(self, trial_id: str) -> None:
        self.done.add(self.index[trial_id])
        while self.first_open in self.done:
            self.first_open += 1

    def settled(self, launch: int) -> bool:
        """Whether `launch`'s outcome may be told: every launch drawn from now on has it in its history."""
        return launch <= self.next - self.window

    def yardsticks(self, trial_id: str) -> int:
        """The highest launch number this trial is compared with."""
        return self.index[trial_id] - self.window


@dataclass(frozen=True)
class _Score:
    value: float
    judged: bool  # enough optimizer steps to judge it, and to judge others by it


class NoiseAwareASHA(FIFOScheduler):
    """ASHA over images seen that stops a trial only on evidence (see the module's docstring).

    `stopped` maps each trial it stopped to the evidence: the rung (images), the trial's score, the cutoff and the
    standard error the gap was measured in; the searcher records it on the pruned trial.
    """

    def __init__(self, *, rungs: Sequence[int], max_t: int, reduction_factor: float, val_images: int,
                 margin: float = 2.0, min_steps: int = 0, order: LaunchOrder | None = None) -> None:
        super().__init__()
        self.rungs = tuple(sorted(rungs))
        self.max_t, self.reduction_factor, self.val_images = max_t, reduction_factor, val_images
        self.margin, self.min_steps, self.order = margin, min_steps, order
        self.recorded: dict[int, dict[str, _Score]] = {rung: {} for rung in self.rungs}
        self.stopped: dict[str, dict[str, Any]] = {}

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        images, score = result.get(UNIT), result.get(METRIC)
        if images is None or score is None or not math.isfinite(score):
            return TrialScheduler.CONTINUE
        if images >= self.max_t:
            return TrialScheduler.STOP
        decision = self.decide(trial.trial_id, images, float(score), result.get("batch_size"))
        return TrialScheduler.CONTINUE if decision is None else TrialScheduler.STOP

    def decide(self, trial_id: str, images: int, score: float, batch_size: int | None) -> dict[str, Any] | None:
        """Record the score at the highest rung reached and not yet recorded; the evidence if the trial stops."""
        rung = next((r for r in reversed(self.rungs) if r <= images and trial_id not in self.recorded[r]), None)
        if rung is None:
            return None
        steps = images // batch_size if batch_size else None
        judged = steps is None or steps >= self.min_steps
        peers = [s.value for other, s in self.recorded[rung].items() if s.judged and self._compares(trial_id, other)]
        self.recorded[rung][trial_id] = _Score(score, judged)
        if not judged or not peers:
            return None
        cutoff = float(np.percentile(peers, (1 - 1 / self.reduction_factor) * 100))
        se = difference_se(cutoff, score, self.val_images)
        if score >= cutoff - self.margin * se:
            return None
        evidence = {"images": rung, "score": score, "cutoff": cutoff, "se": se, "peers": len(peers)}
        self.stopped[trial_id] = evidence
        return evidence

    def _compares(self, trial_id: str, other: str) -> bool:
        if self.order is None:
            return True
        return self.order.index[other] <= self.order.yardsticks(trial_id)

    def debug_string(self) -> str:
        return (f"NoiseAwareASHA: {len(self.stopped)} stopped; rungs {list(self.rungs)} images, margin "
                f"{self.margin:g} SE of {self.val_images} images, at least {self.min_steps} steps")
