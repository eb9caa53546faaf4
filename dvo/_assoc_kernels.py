"""Numba kernels for association: nearest object within a radius, by declination zones.

Objects are sorted by (zone, RA) with zone height equal to the radius, so the candidates of a
detection lie in three zones and, in each, in one RA window found by binary search (two
windows where it crosses RA = 0; the whole zone near the poles). Distances are haversine.
No objects, no I/O: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
from numba import njit

D2R = np.pi / 180.0


@njit(cache=True)
def _hav(ra1, dec1, ra2, dec2):
    """Haversine of the angular distance (monotonic in distance), inputs in radians."""
    s1 = np.sin(0.5 * (dec2 - dec1))
    s2 = np.sin(0.5 * (ra2 - ra1))
    return s1 * s1 + np.cos(dec1) * np.cos(dec2) * s2 * s2


@njit(cache=True)
def _scan(ra_s, dec_s, lo, hi, qra, qdec, best_h, best_j):
    """Closest of sorted objects lo..hi-1 to the query (radians); returns updated best."""
    for j in range(lo, hi):
        h = _hav(qra, qdec, ra_s[j] * D2R, dec_s[j] * D2R)
        if h < best_h:
            best_h = h
            best_j = j
    return best_h, best_j


@njit(cache=True)
def nearest_within(q_ra, q_dec, ra_s, dec_s, starts, zmin, height, radius):
    """For each query, the index (into the sorted arrays) of the closest object within
    ``radius`` degrees, or -1; and the haversine of that distance.

    ``starts[z - zmin] .. starts[z - zmin + 1]`` are the sorted rows of zone ``z`` (zones of
    ``height`` degrees counted from dec = -90), RA ascending within a zone.
    """
    n = q_ra.shape[0]
    nz = starts.shape[0] - 1
    out = np.full(n, -1, np.int64)
    out_h = np.full(n, np.inf)
    limit = np.sin(0.5 * radius * D2R) ** 2
    for i in range(n):
        qra, qdec = q_ra[i], q_dec[i]
        z = int(np.floor((qdec + 90.0) / height))
        top = min(abs(qdec) + radius, 90.0)
        whole = top >= 89.9 or radius >= 30.0
        dra = 180.0 if whole else radius / np.cos(top * D2R) + 1e-9
        best_h, best_j = limit * (1 + 1e-12), -1
        for zz in range(z - 1, z + 2):
            k = zz - zmin
            if k < 0 or k >= nz:
                continue
            s, e = starts[k], starts[k + 1]
            if s == e:
                continue
            if whole or dra >= 180.0:
                best_h, best_j = _scan(ra_s, dec_s, s, e, qra * D2R, qdec * D2R, best_h, best_j)
                continue
            lo_ra, hi_ra = qra - dra, qra + dra
            windows = (
                (lo_ra, hi_ra),
                (lo_ra + 360.0, hi_ra + 360.0),
                (lo_ra - 360.0, hi_ra - 360.0),
            )
            for w in windows:
                a = max(w[0], 0.0)
                b = min(w[1], 360.0)
                if a > b:
                    continue
                lo = s + np.searchsorted(ra_s[s:e], a, side="left")
                hi = s + np.searchsorted(ra_s[s:e], b, side="right")
                best_h, best_j = _scan(ra_s, dec_s, lo, hi, qra * D2R, qdec * D2R, best_h, best_j)
        if best_j >= 0:
            out[i] = best_j
            out_h[i] = best_h
    return out, out_h
