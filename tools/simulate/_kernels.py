"""Numba kernels of the simulator: per-detection loops over plain arrays, no objects, no I/O.

The random numbers come in as arrays drawn by the Python layer (so results do not depend on
numba), and every kernel is the exact arithmetic documented in stars.py / exposure.py.
``fastmath`` is not used: inputs can hold NaN (spurious detections have no true position).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["project_candidates", "observe_pixels"]

_R2D = 180.0 / np.pi


@njit(cache=True)
def project_candidates(
    cand, p, east, north, pm, plx, dt_mas, earth, basis, cos_r, cdinv, geom, lut, live
):
    """Apparent positions of candidate stars, projected onto the chips of one exposure.

    Parameters
    ----------
    cand : int64[n]
        Row numbers of candidate stars.
    p, east, north : float64[N, 3]
        Unit vector and east/north vectors of every star at the reference epoch.
    pm : float64[N, 2]
        Proper motion (mas/yr, ra*cos(dec) and dec); plx : float64[N] parallax (mas).
    dt_mas : float
        Years since the reference epoch times one mas in radians.
    earth : float64[3]
        Barycentric position of the Earth (au).
    basis : float64[3, 3]
        Rows: boresight unit vector, its east and north vectors.
    cos_r : float
        Cosine of the field radius.
    cdinv : float64[2, 2]
        Inverse CD matrix (pixel per deg).
    geom : float64[4]
        PITCH_X, PITCH_Y, (CHIP_NX - 1)/2, (CHIP_NY - 1)/2.
    lut : int64[8, 8]
        Chip index of (cx, cy), -1 where not in use; live : bool[n_chips].

    Returns
    -------
    idx, chip, x, y, ra, dec : arrays of the stars that land on a live chip
        Star row, chip index, ideal zero-based pixel, apparent position (deg).
    """
    n = cand.shape[0]
    out_i = np.empty(n, np.int64)
    out_c = np.empty(n, np.int64)
    out_xy = np.empty((n, 2))
    out_rd = np.empty((n, 2))
    m = 0
    for k in range(n):
        i = cand[k]
        pe = p[i, 0] * earth[0] + p[i, 1] * earth[1] + p[i, 2] * earth[2]
        f = plx[i] * 4.84813681109536e-09
        a0 = pm[i, 0]
        a1 = pm[i, 1]
        u0 = p[i, 0] + dt_mas * (a0 * east[i, 0] + a1 * north[i, 0]) - f * (earth[0] - pe * p[i, 0])
        u1 = p[i, 1] + dt_mas * (a0 * east[i, 1] + a1 * north[i, 1]) - f * (earth[1] - pe * p[i, 1])
        u2 = p[i, 2] + dt_mas * (a0 * east[i, 2] + a1 * north[i, 2]) - f * (earth[2] - pe * p[i, 2])
        norm = np.sqrt(u0 * u0 + u1 * u1 + u2 * u2)
        d = (u0 * basis[0, 0] + u1 * basis[0, 1] + u2 * basis[0, 2]) / norm
        if d < cos_r:
            continue
        xi = (u0 * basis[1, 0] + u1 * basis[1, 1] + u2 * basis[1, 2]) / norm / d * _R2D
        eta = (u0 * basis[2, 0] + u1 * basis[2, 1] + u2 * basis[2, 2]) / norm / d * _R2D
        L = cdinv[0, 0] * xi + cdinv[0, 1] * eta
        M = cdinv[1, 0] * xi + cdinv[1, 1] * eta
        cx = int(np.floor(L / geom[0] + 4.0))
        cy = int(np.floor(M / geom[1] + 4.0))
        if cx < 0 or cx > 7 or cy < 0 or cy > 7:
            continue
        c = lut[cx, cy]
        if c < 0 or not live[c]:
            continue
        out_i[m] = i
        out_c[m] = c
        out_xy[m, 0] = L - (cx - 3.5) * geom[0] + geom[2]
        out_xy[m, 1] = M - (cy - 3.5) * geom[1] + geom[3]
        ra = np.arctan2(u1, u0) * _R2D
        out_rd[m, 0] = ra + 360.0 if ra < 0 else ra
        out_rd[m, 1] = np.arctan2(u2, np.sqrt(u0 * u0 + u1 * u1)) * _R2D
        m += 1
    return out_i[:m], out_c[:m], out_xy[:m, 0], out_xy[:m, 1], out_rd[:m, 0], out_rd[:m, 1]


@njit(cache=True)
def _poly(c, u, v):
    """Sum of c[k] u**i v**j over the 10 monomials of camera.TERMS."""
    return (
        c[0]
        + c[1] * u
        + c[2] * v
        + c[3] * u * u
        + c[4] * u * v
        + c[5] * v * v
        + c[6] * u * u * u
        + c[7] * u * u * v
        + c[8] * u * v * v
        + c[9] * v * v * v
    )


@njit(cache=True)
def observe_pixels(x, y, chip, dist, offset, cdinv_arcsec, hx, hy, n_iter):
    """Measured pixels: solve ``p = ideal + CDinv (D(u(p), v(p)) + offset)`` by iteration.

    Parameters
    ----------
    x, y : float64[n]
        Ideal zero-based pixels; chip : int64[n] chip index.
    dist : float64[n_chips, 2, 10]
        Distortion coefficients (arcsec) of the exposure's images.
    offset : float64[n, 2]
        Extra tangent-plane offset (noise), arcsec.
    cdinv_arcsec : float64[2, 2]
        Inverse CD matrix in pixel per arcsec.
    hx, hy : float
        (CHIP_NX - 1)/2 and (CHIP_NY - 1)/2.
    n_iter : int
        Fixed-point iterations (4 reach float64 precision for sub-arcsec distortions).
    """
    n = x.shape[0]
    xo = x.copy()
    yo = y.copy()
    for k in range(n):
        c = chip[k]
        for _ in range(n_iter):
            u = (xo[k] - hx) / hx
            v = (yo[k] - hy) / hy
            dxi = _poly(dist[c, 0], u, v) + offset[k, 0]
            deta = _poly(dist[c, 1], u, v) + offset[k, 1]
            xo[k] = x[k] + cdinv_arcsec[0, 0] * dxi + cdinv_arcsec[0, 1] * deta
            yo[k] = y[k] + cdinv_arcsec[1, 0] * dxi + cdinv_arcsec[1, 1] * deta
    return xo, yo
