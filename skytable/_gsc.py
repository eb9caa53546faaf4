"""The GSC-style box tree (levels 0-4) and its density-adaptive variant.

Depth 0 ``fullsky``; depth 1 the 24 Dec bands of 7.5 deg (``n0000`` .. ``n8230``,
``s0000`` .. ``s8230``; ``s0000`` is -7.5..0); depth 2 the GSC large regions,
``round(48 cos(band centre))`` equal-RA boxes per band, named ``<band>/z%03d`` (a global
counter, as DVO names its level 2); depth 3 each large region split k x k, k in {2, 3, 4}
by the expected star count (the smallest k with at most ``target`` stars per small region,
else 4), named ``<band>/%04d`` with GSC-style consecutive numbers (north bands from the
equator up, then south bands from the equator down; RA fastest inside a large region);
depth 4 each depth-3 box split 4 x 4, ``<name>.00`` .. ``.15`` (RA fastest).

Polar caps (DVO replaces GSC regions above |Dec| 86 deg by ``pole.0..4``); the equivalent
here: in each polar band the 3 large regions span only 82.5..86.25 deg, and a fourth
depth-2 node ``<band>/pole`` covers 86.25..90 with the five depth-3 children of DVO:
``pole.0..3`` the RA quadrants of 86.25..88.125 and ``pole.4`` the cap 88.125..90 (mirrored
in the south). Rows are ordered by depth, then parent; children of a node are contiguous.
"""

from __future__ import annotations

import numpy as np
from dvo.skytable._build import Columns, Level, assemble, concat, grid_split, join, num
from dvo.skytable.density import box_counts

from dvo.errors import SkyTableError

__all__ = ["build_gsc", "build_gsc_adaptive", "band_names", "large_counts", "GSC_TARGET"]

BAND = 7.5
POLE_EDGE, CAP_EDGE = 86.25, 88.125
MAX_ADAPTIVE_DEPTH = 9
# stars per small region that the default model map and rule aim at (see bench / report)
GSC_TARGET = 1130.0


def band_names() -> np.ndarray:
    """Names of the 24 bands in row order (south to north).

    Examples
    --------
    >>> band_names()[[0, 11, 12, 23]].tolist()
    ['s8230', 's0000', 'n0000', 'n8230']
    """
    lo = -90.0 + BAND * np.arange(24)
    edge = np.where(lo >= 0, lo, -(lo + BAND))
    mins = np.round(edge * 60).astype(int)
    code = join(num(mins // 60, 2), num(mins % 60, 2))
    return join(np.where(lo >= 0, "n", "s"), code)


def large_counts() -> np.ndarray:
    """Large regions per band (south to north): round(48 cos(band centre)).

    Examples
    --------
    >>> int(large_counts().sum()), large_counts()[12:].tolist()
    (732, [48, 47, 45, 43, 40, 36, 32, 27, 21, 15, 9, 3])
    """
    centre = -90.0 + BAND * (np.arange(24) + 0.5)
    return np.round(48 * np.cos(np.radians(centre))).astype(np.int64)


def _root_and_bands() -> list[Level]:
    root = Level(
        *(np.array([v]) for v in (0.0, 360.0, -90.0, 90.0)), np.array(["fullsky"]), np.array([-1])
    )
    bands = grid_split(root, [0], 1, 24)
    bands.name = band_names()
    return [root, bands]


def _large_regions(bands: Level) -> Level:
    """Depth 2: large regions, polar bands trimmed and given a ``pole`` node."""
    nl = large_counts()
    polar = np.array([0, 23])
    trimmed = bands.take(np.arange(24))
    trimmed.d_min[0], trimmed.d_max[23] = -POLE_EDGE, POLE_EDGE
    big = grid_split(trimmed, np.arange(24), nl, 1)
    bands.nra[:], bands.ndec[:] = nl, 1
    bands.nra[polar] = 0  # polar bands: scanned (3 large regions + the pole node)
    big.name = join(bands.name[big.parent], "/z", num(np.arange(1, len(big) + 1), 3))
    cap_lo = np.array([-90.0, POLE_EDGE])
    cap_hi = np.array([-POLE_EDGE, 90.0])
    pole = Level(
        np.zeros(2), np.full(2, 360.0), cap_lo, cap_hi, join(bands.name[polar], "/pole"), polar
    )
    south = big.parent == 0
    parts = [
        pole.take([0]),
        big.take(np.flatnonzero(south)),
        big.take(np.flatnonzero(~south)),
        pole.take([1]),
    ]
    return concat(parts)


def _pole_children(large: Level) -> Level:
    """The five DVO pole regions under each ``pole`` node (south first, then north)."""
    rows = np.flatnonzero(np.char.endswith(large.name, "/pole"))
    kids = []
    for row in rows:  # the two caps
        north = large.d_max[row] == 90.0
        q = np.arange(5)
        r0 = np.where(q < 4, 90.0 * q, 0.0)
        r1 = np.where(q < 4, 90.0 * (q + 1), 360.0)
        ring = (POLE_EDGE, CAP_EDGE) if north else (-CAP_EDGE, -POLE_EDGE)
        cap = (CAP_EDGE, 90.0) if north else (-90.0, -CAP_EDGE)
        d0 = np.where(q < 4, ring[0], cap[0])
        d1 = np.where(q < 4, ring[1], cap[1])
        order = np.arange(5) if north else np.array([4, 0, 1, 2, 3])  # by Dec, low first
        lv = Level(r0, r1, d0, d1, join(large.name[row], ".", q.astype(str)), np.full(5, row))
        kids.append(lv.take(order))
    return kids


def _small_k(counts: np.ndarray, target: float) -> np.ndarray:
    """Smallest k in {2, 3, 4} with counts / k^2 <= target, else 4."""
    return np.where(counts <= 4 * target, 2, np.where(counts <= 9 * target, 3, 4))


def _gsc_numbers(large: Level, small: Level, bands: Level) -> np.ndarray:
    """GSC-style consecutive numbers: north bands up from the equator, then south down."""
    band_row = large.parent[small.parent]
    band_rank = np.where(band_row >= 12, band_row - 12, 12 + (11 - band_row))
    order = np.lexsort((np.arange(len(small)), band_rank))
    number = np.empty(len(small), dtype=np.int64)
    number[order] = np.arange(1, len(small) + 1)
    return join(bands.name[band_row], "/", num(number, 4))


def _split_large(bands: Level, large: Level, rows: np.ndarray, counts, target: float) -> Level:
    """Depth 3 under the large-region rows ``rows`` (pole nodes get their five regions)."""
    is_pole = np.char.endswith(large.name[rows], "/pole")
    grid_rows = rows[~is_pole]
    k = _small_k(np.asarray(counts)[~is_pole], target)
    small = grid_split(large, grid_rows, k, k)
    small.name = _gsc_numbers(large, small, bands)
    south, north = _pole_children(large)
    parts = [south] if 0 in rows else []
    parts.append(small)
    if len(large) - 1 in rows:
        parts.append(north)
    return concat(parts)


def _small_regions(bands: Level, large: Level, density: np.ndarray, target: float) -> Level:
    rows = np.arange(len(large))
    counts = box_counts(density, large.r_min, large.r_max, large.d_min, large.d_max)
    return _split_large(bands, large, rows, counts, target)


def build_gsc(level: int, density: np.ndarray | None, target: float = GSC_TARGET) -> Columns:
    """The GSC tree down to depth ``level`` (1..4); ``density`` is used from depth 3."""
    if level not in (1, 2, 3, 4):
        raise SkyTableError(f"GSC level must be 1, 2, 3 or 4, got {level}")
    levels = _root_and_bands()
    if level >= 2:
        levels.append(_large_regions(levels[1]))
    if level >= 3:
        levels.append(_small_regions(levels[1], levels[2], density, target))
    if level >= 4:
        l3 = levels[3]
        levels.append(grid_split(l3, np.arange(len(l3)), 4, 4))
    return assemble(levels)


def build_gsc_adaptive(density: np.ndarray, max_count: float) -> Columns:
    """GSC tree split until no leaf expects more than ``max_count`` (depth 2 leaves at least).

    Large regions split k x k (k in 2..4) as at depth 3; deeper boxes split 4 x 4; the pole
    nodes split into their five regions. Stops at depth :data:`MAX_ADAPTIVE_DEPTH`.
    """
    if not max_count > 0:
        raise SkyTableError("max_per_partition must be positive")
    levels = _root_and_bands()
    levels.append(_large_regions(levels[1]))
    while len(levels) - 1 < MAX_ADAPTIVE_DEPTH:
        cur = levels[-1]
        counts = box_counts(density, cur.r_min, cur.r_max, cur.d_min, cur.d_max)
        split = counts > max_count
        if not split.any():
            break
        rows = np.flatnonzero(split)
        if len(levels) == 3:
            nxt = _split_large(levels[1], cur, rows, counts[rows], max_count)
        else:
            nxt = grid_split(cur, rows, 4, 4)
        levels.append(nxt)
    return assemble(levels)
