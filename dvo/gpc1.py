"""Facts about the Pan-STARRS GPC1 camera that the photcode table and the simulator share.

Values from the IPP ``dvo.photcodes`` master file (see ``shared/reference/dvo-facts.md`` s5):
DEP code = 10000 + 100*f + XY, zero point C_LAM in millimag, airmass slope K, and the SEC code
(the average filter) each chip code is equivalent to.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FilterFacts", "FILTERS", "CHIPS", "chip_code", "PIXEL_SCALE", "CHIP_NX", "CHIP_NY"]


@dataclass(frozen=True)
class FilterFacts:
    """One GPC1 filter: index f in the code formula, zero point, airmass slope, SEC code."""

    f: int
    zero_point: float  # mag; C_LAM = 1000 * zero_point
    k: float  # mag per airmass
    sec_code: int


FILTERS: dict[str, FilterFacts] = {
    "g": FilterFacts(0, 24.563, -0.147, 1),
    "r": FilterFacts(1, 24.750, -0.085, 2),
    "i": FilterFacts(2, 24.611, -0.044, 3),
    "z": FilterFacts(3, 24.250, -0.033, 4),
    "y": FilterFacts(4, 23.320, -0.073, 5),
    "w": FilterFacts(5, 26.060, 0.000, 9),
}

#: The 60 chips XY01..XY76 of the 8x8 grid without the corners, as (x, y) pairs, x fastest.
CHIPS: tuple[tuple[int, int], ...] = tuple(
    (x, y) for y in range(8) for x in range(8) if (x, y) not in {(0, 0), (0, 7), (7, 0), (7, 7)}
)

PIXEL_SCALE = 0.258  # arcsec per pixel
CHIP_NX = 4846
CHIP_NY = 4868


def chip_code(filter_name: str, x: int, y: int) -> int:
    """DEP photcode of chip XY<x><y> in a filter, e.g. ``chip_code('g', 0, 1) == 10001``."""
    return 10000 + 100 * FILTERS[filter_name].f + 10 * x + y
