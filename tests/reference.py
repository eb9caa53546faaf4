"""Independent reference implementations (oracles) for the tests.

They compute the same quantities as the library by different methods: unit-vector means
instead of tangent-plane offsets, ``np.add.reduceat`` group sums instead of numba loops,
brute-force O(N*M) distances instead of zone searches.
"""

from __future__ import annotations

import numpy as np


def brute_nearest(ra, dec, obj_ra, obj_dec, radius_arcsec):
    """Nearest object within the radius by computing every distance (chunks of queries)."""
    out = np.full(len(ra), -1, np.int64)
    sep = np.full(len(ra), np.inf)
    ov = _vec(obj_ra, obj_dec)
    for s in range(0, len(ra), 2000):
        qv = _vec(ra[s : s + 2000], dec[s : s + 2000])
        dots = np.clip(qv @ ov.T, -1, 1)
        j = np.argmax(dots, axis=1)
        d = np.degrees(np.arccos(dots[np.arange(len(j)), j])) * 3600
        ok = d <= radius_arcsec
        out[s : s + 2000][ok] = j[ok]
        sep[s : s + 2000][ok] = d[ok]
    return out, sep


def _vec(ra, dec):
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)


def group_weighted_mean(group: np.ndarray, values: np.ndarray, weights: np.ndarray, n: int):
    """Weighted mean per group id 0..n-1 via sorting and reduceat (NaN for empty groups)."""
    order = np.argsort(group, kind="stable")
    g, v, w = group[order], values[order], weights[order]
    out = np.full(n, np.nan)
    if len(g) == 0:
        return out
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sw = np.add.reduceat(w, starts)
    swv = np.add.reduceat(w * v, starts)
    out[g[starts]] = swv / sw
    return out


def mean_position_vectors(group, ra, dec, weights, n):
    """Weighted mean positions per group as normalised weighted unit-vector sums."""
    v = _vec(ra, dec)
    comps = [group_weighted_mean(group, v[:, k], weights, n) for k in range(3)]
    s = np.stack(comps, axis=-1)
    s /= np.linalg.norm(s, axis=1, keepdims=True)
    return np.degrees(np.arctan2(s[:, 1], s[:, 0])) % 360, np.degrees(np.arcsin(s[:, 2]))
