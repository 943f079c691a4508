"""Search spaces: named families of architectures with exact parameter counts.

    >>> import spaces
    >>> space = spaces.get("resnet_5m")
    >>> space.count_params(space.presets["tpsnet"])
    4959770
"""
from spaces._base import Space
from spaces._registry import UnknownSpaceError, get, names, register
from spaces._types import Arch, ArchError, Dimension
from spaces import resnet_5m  # noqa: F401  (registers the space)

__all__ = ["Arch", "ArchError", "Dimension", "Space", "UnknownSpaceError", "get", "names", "register"]
