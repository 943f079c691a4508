"""Search spaces: named families of architectures with exact parameter and MACs counts.

    >>> from tpsearch import spaces
    >>> space = spaces.get("resnet_5m")
    >>> space.count_params(space.presets["tpsnet"])
    4959770
    >>> space.count_macs(space.presets["tpsnet"])  # per 32x32 image, analytic
    730228096

A space of your own subclasses `Space` and is named MODULE:CLASS or FILE.py:CLASS wherever a space name goes
(`spaces.get`, `tpsearch run --space`), or is installed under the entry point group `tpsearch.spaces`.
"""
from tpsearch.spaces._base import Space
from tpsearch.spaces._registry import UnknownSpaceError, get, is_own, names, register, source_of
from tpsearch.spaces._types import Arch, ArchError, Counts, Dimension
from tpsearch.spaces import backbones, convnets, inception, resnet_5m, resnet_grid, xresnet, zoo  # noqa: F401  (register the spaces)
from tpsearch.spaces._options import OPTIONS
from tpsearch.spaces._options import check_names as check_option_names
from tpsearch.spaces._options import dimensions as option_dimensions
from tpsearch.spaces._training import BATCH_SIZES, HPARAMS, SEARCHED_TRICKS, TRICKS, check_tricks, params_of

__all__ = ["Arch", "ArchError", "BATCH_SIZES", "Counts", "Dimension", "HPARAMS", "OPTIONS", "SEARCHED_TRICKS", "Space",
           "TRICKS", "UnknownSpaceError", "backbones", "check_option_names", "check_tricks", "convnets", "get",
           "inception", "is_own", "names", "option_dimensions", "params_of", "register", "resnet_5m", "resnet_grid",
           "source_of", "xresnet", "zoo"]
