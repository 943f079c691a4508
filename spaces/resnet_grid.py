"""resnet_grid: a finite sub-space of resnet_5m, the one the strategy table covers (`tpsearch simulate`).

Every dimension is categorical, so the space is a grid that can be trained through once: the table of learning
curves in `tpsearch.search.simulate` holds every configuration of it, and a simulated search, whose sampler
searches exactly this grid, never proposes a network the table lacks. The networks are resnet_5m's (`build`,
`count_params` and `count_macs` are its own); the grid ties a layer's choices across layers (one block count, one
kernel, one skip kernel for every layer), which keeps it at 96 architectures, and adds the training choices that
matter most: learning rate, batch size and weight decay (SGD with Nesterov momentum, no label smoothing), 12 of
them: 1,152 configurations.

    layers        1 | 2 | 3
    blocks        1 | 2 per layer (every layer the same)
    channels      C_1 = 4 | 8 (layer i is 2^i * C_1 wide)
    kernel        3 | 5 (every layer; the stem's too)
    skip_kernel   1 | 3 (every layer's projection shortcut)
    pool          global (to 1x1) | half (to 2x2)
    lr            0.03 | 0.1 | 0.3
    batch_size    32 | 128
    weight_decay  5e-5 | 5e-4

`ResNetGrid(grid=...)` is a slice of it (a subset of each dimension's values, or one of `BEYOND`'s): a table's rows
for that slice are a smaller table of the same kind, which the suite's tests search in seconds.
"""
from __future__ import annotations

import itertools
from typing import Any, Iterator, Mapping

from tpsearch.spaces._registry import register
from tpsearch.spaces._types import Arch, ArchError, Dimension
from tpsearch.spaces.resnet_5m import ResNet5M, _final_size, _layer_inputs

GRID: dict[str, tuple[Any, ...]] = {
    "layers": (1, 2, 3),
    "blocks": (1, 2),
    "channels": (4, 8),
    "kernel": (3, 5),
    "skip_kernel": (1, 3),
    "pool": ("global", "half"),
    "lr": (0.03, 0.1, 0.3),
    "batch_size": (32, 128),
    "weight_decay": (5e-5, 5e-4),
}
# Values a slice may take beyond the grid: a learning rate far past any sane one, standing for whatever makes a
# user's trials diverge: at it every run's loss turns NaN within two epochs. Batch norm keeps these networks finite up
# to lr 10 at least, so the strategy table holds no diverged run; the guard test reads a small extra table at this
# rate (`tables/resnet_grid-synthetic-hard-lr1e6.csv`) to see what a search learns from diverged trials.
BEYOND: dict[str, tuple[Any, ...]] = {"lr": (1e6,)}
ARCH_KEYS = ("layers", "blocks", "channels", "kernel", "skip_kernel", "pool")
TRAINING_KEYS = ("lr", "batch_size", "weight_decay")
_TAGS = {"layers": "L", "blocks": "B", "channels": "C", "kernel": "K", "skip_kernel": "S", "pool": "P", "lr": "lr",
         "batch_size": "bs", "weight_decay": "wd"}


def _fit(kernel: int, side: int) -> int:
    return kernel if kernel <= side else max(1, side - 1 + side % 2)


def config_id(params: Mapping[str, Any]) -> str:
    """A configuration's stable name in the table, from its grid values: "L3-B2-C8-K5-S1-Pglobal-lr0.1-bs32-wd5e-05"."""
    return "-".join(f"{_TAGS[k]}{params[k]}" for k in GRID)


@register
class ResNetGrid(ResNet5M):
    name = "resnet_grid"
    description = "a finite grid of resnet_5m (1,152 configurations with lr, batch and weight decay): the strategy table's"
    options = ()
    presets = {"smallest": {"layers": 1, "blocks": [1], "channels": 4, "kernels": [3], "skip_kernels": [1],
                            "pool": 16}}

    def __init__(self, grid: Mapping[str, tuple[Any, ...]] | None = None) -> None:
        grid = dict(GRID if grid is None else grid)
        for key, values in grid.items():
            allowed = GRID[key] + BEYOND.get(key, ()) if key in GRID else ()
            if key not in GRID or not values or any(v not in allowed for v in values):
                raise ValueError(f"a slice of resnet_grid takes values of {allowed or list(GRID)} "
                                 f"for {key!r}, but got {values!r}")
        self.grid = {k: tuple(grid.get(k, GRID[k])) for k in GRID}

    def __len__(self) -> int:
        n = 1
        for values in self.grid.values():
            n *= len(values)
        return n

    def configurations(self) -> Iterator[dict[str, Any]]:
        """Every configuration of the grid (its params), in a fixed order."""
        for values in itertools.product(*self.grid.values()):
            yield dict(zip(self.grid, values))

    def dimensions(self) -> list[Dimension]:
        return [Dimension(key, _TAGS[key], " | ".join(map(str, self.grid[key])), "") for key in ARCH_KEYS]

    def training_dimensions(self) -> list[Dimension]:
        return [Dimension(key, _TAGS[key], " | ".join(map(str, self.grid[key])), "") for key in TRAINING_KEYS]

    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        params = {key: trial.suggest_categorical(key, list(self.grid[key])) for key in ARCH_KEYS}
        return self.arch_of(params, image_size=image_size)

    def suggest_training(self, trial: Any, tricks: Any = ()) -> dict[str, Any]:
        if tuple(tricks):
            raise ValueError("resnet_grid searches no tricks: its training choices are the grid's")
        return self.hparams_of({key: trial.suggest_categorical(key, list(self.grid[key])) for key in TRAINING_KEYS})

    def smallest_batch_size(self) -> int:
        return min(self.grid["batch_size"])

    @staticmethod
    def arch_of(params: Mapping[str, Any], *, image_size: int = 32) -> Arch:
        """The resnet_5m architecture of a grid point. A kernel larger than a layer's input map (kernel 5 in the
        third layer of an 8x8 image) is cut to the largest odd size that fits, as resnet_5m requires."""
        n = params["layers"]
        final = _final_size(image_size, n)
        pool = final if params["pool"] == "global" else max(1, final // 2)
        inputs = _layer_inputs(image_size, n)
        return {"layers": n, "blocks": [params["blocks"]] * n, "channels": params["channels"],
                "kernels": [_fit(params["kernel"], side) for side in inputs],
                "skip_kernels": [_fit(params["skip_kernel"], side) for side in inputs], "pool": pool}

    @staticmethod
    def hparams_of(params: Mapping[str, Any]) -> dict[str, Any]:
        return {"optimizer": "sgd", "lr": params["lr"], "weight_decay": params["weight_decay"],
                "batch_size": params["batch_size"], "label_smoothing": 0.0}

    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        n = a["layers"]
        if len(set(a["blocks"])) != 1:
            raise ArchError("blocks", f"must be the same in every layer of resnet_grid, but got {a['blocks']}")
        final = _final_size(image_size, n)
        pools = {"global": final, "half": max(1, final // 2)}
        params: dict[str, Any] = {"layers": n, "blocks": a["blocks"][0], "channels": a["channels"],
                                  "pool": next((name for name, p in pools.items() if p == a["pool"]), None)}
        # The grid's kernel is the one whose cut to every layer's map (`arch_of`) gives the architecture's kernels.
        for key, per_layer in (("kernel", "kernels"), ("skip_kernel", "skip_kernels")):
            params[key] = next((k for k in self.grid[key]
                                if self.arch_of({**params, "kernel": k, "skip_kernel": k}, image_size=image_size)
                                [per_layer] == a[per_layer]), None)
        for key, value in params.items():
            if value not in self.grid[key]:
                raise ArchError(key, f"no value of {list(self.grid[key])} in this grid gives {a}")
        return {k: params[k] for k in ARCH_KEYS}

    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        return self.arch_of({"layers": min(self.grid["layers"]), "blocks": min(self.grid["blocks"]),
                             "channels": min(self.grid["channels"]), "kernel": min(self.grid["kernel"]),
                             "skip_kernel": min(self.grid["skip_kernel"]),
                             "pool": "global" if "global" in self.grid["pool"] else "half"}, image_size=image_size)
