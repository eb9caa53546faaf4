"""Numba kernels of the simulator: per-detection loops over plain arrays, no objects, no I/O.

The random numbers come in as arrays drawn by the Python layer (so results do not depend on
numba), and every kernel is the exact arithmetic documented in stars.py / exposure.py.
``fastmath`` is not used: inputs can hold NaN (spurious detections have no true position).
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["project_candidates", "measure", "interleave_words"]

_R2D = 180.0 / np.pi
_M2LN = -0.4 * np.log(10.0)  # 10**(-0.4 m) = exp(_M2LN m)


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
def measure(m0, chip, x, y, gauss, dist, cams, phot, grid, smooth):
    """Distortion, centroid and photometric noise, detection cuts, WCS: one pass per detection.

    Parameters
    ----------
    m0 : float64[n]
        Noise-free instrumental magnitude without the flat term.
    chip : int64[n]
        Chip index; x, y : float64[n] ideal zero-based pixels.
    gauss : float64[n, 3]
        Standard normal draws (xi noise, eta noise, magnitude noise).
    dist : float64[n_chips, 2, 10]
        Distortion coefficients (arcsec).
    cams : float64[n_chips + 2, 4]
        Rows 0..n_chips-1: zero-based boresight pixel (crpix0 x, y) and 0, 0; row n_chips:
        CD (deg/pixel) flattened; row n_chips + 1: inverse CD (pixel/arcsec) flattened.
    phot : float64[12]
        bkg (4 pi s^2 sky), phot_floor, centroid_k * FWHM, centroid_floor, snr_min, peak
        limit on counts (saturation * 2 pi s^2, inf for none), NX, NY, ra0, dec0, cells, and
        1 to cut on the noise-free S/N (else the measured one).
    grid : float64[n_chips, cells, cells]; smooth : float64[n_chips, 10]
        Flat field.

    Returns
    -------
    keep : int64[m]
        Input rows detected, and float64[10, m]: x, y (float32-rounded), ra, dec, mag,
        mag_sig, mag_true, flux, flux_sig, pos_sig of each kept row.
    """
    n = m0.shape[0]
    nc = dist.shape[0]
    keep = np.empty(n, np.int64)
    out = np.empty((10, n))
    bkg, floor, kf, cfloor, snr_min, peak = phot[0], phot[1], phot[2], phot[3], phot[4], phot[5]
    nx, ny, ra0, dec0, cells = phot[6], phot[7], phot[8], phot[9], int(phot[10])
    on_true = phot[11] != 0
    hx, hy = (nx - 1) / 2, (ny - 1) / 2
    sd0, cd0 = np.sin(dec0 / _R2D), np.cos(dec0 / _R2D)
    m = 0
    for k in range(n):
        c = chip[k]
        counts0 = np.exp(_M2LN * m0[k])
        snr0 = counts0 / np.sqrt(counts0 + bkg)
        q = kf / snr0
        sig_pos = np.sqrt(q * q + cfloor * cfloor)
        ox, oy = gauss[k, 0] * sig_pos, gauss[k, 1] * sig_pos
        xo, yo = x[k], y[k]
        for _ in range(3):
            u, v = (xo - hx) / hx, (yo - hy) / hy
            dxi = _poly(dist[c, 0], u, v) + ox
            deta = _poly(dist[c, 1], u, v) + oy
            xo = x[k] + cams[nc + 1, 0] * dxi + cams[nc + 1, 1] * deta
            yo = y[k] + cams[nc + 1, 2] * dxi + cams[nc + 1, 3] * deta
        xo = np.float64(np.float32(xo))
        yo = np.float64(np.float32(yo))
        if xo < 0 or xo > nx - 1 or yo < 0 or yo > ny - 1:
            continue
        u, v = (xo - hx) / hx, (yo - hy) / hy
        ix = min(max(int(np.floor((xo + 0.5) * cells / nx)), 0), cells - 1)
        iy = min(max(int(np.floor((yo + 0.5) * cells / ny)), 0), cells - 1)
        mag0 = m0[k] + grid[c, iy, ix] + _poly(smooth[c], u, v)
        counts = np.exp(_M2LN * mag0)
        sigma_f = np.sqrt(counts + bkg)
        q = 1.0857362047581294 * sigma_f / counts
        sigma_m = np.sqrt(q * q + floor * floor)
        mag = mag0 + gauss[k, 2] * sigma_m
        flux = np.exp(_M2LN * mag)
        snr = counts / sigma_f if on_true else flux / sigma_f
        if snr < snr_min or counts > peak:
            continue
        dx, dy = xo - cams[c, 0], yo - cams[c, 1]
        xi = (cams[nc, 0] * dx + cams[nc, 1] * dy) / _R2D
        eta = (cams[nc, 2] * dx + cams[nc, 3] * dy) / _R2D
        den = cd0 - eta * sd0
        ra = ra0 + np.arctan2(xi, den) * _R2D
        ra = ra % 360.0
        dec = np.arctan2(sd0 + eta * cd0, np.sqrt(xi * xi + den * den)) * _R2D
        keep[m] = k
        out[0, m], out[1, m], out[2, m], out[3, m], out[4, m] = xo, yo, ra, dec, mag
        out[5, m], out[6, m], out[7, m], out[8, m], out[9, m] = (
            sigma_m,
            mag0,
            flux,
            sigma_f,
            sig_pos,
        )
        m += 1
    return keep[:m], out[:, :m]


@njit(cache=True)
def interleave_words(out, template, words, cols):
    """Fill rows of 4-byte words: each row is ``template`` with ``cols[k]`` at word ``words[k]``.

    Parameters
    ----------
    out : uint32[n, n_words]
        Output rows (filled in place and returned).
    template : uint32[n_words]
        The words of one row holding every constant column.
    words : int64[k]
        Word index of each variable column word.
    cols : uint32[k, n]
        The variable words, already in file byte order.
    """
    n, nw = out.shape
    for i in range(n):
        for j in range(nw):
            out[i, j] = template[j]
        for k in range(words.shape[0]):
            out[i, words[k]] = cols[k, i]
    return out
