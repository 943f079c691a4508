"""What the spaces count with: thop's rules as numbers, and a running tally to walk a network's description with."""
from __future__ import annotations

from tpsearch.spaces._types import Counts

BN_OPS = 4  # thop's count per element of an affine batch norm


class Tally:
    """Parameters and thop's operations of each layer as a network is described, without building it; a space's
    own adds its convolutions and pools."""

    def __init__(self) -> None:
        self.params = 0
        self.macs = 0

    def bn(self, c: int, side: int) -> None:
        self.params += 2 * c
        self.macs += BN_OPS * c * side * side

    def linear(self, n_in: int, n_out: int) -> None:
        self.params += n_in * n_out + n_out
        self.macs += n_in * n_out

    def counts(self) -> Counts:
        return Counts(self.params, self.macs)
