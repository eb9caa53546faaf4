"""Point and region lookups over a SkyTable (the functions behind its methods).

GSC tables descend the box tree in a numba kernel; HEALPix tables use ``healpy.ang2pix``
at each order and find the row by binary search among the rows of that depth.
Region lookups descend the tree with the region's conservative box test; ``near`` takes
a fast path for points far (more than the radius) from their partition's edge.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from dvo.skytable import _kernels
from dvo.skytable._sphere import radec_to_vec
from dvo.skytable.regions import Cone, Polygon, Region

from dvo.errors import SkyTableError

if TYPE_CHECKING:
    from dvo.skytable.table import SkyTable

__all__ = [
    "check_points",
    "lookup",
    "contains",
    "partitions_in",
    "near",
    "lookup_near",
    "children_of",
]

BAD_NAN = "coordinates must not be NaN or infinite"
BAD_DEC = "dec must lie in [-90, 90]"
BAD_RADIUS = "radius must be finite and lie in [0, 180] deg"


def check_points(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Validate points; returns float64 arrays with RA reduced to [0, 360)."""
    ra = np.ascontiguousarray(np.atleast_1d(np.asarray(ra, dtype=np.float64)))
    dec = np.ascontiguousarray(np.atleast_1d(np.asarray(dec, dtype=np.float64)))
    if ra.shape != dec.shape:
        raise SkyTableError(f"ra and dec differ in shape: {ra.shape} vs {dec.shape}")
    ra, dec = ra.ravel(), dec.ravel()
    out = np.empty_like(ra)
    status = _kernels.normalize_points(ra, dec, out)
    if status > 0:
        raise SkyTableError(f"{BAD_NAN} (point {status - 1})")
    if status < 0:
        raise SkyTableError(f"{BAD_DEC}, got {dec[-status - 1]!r} (point {-status - 1})")
    return out, dec


def _stop_mask(st: SkyTable, level: int | None) -> np.ndarray:
    if level is None:
        return st.has_table
    if not 0 <= level <= int(st.depth.max()):
        raise SkyTableError(
            f"level {level} not in this table (depths {st.depth.min()}..{st.depth.max()})"
        )
    return st.depth == level


def _hpx_rows(st: SkyTable, order: int, pix: np.ndarray) -> np.ndarray:
    lo, hi = st._depth_range(order)
    if hi - lo == 12 * 4**order:  # complete order: rows are the pixels in order
        return lo + pix
    keys = st.hpx_pix[lo:hi]
    pos = np.minimum(np.searchsorted(keys, pix), max(hi - lo - 1, 0))
    found = (hi > lo) & (keys[pos] == pix) if hi > lo else np.zeros(pix.shape, bool)
    return np.where(found, lo + pos, -1)


def lookup(st: SkyTable, ra: np.ndarray, dec: np.ndarray, level: int | None) -> np.ndarray:
    """Row of the partition (or depth-``level`` node) holding each validated point."""
    stop = _stop_mask(st, level)
    out = np.empty(ra.size, dtype=np.int64)
    if st.scheme.value == "gsc":
        _kernels.lookup_tree(ra, dec, st._packed, stop, out)
        return out
    import healpy as hp  # only HEALPix tables need it (it imports slowly)

    depths = st._table_depths if level is None else np.array([level])
    if depths.size == 1:  # one order (every full table): no bookkeeping per point
        pix = hp.ang2pix(2 ** int(depths[0]), ra, dec, nest=True, lonlat=True)
        return _hpx_rows(st, int(depths[0]), pix)
    out[:] = -1
    for order in depths:
        pix = hp.ang2pix(2 ** int(order), ra, dec, nest=True, lonlat=True)
        rows = _hpx_rows(st, int(order), pix)
        hit = (rows >= 0) & (out < 0)
        hit[hit] = stop[rows[hit]]
        out[hit] = rows[hit]
    return out


def contains(st: SkyTable, index: np.ndarray, ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Whether point i is in row ``index[i]``, under exactly the lookup convention."""
    if st.scheme.value == "gsc":
        r0, r1, d0, d1 = st.r_min[index], st.r_max[index], st.d_min[index], st.d_max[index]
        in_dec = (dec >= d0) & ((dec < d1) | ((dec == 90.0) & (d1 == 90.0)))
        return (ra >= r0) & (ra < r1) & in_dec
    import healpy as hp

    out = np.zeros(index.size, dtype=bool)
    order = st.depth[index]
    for k in np.unique(order):
        sel = order == k
        pix = hp.ang2pix(2 ** int(k), ra[sel], dec[sel], nest=True, lonlat=True)
        out[sel] = pix == st.hpx_pix[index[sel]]
    return out


def children_of(st: SkyTable, rows: np.ndarray) -> np.ndarray:
    """All children of ``rows``, concatenated in row order."""
    s, e = st.child_s[rows], st.child_e[rows]
    count = e - s
    start = np.repeat(s - (np.cumsum(count) - count), count)
    return start + np.arange(int(count.sum()), dtype=np.int64)


def _healpix_query(st: SkyTable, region: Region) -> np.ndarray | None:
    """healpy's inclusive disc/polygon queries, for complete HEALPix tables (tighter than boxes)."""
    lo, hi = st._depth_range(st.level)
    if st.scheme.value != "healpix" or hi - lo != 12 * 4**st.level or hi - lo != st.has_table.sum():
        return None
    import healpy as hp

    nside = 2**st.level
    if isinstance(region, Cone):
        vec = hp.ang2vec(region.ra, region.dec, lonlat=True)
        pix = hp.query_disc(nside, vec, np.radians(region.radius), inclusive=True, nest=True)
    elif isinstance(region, Polygon):
        pix = hp.query_polygon(
            nside,
            radec_to_vec(np.array(region.ra), np.array(region.dec)),
            inclusive=True,
            nest=True,
        )
    else:
        return None
    return lo + np.sort(pix.astype(np.int64))


def partitions_in(st: SkyTable, region: Region) -> np.ndarray:
    """Sorted partitions whose box the region touches (top-down, pruning whole subtrees)."""
    if not isinstance(region, Region):
        raise SkyTableError(f"not a region: {region!r}")
    fast = _healpix_query(st, region)
    if fast is not None:
        return fast
    if isinstance(region, Cone):  # the numba search of near(), one point
        one = np.array([region.ra % 360.0]), np.array([float(region.dec)])
        return np.sort(_pairs_near(st, *one, np.array([float(region.radius)]))[1])
    frontier = st._roots
    found = []
    while frontier.size:
        keep = frontier[
            region.touches_boxes(
                st.r_min[frontier], st.r_max[frontier], st.d_min[frontier], st.d_max[frontier]
            )
        ]
        leaf = st.has_table[keep]
        found.append(keep[leaf])
        frontier = children_of(st, keep[~leaf])
    return np.sort(np.concatenate(found)) if found else np.zeros(0, np.int64)


def _pairs_near(st: SkyTable, ra, dec, radius) -> tuple[np.ndarray, np.ndarray]:
    """All (point, partition) pairs whose box comes within the radius (numba tree search).

    Points are validated; ``radius`` holds one radius (deg) per point. Pairs come out
    sorted by point.
    """
    ra, dec = np.ascontiguousarray(ra), np.ascontiguousarray(dec)
    radius = np.ascontiguousarray(radius, dtype=np.float64)
    vec = np.ascontiguousarray(radec_to_vec(ra, dec)).reshape(-1, 3)
    args = (vec, ra, dec, radius, st._packed, st.has_table, st._roots)
    counts = np.zeros(len(vec), dtype=np.int64)
    _kernels.near_tree(*args, counts, np.zeros(0, dtype=np.int64), False)
    rows = np.empty(int(counts.sum()), dtype=np.int64)
    _kernels.near_tree(*args, counts, rows, True)
    return np.repeat(np.arange(len(vec), dtype=np.int64), counts), rows


def _edge_points_hpx(st, ra, dec, own, radius) -> tuple[np.ndarray, np.ndarray] | None:
    """HEALPix fast path, or None when the radius is too large for it.

    A point lies farther than the radius from its partition's edge if its pixel at a fine
    order (whose pixels are at least 3 radii wide) is not on the border of the partition's
    sub-grid of fine pixels. The other points get the partitions of the 8 neighbours of
    their pixel at the deepest partition order (a superset of what they touch).
    """
    import healpy as hp

    top = int(st.depth[st.has_table].max())
    rmax = float(radius.max()) if radius.size else 0.0
    fine = top + 1
    while fine < 29 and np.degrees(hp.nside2resol(2 ** (fine + 1))) >= 3 * rmax:
        fine += 1
    if np.degrees(hp.nside2resol(2**fine)) < 3 * rmax:
        return None
    x, y, _ = hp.pix2xyf(2**fine, hp.ang2pix(2**fine, ra, dec, nest=True, lonlat=True), nest=True)
    size = np.left_shift(np.int64(1), fine - st.depth[own].astype(np.int64))
    xl, yl = x & (size - 1), y & (size - 1)
    edge = np.flatnonzero((xl == 0) | (yl == 0) | (xl == size - 1) | (yl == size - 1))
    nside = 2**top
    pix = hp.ang2pix(nside, ra[edge], dec[edge], nest=True, lonlat=True)
    nb = hp.get_all_neighbours(nside, pix, nest=True).T.ravel()  # -1 where missing
    pt = np.repeat(edge, 8)
    pt, nb = pt[nb >= 0], nb[nb >= 0]
    nra, ndec = hp.pix2ang(nside, nb, nest=True, lonlat=True)
    return pt, lookup(st, np.mod(nra, 360.0), ndec, None)


def _check_radius(radius, n: int) -> np.ndarray:
    r = np.asarray(radius, dtype=np.float64)
    if r.ndim > 1 or (r.ndim == 1 and r.size != n):
        raise SkyTableError(f"radius must be a scalar or one value per point ({n})")
    if not np.isfinite(r).all() or (r < 0).any() or (r > 180).any():
        raise SkyTableError(BAD_RADIUS)
    return np.broadcast_to(r, (n,))


def near(st: SkyTable, ra, dec, radius) -> tuple[np.ndarray, np.ndarray]:
    """(point, partition) pairs whose box comes within ``radius`` deg; see SkyTable.near."""
    ra, dec = check_points(ra, dec)
    radius = _check_radius(radius, ra.size)
    own = lookup(st, ra, dec, None)
    extra = _near_extra(st, ra, dec, radius, own)
    n = np.int64(len(st))
    ekey = extra[0] * n + extra[1]
    ekey = ekey[extra[1] != own[extra[0]]]
    key = np.arange(ra.size, dtype=np.int64) * n + own
    if ekey.size:
        key = np.sort(np.concatenate([key, ekey]))
        key = key[np.concatenate([[True], np.diff(key) != 0])]
    return key // n, key % n


def _near_extra(st: SkyTable, ra, dec, radius, own) -> tuple[np.ndarray, np.ndarray]:
    """(point, partition) pairs within the radius for the points near their box's edge
    (the others have only their own partition)."""
    if st.scheme.value == "gsc":
        edge = np.empty(ra.size, dtype=bool)
        radius = np.ascontiguousarray(radius, dtype=np.float64)
        _kernels.near_edge(ra, dec, own, st.r_min, st.r_max, st.d_min, st.d_max, radius, edge)
        edge = np.flatnonzero(edge)
        extra = _pairs_near(st, ra[edge], dec[edge], radius[edge])
        return edge[extra[0]], extra[1]
    extra = _edge_points_hpx(st, ra, dec, own, radius)
    if extra is None:
        extra = _pairs_near(st, ra, dec, radius)
    return extra


def lookup_near(st: SkyTable, ra, dec, radius) -> tuple[np.ndarray, np.ndarray]:
    """Each point's partition, and the sorted partitions any point comes within ``radius``
    deg of: ``lookup`` and the union of ``near``'s partitions, in one pass."""
    ra, dec = check_points(ra, dec)
    radius = _check_radius(radius, ra.size)
    if st.scheme.value == "gsc":
        own = np.empty(ra.size, dtype=np.int64)
        _kernels.lookup_leaves(ra, dec, st._packed, st.has_table, own)
    else:
        own = lookup(st, ra, dec, None)
    extra = _near_extra(st, ra, dec, radius, own)[1]
    runs = own[np.concatenate([[True], own[1:] != own[:-1]])] if own.size else own
    return own, np.unique(np.concatenate([runs, extra]))
