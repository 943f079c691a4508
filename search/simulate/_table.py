"""The strategy table: real learning curves of every configuration of a finite space, read by the simulator.

One row per (configuration, seed, scoring point): `config` (the grid's stable id, `resnet_grid.config_id`), `seed`,
`epoch`, `images` (training images seen), `accuracy` (validation accuracy there; empty where the run diverged),
`seconds` (what that stage took: the epochs since the previous scoring point, their validation included),
`elapsed` (seconds since the run started), `failure` (empty, or the trainer's reason where the run ended there) and
the configuration's grid values, parameters and MACs. Beside the CSV a JSON file records how it was built: the
search schedule every run followed (the options `tpsearch run` would have), the data set, the machine, the
commit and the hours it took. `benchmarks/build_table.py` builds and extends it.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from tpsearch.exceptions import UsageError
from tpsearch.spaces.resnet_grid import GRID, ResNetGrid, config_id

TABLES = Path(__file__).parent / "tables"
DEFAULT_TABLE = TABLES / "resnet_grid-synthetic-hard.csv"
COLUMNS = ("config", "seed", "epoch", "images", "accuracy", "seconds", "elapsed", "failure", *GRID, "params", "macs")
# The options of `tpsearch run` a table's runs share (its JSON's "run"): the simulator searches under the same ones.
RUN_KEYS = ("dataset", "epochs", "train_images", "warmup_epochs", "grace_epochs", "reduction_factor")


def meta_path(table: Path) -> Path:
    return table.with_suffix(".json")


@dataclass(frozen=True)
class Point:
    """One scoring point of one run: what a worker would report there."""

    epoch: int
    images: int
    accuracy: float | None   # None where the run diverged
    seconds: float           # this stage
    failure: str | None


@dataclass
class Table:
    """A table read into memory: each (config, seed)'s curve, each config's mean final accuracy."""

    rows: pd.DataFrame
    meta: dict[str, Any]
    curves: dict[tuple[str, int], list[Point]] = field(default_factory=dict)
    final: dict[str, float] = field(default_factory=dict)  # config -> mean full-budget accuracy over its seeds
    seeds: tuple[int, ...] = ()

    @classmethod
    def read(cls, path: str | Path = DEFAULT_TABLE) -> "Table":
        path = Path(path)
        if not path.is_file() or not meta_path(path).is_file():
            raise UsageError(f"no strategy table at {path} (and its {meta_path(path).name}); build one with "
                             f"python benchmarks/build_table.py")
        rows = pd.read_csv(path, keep_default_na=False, na_values={"accuracy": [""]})
        return cls.of(rows, json.loads(meta_path(path).read_text()))

    @classmethod
    def of(cls, rows: pd.DataFrame, meta: Mapping[str, Any]) -> "Table":
        table = cls(rows=rows, meta=dict(meta))
        total = int(meta["run"]["epochs"]) * int(meta["run"]["train_images"])
        ordered = rows.sort_values(["config", "seed", "images"])
        columns = [ordered[c].tolist() for c in ("config", "seed", "epoch", "images", "accuracy", "seconds", "failure")]
        for config, seed, epoch, images, accuracy, seconds, failure in zip(*columns):  # plain lists: a few ms
            table.curves.setdefault((config, int(seed)), []).append(
                Point(int(epoch), int(images), None if _missing(accuracy) else float(accuracy), float(seconds),
                      failure or None))
        table.seeds = tuple(sorted({s for _, s in table.curves}))
        ends: dict[str, list[float]] = {}
        for (config, _), curve in table.curves.items():
            last = curve[-1]
            # A run that diverged ends at chance, as a diverged trial is read everywhere else (`final_accuracy`).
            done = last.images >= total and last.accuracy is not None
            ends.setdefault(config, []).append(last.accuracy if done else 1.0 / int(meta["shape"]["num_classes"]))
        table.final = {c: sum(v) / len(v) for c, v in ends.items() if len(v) == len(table.seeds)}
        return table

    @property
    def best(self) -> float:
        """The best mean full-budget accuracy: what a search's regret is measured from."""
        return max(self.final.values())

    def stats(self) -> dict[str, Any]:
        """What the table holds: its size, the spread of full-budget accuracy, the seed-to-seed noise (Spearman of
        two seeds' full-budget accuracies over the configurations), the layer counts among the best."""
        from scipy import stats

        ends = {s: {c: curve[-1].accuracy for (c, seed), curve in self.curves.items() if seed == s} for s in self.seeds}
        common = [c for c in self.final if all(ends[s].get(c) is not None for s in self.seeds[:2])]
        rho = (float(stats.spearmanr([ends[self.seeds[0]][c] for c in common],
                                     [ends[self.seeds[1]][c] for c in common]).statistic)
               if len(self.seeds) > 1 and len(common) > 2 else None)
        final = np.array(sorted(self.final.values()))
        top = sorted(self.final, key=self.final.get, reverse=True)[:max(1, len(final) // 100)]
        layers = self.rows.groupby("config")["layers"].first()
        return {"configurations": len(self.final), "seeds": list(self.seeds),
                "runs": len(self.curves), "diverged": sum(1 for c in self.curves.values() if c[-1].failure),
                "final_min": float(final[0]), "final_median": float(np.median(final)), "final_max": float(final[-1]),
                "seed_spearman": rho, "layers": {int(k): int(v) for k, v in layers[list(self.final)].value_counts()
                                                .sort_index().items()},
                "top_1pct_layers": sorted({int(layers[c]) for c in top}),
                "cpu_hours": self.meta.get("cpu_hours"), "machine": self.meta.get("machine")}

    def sliced(self, space: ResNetGrid) -> "Table":
        """The rows of the configurations in `space` (a slice of the grid): a smaller table of the same kind."""
        keep = {config_id(p) for p in space.configurations()}
        return Table.of(self.rows[self.rows["config"].isin(keep)].reset_index(drop=True), self.meta)

    def joined(self, other: "Table") -> "Table":
        """This table and another's rows, built under the same schedule on other values (`resnet_grid.BEYOND`)."""
        if other.meta["run"] != self.meta["run"] or other.meta["shape"] != self.meta["shape"]:
            raise UsageError(f"tables built under {other.meta['run']} and {self.meta['run']} cannot be joined")
        return Table.of(pd.concat([self.rows, other.rows], ignore_index=True), self.meta)

    def grid(self) -> ResNetGrid:
        """The largest grid the table holds whole: its space, or while it is being built the slice of the values of
        one dimension whose configurations it already holds (the build finishes one weight decay first)."""
        full = ResNetGrid(self.meta.get("grid") and {k: tuple(v) for k, v in self.meta["grid"].items()})
        if not self.missing(full):
            return full
        best: ResNetGrid | None = None
        for key, values in full.grid.items():
            whole = tuple(v for v in values if not self.missing(ResNetGrid({**full.grid, key: (v,)})))
            if whole and (best is None or len(ResNetGrid({**full.grid, key: whole})) > len(best)):
                best = ResNetGrid({**full.grid, key: whole})
        if best is None:
            raise UsageError(f"the table holds no whole slice of its grid yet ({len(self.final)} of {len(full)} "
                             f"configurations): extend it with python benchmarks/build_table.py")
        return best

    def missing(self, space: ResNetGrid) -> list[str]:
        """Configurations of `space` the table does not hold under every seed."""
        return [c for c in (config_id(p) for p in space.configurations()) if c not in self.final]


def _missing(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))
