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
from tpsearch.spaces._types import Arch, ArchError, Dimension
from tpsearch.spaces import backbones, convnets, inception, resnet_5m, resnet_grid, xresnet, zoo  # noqa: F401  (register the spaces)

__all__ = ["Arch", "ArchError", "Dimension", "Space", "UnknownSpaceError", "get", "is_own", "names", "register",
           "source_of"]
