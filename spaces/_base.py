"""The contract every search space fulfils, and the error a bad architecture raises."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Iterable, Mapping, Sequence

import torch
import torch.nn as nn

from tpsearch.exceptions import UsageError
from tpsearch.spaces import _options, _training
from tpsearch.spaces._types import Arch, ArchError, Counts, Dimension, check_classes, check_mapping


class Space(ABC):
    """A named family of architectures.

    `suggest` samples an architecture dict from an Optuna trial (define-by-run); `count_params` gives the exact
    parameter count without allocating weights, so a budget is checked before anything is built; `build` makes
    the `torch.nn.Module`. Architecture dicts are plain JSON so that they travel unchanged through the study,
    the workers and the checkpoints. A space writes its `validate` and its `tally`; `count_params` and
    `count_macs` validate an architecture and count it with them.
    """

    name: str = ""
    description: str = ""
    presets: Mapping[str, Arch] = {}
    # The names in `spaces._options.OPTIONS` this space builds and counts; its `suggest` samples none of them.
    options: tuple[str, ...] = ()

    @abstractmethod
    def dimensions(self) -> list[Dimension]:
        """The searchable dimensions of the architecture."""

    @abstractmethod
    def suggest(self, trial: Any, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        """Sample an architecture from `trial` (an `optuna.Trial`) that is valid for inputs of this shape."""

    @abstractmethod
    def validate(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> Arch:
        """Return the normalised architecture, or raise `ArchError` naming the offending dimension."""

    def check_keys(self, arch: Any, dimensions: Iterable[str]) -> None:
        """`arch` is a mapping whose keys are among `dimensions` and this space's options' keys; else `ArchError`
        naming the first other key, with what the space takes. The first check of a `validate`."""
        check_mapping(arch)
        dimensions, options = list(dimensions), _options.keys(self.options)
        unknown = sorted(set(arch) - set(dimensions) - set(options))
        if unknown:
            raise ArchError(unknown[0], f"is not a dimension or option of {self.name} (dimensions: "
                                        f"{', '.join(dimensions)}; options: {', '.join(options)})")

    def tally(self, a: Arch, num_classes: int, in_channels: int, image_size: int) -> Counts:
        """What a space writes to be counted: the `Counts` of `build(a, ...)`, where `a` is `validate`'s normalised
        architecture and `num_classes` is checked (`count_params` and `count_macs` do both, then call this).

        The parameters are exact. The MACs are one image's operations counted without building anything
        (microseconds, no tensor), or None to leave them to `measure_macs`; counted, they follow thop's rules, so
        that they equal its measurement and the MACs recorded by runs that measured them:

          convolution   one multiply-accumulate per weight per output pixel: H_out*W_out * C_out * C_in/groups *
                        kh*kw (its bias adds nothing)
          linear        in_features * out_features (its bias adds nothing)
          batch norm    4 per element of its input (normalise, then scale and shift; at inference it folds into
                        the convolution before it, so this slightly overstates a deployed model)
          avg-pool      one addition per pooled input and one division per output
          free          ReLU, and the activations thop has no rule for (Mish, sigmoid, Hardswish: counted as
                        nothing), max pools, dropout, flatten, concatenation, the residual additions
        """
        raise NotImplementedError(f"space {self.name!r} counts nothing: define `tally` (or `count_params`)")

    def count_params(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
                     image_size: int = 32) -> int:
        """The exact number of parameters of `build(arch, ...)`, computed analytically (`tally`)."""
        return self._counts(arch, num_classes, in_channels, image_size).params

    def count_macs(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
                   image_size: int = 32) -> int:
        """Multiply-accumulates of one image through `build(arch, ...)`: `tally`'s analytic count, or thop's
        measurement (`measure_macs`) where it gives none; the contract suite holds an analytic count to within 1%
        of the measurement."""
        if type(self).tally is not Space.tally:  # else a space of its own that counts in its own `count_params`
            macs = self._counts(arch, num_classes, in_channels, image_size).macs
            if macs is not None:
                return macs
        return self.measure_macs(arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size)

    def _counts(self, arch: Mapping[str, Any], num_classes: int, in_channels: int, image_size: int) -> Counts:
        a = self.validate(arch, in_channels=in_channels, image_size=image_size)
        check_classes(num_classes)
        return self.tally(a, num_classes, in_channels, image_size)

    def measure_macs(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
                     image_size: int = 32) -> int:
        """thop's count of one image through `build(arch, ...)` (convolutions, linear layers, normalisation and
        pooling), built on the meta device so that no weight is allocated; milliseconds, not microseconds."""
        from thop import profile

        with torch.device("meta"):
            model = self.build(arch, num_classes=num_classes, in_channels=in_channels, image_size=image_size)
        image = torch.zeros(1, in_channels, image_size, image_size, device="meta")
        macs, _ = profile(model, inputs=(image,), verbose=False)
        return int(macs)

    @abstractmethod
    def build(self, arch: Mapping[str, Any], num_classes: int = 10, in_channels: int = 3,
              image_size: int = 32) -> nn.Module:
        """The network described by `arch`."""

    @abstractmethod
    def params_of(self, arch: Mapping[str, Any], *, in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        """The trial params that make `suggest` return `arch`: how a known architecture is enqueued in a study."""

    @abstractmethod
    def smallest(self, *, in_channels: int = 3, image_size: int = 32) -> Arch:
        """The architecture with the fewest parameters and MACs that `suggest` can return (the lowest feasible
        budgets: `tpsearch run` refuses a --max-params or --max-macs below its counts)."""

    def suggest_training(self, trial: Any, tricks: Sequence[str] = ()) -> dict[str, Any]:
        """Training hyperparameters: shared by every space, defined once in `spaces._training`; `tricks` names the
        trick dimensions drawn too (`_training.SEARCHED_TRICKS`; the others stay off)."""
        return _training.suggest(trial, tricks)

    def suggest_options(self, trial: Any, names: Iterable[str] | str) -> dict[str, Any]:
        """The named options sampled from `trial` (architecture keys and values, for the caller to merge into the
        architecture `suggest` returned); `UsageError` for an unknown option or one this space does not take."""
        names = _options.check_names(names)
        refused = [n for n in names if n not in self.options]
        if refused:
            takes = ", ".join(self.options) or "none"
            raise UsageError(f"option {refused[0]!r} is not one that space {self.name!r} takes; its options: {takes}")
        return _options.suggest(trial, names)

    def suggest_with_options(self, trial: Any, options: Iterable[str] | str = (), *, in_channels: int = 3,
                             image_size: int = 32) -> Arch:
        """`suggest`, with the named options sampled and merged in (normalised: options drawn off leave no key)."""
        arch = self.suggest(trial, in_channels=in_channels, image_size=image_size)
        if not options:
            return arch
        return self.validate({**arch, **self.suggest_options(trial, options)}, in_channels=in_channels,
                             image_size=image_size)

    def params_with_options(self, arch: Mapping[str, Any], options: Iterable[str] | str = (), *,
                            in_channels: int = 3, image_size: int = 32) -> dict[str, Any]:
        """The trial params that make `suggest_with_options(..., options)` return `arch`: how a known architecture
        is enqueued in a search that samples options."""
        params = self.params_of(arch, in_channels=in_channels, image_size=image_size)
        return {**params, **_options.params_of(arch, options)} if options else params

    def training_dimensions(self) -> list[Dimension]:
        return _training.dimensions()

    def smallest_batch_size(self) -> int:
        """The smallest batch size `suggest_training` draws: a trial out of memory is retried at half its batch
        size down to this one, never below (a space of its own with other batch sizes overrides it)."""
        return min(_training.BATCH_SIZES)

    def preset(self, name: str) -> Arch:
        if name not in self.presets:
            known = ", ".join(sorted(self.presets))
            raise ArchError("preset", f"unknown preset {name!r} of space {self.name!r}; known: {known}")
        return dict(self.presets[name])
