"""Numba kernels of the box tree: point lookup and the inner margin used by ``near``.

The tree is given as flat arrays indexed by row. The children of a row are the rows
``child_s[i] .. child_e[i] - 1``. A row with ``nra[i] > 0`` has its children on a regular
``nra x ndec`` grid of equal boxes, RA fastest, so the child is found by arithmetic and
then corrected against the stored bounds (the bounds are the truth, the arithmetic only a
guess); other rows (``nra[i] == 0``, e.g. the polar caps) are scanned. Inputs are
validated by the caller: RA in [0, 360), Dec in [-90, 90], no NaN (so ``fastmath`` is not
used and not needed).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def in_box(r_min: float, r_max: float, d_min: float, d_max: float, ra: float, dec: float) -> bool:
    """The lookup convention: ``r_min <= ra < r_max``, ``d_min <= dec < d_max``, +90 on top."""
    if ra < r_min or ra >= r_max or dec < d_min:
        return False
    return dec < d_max or (dec == 90.0 and d_max == 90.0)


EDGE_EPS = 1e-9  # fraction of a cell: closer to an edge than this, check the stored bounds


def pack(r_min, r_max, d_min, d_max, child_s, child_e, nra, ndec) -> np.ndarray:
    """One cache line per row: the columns the descent reads, as an (n, 8) float64 array."""
    cols = (r_min, r_max, d_min, d_max, child_s, child_e, nra, ndec)
    return np.ascontiguousarray(np.stack([np.asarray(c, dtype=np.float64) for c in cols], axis=1))


@njit(cache=True, inline="always")
def _cell(x, lo, hi, n):
    f = (x - lo) / (hi - lo) * n
    i = min(max(int(f), 0), n - 1)
    r = f - i
    return i, r < EDGE_EPS or r > 1.0 - EDGE_EPS


@njit(cache=True, inline="always")
def _grid_child(node, ra, dec, t):
    """Child of grid row ``node`` holding the point: arithmetic, checked near cell edges."""
    n_ra = int(t[node, 6])
    n_dec = int(t[node, 7])
    i, near_i = _cell(ra, t[node, 0], t[node, 1], n_ra)
    j, near_j = _cell(dec, t[node, 2], t[node, 3], n_dec)
    c = int(t[node, 4]) + j * n_ra + i
    if not (near_i or near_j):
        return c
    while i > 0 and ra < t[c, 0]:
        i -= 1
        c -= 1
    while i < n_ra - 1 and ra >= t[c, 1]:
        i += 1
        c += 1
    while j > 0 and dec < t[c, 2]:
        j -= 1
        c -= n_ra
    while j < n_dec - 1 and dec >= t[c, 3]:
        j += 1
        c += n_ra
    return c


@njit(cache=True)
def lookup_tree(ra, dec, t, stop, out):
    """Fill ``out[k]`` with the row holding point k, descending from row 0.

    ``t`` is the :func:`pack` of the tree; ``stop[i]`` marks the rows where the descent
    ends (tables, or rows at the asked depth). A point whose descent reaches a row without
    children before a stop row gets -1.
    """
    for k in range(ra.shape[0]):
        a = ra[k]
        d = dec[k]
        node = 0
        while not stop[node]:
            cs = int(t[node, 4])
            ce = int(t[node, 5])
            if ce == cs:
                node = -1
                break
            if t[node, 6] > 0:
                node = _grid_child(node, a, d, t)
            else:
                c = cs
                while c < ce - 1 and not in_box(t[c, 0], t[c, 1], t[c, 2], t[c, 3], a, d):
                    c += 1
                node = c
        out[k] = node


@njit(cache=True, inline="always")
def _margin(ra, dec, r0, r1, d0, d1):
    """Lower bound (deg) of the distance from a point to the edge of its box (r0..d1).
    Edges at the poles and the RA seam of full rings are not edges and are ignored."""
    deg = 180.0 / math.pi
    m = np.inf
    if d0 > -90.0:
        m = min(m, dec - d0)
    if d1 < 90.0:
        m = min(m, d1 - dec)
    if r1 - r0 < 360.0:
        cd = math.cos(dec / deg)
        s1 = abs(math.sin((ra - r0) / deg))
        s2 = abs(math.sin((r1 - ra) / deg))
        m = min(m, math.asin(min(cd * min(s1, s2), 1.0)) * deg)
    return m


@njit(cache=True)
def near_edge(ra, dec, rows, r_min, r_max, d_min, d_max, radius, out):
    """``out[k]``: whether the :func:`_margin` of point k in its box ``rows[k]`` is at most
    ``radius[k]``.

    Points of a run in the same box with the same radius share an inner box, two radii in
    from the edges, whose points are answered False without trigonometry (their margin is
    at least two radii, far above rounding).
    """
    deg = 180.0 / math.pi
    prev, prev_rad = -1, -1.0
    lo_d, hi_d, lo_r, hi_r = 0.0, -1.0, 0.0, -1.0
    for k in range(ra.shape[0]):
        c = rows[k]
        rad = radius[k]
        if c != prev or rad != prev_rad:
            prev, prev_rad = c, rad
            r0, r1, d0, d1 = r_min[c], r_max[c], d_min[c], d_max[c]
            lo_d = d0 + 2 * rad if d0 > -90.0 else -np.inf
            hi_d = d1 - 2 * rad if d1 < 90.0 else np.inf
            lo_r, hi_r = 1.0, -1.0  # no inner box unless set below
            if r1 - r0 >= 360.0:
                lo_r, hi_r = -np.inf, np.inf
            elif r1 - r0 <= 90.0 and 2 * rad < 45.0:
                cmax = math.cos(max(abs(d0), abs(d1)) / deg)
                if cmax > 0.0:
                    s = math.sin(2 * rad / deg) / cmax
                    if s < 1.0:
                        w = math.asin(s) * deg * (1 + 1e-9) + 1e-12
                        lo_r, hi_r = r0 + w, r1 - w
        a, d = ra[k], dec[k]
        if lo_d < d < hi_d and lo_r < a < hi_r:
            out[k] = False
        else:
            out[k] = _margin(a, d, r_min[c], r_max[c], d_min[c], d_max[c]) <= rad


@njit(cache=True)
def lookup_leaves(ra, dec, t, stop, out):
    """:func:`lookup_tree` to the tables (``stop`` = the rows with a table) for points in
    runs: a point in the box of the previous point's table is in that table (GSC tables
    tile the sky, each point in exactly one box under the lookup convention)."""
    prev = -1
    for k in range(ra.shape[0]):
        a = ra[k]
        d = dec[k]
        if prev >= 0 and in_box(t[prev, 0], t[prev, 1], t[prev, 2], t[prev, 3], a, d):
            out[k] = prev
            continue
        node = 0
        while not stop[node]:
            cs = int(t[node, 4])
            ce = int(t[node, 5])
            if ce == cs:
                node = -1
                break
            if t[node, 6] > 0:
                node = _grid_child(node, a, d, t)
            else:
                c = cs
                while c < ce - 1 and not in_box(t[c, 0], t[c, 1], t[c, 2], t[c, 3], a, d):
                    c += 1
                node = c
        out[k] = node
        prev = node


@njit(cache=True)
def normalize_points(ra, dec, ra_out) -> int:
    """One pass over the points: RA modulo 360 into ``ra_out``; returns 0 if all is well,
    else 1 + the index of the first non-finite point or -(1 + index) of the first bad Dec."""
    for k in range(ra.shape[0]):
        a = ra[k]
        d = dec[k]
        if not (math.isfinite(a) and math.isfinite(d)):
            return 1 + k
        if d < -90.0 or d > 90.0:
            return -(1 + k)
        if a < 0.0 or a >= 360.0:
            a = a % 360.0
            if a >= 360.0:  # a tiny negative RA rounds up to 360
                a = 0.0
        ra_out[k] = a
    return 0


@njit(cache=True, inline="always")
def box_max_dot(r0, r1, d0, d1, x, y, z) -> float:
    """Scalar twin of :func:`dvo.skytable._sphere.box_max_dot` (max of v.p over a box)."""
    deg = 180.0 / math.pi
    a = math.hypot(x, y)
    phi = math.atan2(y, x) * deg
    width = r1 - r0
    if width >= 360.0 or (phi - r0) % 360.0 <= width:
        b = a
    else:
        b = a * max(math.cos((r0 - phi) / deg), math.cos((r1 - phi) / deg))
    psi = math.atan2(z, b) * deg
    if d0 <= psi <= d1:
        return math.hypot(b, z)
    c0 = b * math.cos(d0 / deg) + z * math.sin(d0 / deg)
    c1 = b * math.cos(d1 / deg) + z * math.sin(d1 / deg)
    return max(c0, c1)


@njit(cache=True, inline="always")
def _may_touch(r0, r1, d0, d1, dec, rad, a0, aw) -> bool:
    """Cheap necessary conditions (no trigonometry): Dec within the radius, and the box's
    RA range meets the cone's RA range ``[a0, a0 + aw]`` (aw >= 360: any RA)."""
    if d0 > dec + rad or d1 < dec - rad:
        return False
    bw = r1 - r0
    if aw >= 360.0 or bw >= 360.0:
        return True
    return (r0 - a0) % 360.0 <= aw or (a0 - r0) % 360.0 <= bw


@njit(cache=True)
def near_tree(vec, ra, dec, rad, t, stop, roots, counts, out_row, fill):
    """Depth-first search of the boxes within each point's radius (``max v.p >= cos r``).

    ``ra``, ``dec``, ``rad`` (deg) feed a cheap prefilter. With ``fill`` False, counts the
    partitions per point into ``counts``; with ``fill`` True, writes them to ``out_row`` at
    the offsets ``cumsum(counts) - counts``.
    """
    stack = np.empty(8192, dtype=np.int64)
    deg = 180.0 / math.pi
    pos = 0
    for k in range(vec.shape[0]):
        x, y, z = vec[k, 0], vec[k, 1], vec[k, 2]
        lim = math.cos(rad[k] / deg) - 1e-12
        aw = 360.0
        if abs(dec[k]) + rad[k] < 89.999:  # RA half-width of the cone
            aw = 2.0 * math.asin(min(math.sin(rad[k] / deg) / math.cos(dec[k] / deg), 1.0)) * deg
            aw = aw * (1 + 1e-9) + 1e-9
        a0 = ra[k] - aw / 2
        n = 0
        top = 0
        for r in roots:
            stack[top] = r
            top += 1
        while top > 0:
            top -= 1
            node = stack[top]
            r0, r1, d0, d1 = t[node, 0], t[node, 1], t[node, 2], t[node, 3]
            if not _may_touch(r0, r1, d0, d1, dec[k], rad[k] + 1e-9, a0, aw):
                continue
            if box_max_dot(r0, r1, d0, d1, x, y, z) < lim:
                continue
            if stop[node]:
                if fill:
                    out_row[pos] = node
                    pos += 1
                n += 1
                continue
            for c in range(int(t[node, 5]) - 1, int(t[node, 4]) - 1, -1):
                stack[top] = c
                top += 1
        counts[k] = n
