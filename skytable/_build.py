"""Building a box tree level by level, as column arrays.

A :class:`Level` holds the rows of one depth in parent order; :func:`grid_split` makes
the children of some rows as regular grids of equal RA/Dec boxes; :func:`assemble` stacks
the levels into the flat columns of a SkyTable (rows ordered by depth, children of a row
contiguous, so ``child_s``/``child_e`` describe them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dvo.errors import SkyTableError

__all__ = ["Level", "grid_split", "assemble", "concat", "num", "join"]


@dataclass
class Level:
    """Rows of one depth: bounds, names, and the row (within the previous level) of the parent."""

    r_min: np.ndarray
    r_max: np.ndarray
    d_min: np.ndarray
    d_max: np.ndarray
    name: np.ndarray
    parent: np.ndarray  # index into the previous Level, -1 for roots
    nra: np.ndarray = field(default=None)  # grid of this row's children; 0 = scanned
    ndec: np.ndarray = field(default=None)
    extra: dict = field(default_factory=dict)  # scheme data carried along (e.g. HEALPix pixel)

    def __post_init__(self) -> None:
        n = len(self.r_min)
        if self.nra is None:
            self.nra = np.zeros(n, dtype=np.int32)
        if self.ndec is None:
            self.ndec = np.zeros(n, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.r_min)

    def take(self, idx: np.ndarray) -> Level:
        """The rows ``idx`` (parents and extras carried)."""
        return Level(
            self.r_min[idx],
            self.r_max[idx],
            self.d_min[idx],
            self.d_max[idx],
            self.name[idx],
            self.parent[idx],
            self.nra[idx],
            self.ndec[idx],
            {k: v[idx] for k, v in self.extra.items()},
        )


def concat(levels: list[Level]) -> Level:
    """Rows of several Levels of the same depth, in order."""
    keys = levels[0].extra.keys()
    return Level(
        *(
            np.concatenate([getattr(lv, a) for lv in levels])
            for a in ("r_min", "r_max", "d_min", "d_max", "name", "parent", "nra", "ndec")
        ),
        {k: np.concatenate([lv.extra[k] for lv in levels]) for k in keys},
    )


def _edges(lo: np.ndarray, hi: np.ndarray, i: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Edge ``i`` of ``n`` equal steps from lo to hi; edge n is exactly hi (shared edges agree)."""
    return np.where(i >= n, hi, lo + (hi - lo) * (i / np.maximum(n, 1)))


def grid_split(parent: Level, rows: np.ndarray, nra: np.ndarray, ndec: np.ndarray) -> Level:
    """Children of ``parent`` rows ``rows`` as ``nra x ndec`` grids (RA fastest); names ``.%02d``.

    Sets ``parent.nra``/``parent.ndec`` for those rows. Names are ``<parent name>.<k>`` with
    k the two-digit cell number; callers rename where the scheme says otherwise.
    """
    rows = np.asarray(rows, dtype=np.int64)
    nra = np.broadcast_to(np.asarray(nra, dtype=np.int64), rows.shape)
    ndec = np.broadcast_to(np.asarray(ndec, dtype=np.int64), rows.shape)
    parent.nra[rows], parent.ndec[rows] = nra, ndec
    count = nra * ndec
    owner = np.repeat(rows, count)
    start = np.repeat(np.cumsum(count) - count, count)
    local = np.arange(count.sum()) - start
    nr, nd = np.repeat(nra, count), np.repeat(ndec, count)
    i, j = local % nr, local // nr
    r0, r1 = parent.r_min[owner], parent.r_max[owner]
    d0, d1 = parent.d_min[owner], parent.d_max[owner]
    name = join(parent.name[owner], ".", num(local, 2))
    return Level(
        _edges(r0, r1, i, nr),
        _edges(r0, r1, i + 1, nr),
        _edges(d0, d1, j, nd),
        _edges(d0, d1, j + 1, nd),
        name,
        owner,
    )


def num(values, width: int) -> np.ndarray:
    """Zero-padded decimal strings of integers (vectorised, numpy.strings).

    Examples
    --------
    >>> num(np.array([1, 12]), 4).tolist()
    ['0001', '0012']
    """
    return np.strings.zfill(np.asarray(values, dtype=np.int64).astype(str), width)


def join(*parts) -> np.ndarray:
    """Concatenate str arrays and str scalars elementwise.

    Examples
    --------
    >>> join(np.array(["n0000", "s0730"]), "/", num(np.array([1, 2]), 4)).tolist()
    ['n0000/0001', 's0730/0002']
    """
    out = np.asarray(parts[0], dtype=str)
    for p in parts[1:]:
        out = np.strings.add(out, np.asarray(p, dtype=str))
    return out


@dataclass
class Columns:
    """The assembled tree (row order: depth, then parent order)."""

    r_min: np.ndarray
    r_max: np.ndarray
    d_min: np.ndarray
    d_max: np.ndarray
    name: np.ndarray
    depth: np.ndarray
    parent: np.ndarray
    child_s: np.ndarray
    child_e: np.ndarray
    nra: np.ndarray
    ndec: np.ndarray
    extra: dict


def assemble(levels: list[Level], first_depth: int = 0) -> Columns:
    """Stack Levels (depth ``first_depth``, +1, ...) into flat tree columns."""
    sizes = np.array([len(lv) for lv in levels], dtype=np.int64)
    offset = np.concatenate([[0], np.cumsum(sizes)])
    parent = [np.full(sizes[0], -1, dtype=np.int64)]
    for k in range(1, len(levels)):
        p = levels[k].parent.astype(np.int64)
        if np.any(np.diff(p) < 0):
            raise SkyTableError("internal: children are not in parent order")
        parent.append(p + offset[k - 1])
    parent = np.concatenate(parent)
    n = int(offset[-1])
    counts = np.bincount(parent[parent >= 0], minlength=n)
    first = np.full(n, n, dtype=np.int64)
    rows = np.arange(n, dtype=np.int64)
    np.minimum.at(first, parent[parent >= 0], rows[parent >= 0])
    child_s = np.where(counts > 0, first, 0)
    child_e = child_s + counts
    cat = {
        a: np.concatenate([getattr(lv, a) for lv in levels])
        for a in ("r_min", "r_max", "d_min", "d_max", "name", "nra", "ndec")
    }
    depth = np.repeat(np.arange(len(levels)) + first_depth, sizes).astype(np.int16)
    extra = {k: np.concatenate([lv.extra[k] for lv in levels]) for k in levels[0].extra}
    return Columns(
        cat["r_min"].astype(np.float64),
        cat["r_max"].astype(np.float64),
        cat["d_min"].astype(np.float64),
        cat["d_max"].astype(np.float64),
        cat["name"].astype(str),
        depth,
        parent,
        child_s,
        child_e,
        cat["nra"].astype(np.int32),
        cat["ndec"].astype(np.int32),
        extra,
    )
