"""What a run shows while it goes on: the live dashboard page (drawn by a writer the caller hands the driver) and
the progress bar. Neither is on the path of a trial's report."""
from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any, Callable

import optuna

from tpsearch.search._options import RunOptions
from tpsearch.study import Outcome

if TYPE_CHECKING:
    from tpsearch.search._searcher import StudySearcher


class LivePage:
    """The dashboard page, rewritten during the run (atomically) so that a user can keep it open and reload.

    Written by a thread of its own every `--dashboard-every` seconds, never on the path of a trial's report: Ray
    Tune's function trainables wait for the driver at each report, so a page that takes a second to draw would
    cost every running trial that second.
    """

    def __init__(self, study: optuna.Study, write: Callable[[optuna.Study], Any], every: float) -> None:
        self.study, self.every = study, every
        self.write = lambda: write(study)
        self.stop = threading.Event()
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.thread = threading.Thread(target=self._loop, name="tpsearch-dashboard", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        while True:  # at once (the study as the run found it), then every --dashboard-every seconds, a second at least
            try:
                self.write()
            except Exception as e:  # noqa: BLE001 - a page that fails to draw must not end the search
                print(f"tpsearch: the dashboard page was not rewritten ({type(e).__name__}: {e})", file=sys.stderr)
            if self.stop.wait(max(self.every, 1.0)):
                return

    def close(self) -> None:
        """Stop the thread, then write the final page (also when the run trained nothing new)."""
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        self.write()



class Progress:
    MAX_SHOWN = 4  # running trials named with their epoch; more are counted

    def __init__(self, opts: RunOptions, searcher: "StudySearcher", requeued: int) -> None:
        from tqdm import tqdm

        self.searcher, self.epochs = searcher, opts.epochs
        self.bar = tqdm(total=opts.trials, initial=min(searcher.finished, opts.trials), unit="trial",
                        desc=opts.study_name(), dynamic_ncols=True, smoothing=0.0)
        if requeued:
            self.bar.write(f"resuming: {requeued} trial(s) left running by a killed driver marked FAIL and requeued")
        self.refresh_from()

    def refresh_from(self) -> None:
        """The bar counts the study's trained trials (a resumed study starts where it stood); the words after it
        are this run's: its outcomes, each running trial's epoch, and the study's best."""
        s, t = self.searcher, self.searcher.tally
        self.bar.n = min(s.finished, self.bar.total)
        best = "-" if t.best_value is None else f"{t.best_value:.4f} ({(t.best_params or 0) / 1e6:.2f}M)"
        counts = " ".join(f"{o.value} {t.counts[o]}" for o in (Outcome.COMPLETE, Outcome.PRUNED, Outcome.DIVERGED,
                                                                Outcome.FAILED, Outcome.INFEASIBLE))
        if not s.live and not any(t.counts.values()):
            running = "starting trial workers"
        else:
            epochs = [f"#{trial.number} ep {s.epoch[tid]}/{self.epochs}" if tid in s.epoch else f"#{trial.number}"
                      for tid, trial in list(s.live.items())]
            shown = ", ".join(epochs[:self.MAX_SHOWN]) + (", ..." if len(epochs) > self.MAX_SHOWN else "")
            running = f"running {len(epochs)}" + (f" ({shown})" if shown else "")
        self.bar.set_postfix_str(f"this run: {counts}; {running}; best {best}", refresh=True)

    def close(self) -> None:
        self.bar.close()


