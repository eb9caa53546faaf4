"""Numba kernels computing per-object averages from contiguous measurement ranges.

Inputs are plain arrays over the measurements of one partition, sorted so that object ``i``
owns rows ``off[i] .. off[i] + cnt[i] - 1``. Outputs are allocated by the caller.
"""

from __future__ import annotations

import numpy as np
from numba import njit

D2R = np.pi / 180.0


@njit(cache=True)
def mean_positions(off, cnt, ra, dec, sigma, use, out_ra, out_dec, out_err, out_chi, out_n):
    """Weighted mean position per object from measurements with ``use`` set.

    RA offsets are taken about the first used measurement, scaled by cos(dec), so objects
    across RA = 0 average correctly. ``sigma`` is the per-measurement error (arcsec).
    ``out_err`` is the error of the mean (arcsec), ``out_chi`` the reduced chi-square.
    """
    for i in range(off.shape[0]):
        s, e = off[i], off[i] + cnt[i]
        ref = -1
        for j in range(s, e):
            if use[j]:
                ref = j
                break
        if ref < 0:
            continue
        ra0, dec0 = ra[ref], dec[ref]
        cosd = np.cos(dec0 * D2R)
        sw = sx = sy = 0.0
        n = 0
        for j in range(s, e):
            if use[j]:
                w = 1.0 / (sigma[j] * sigma[j])
                dx = ((ra[j] - ra0 + 180.0) % 360.0 - 180.0) * cosd
                sw += w
                sx += w * dx
                sy += w * (dec[j] - dec0)
                n += 1
        mx, my = sx / sw, sy / sw
        chi = 0.0
        for j in range(s, e):
            if use[j]:
                w = 1.0 / (sigma[j] * sigma[j])
                dx = ((ra[j] - ra0 + 180.0) % 360.0 - 180.0) * cosd - mx
                dy = dec[j] - dec0 - my
                chi += w * (dx * dx + dy * dy) * 3600.0 * 3600.0
        out_dec[i] = dec0 + my
        out_ra[i] = (ra0 + mx / cosd) % 360.0 if cosd > 1e-12 else ra0
        out_err[i] = 1.0 / np.sqrt(sw)
        out_chi[i] = chi / (2.0 * (n - 1)) if n > 1 else np.nan
        out_n[i] = n


@njit(cache=True)
def mean_mags(
    off, cnt, slot, mag, err, use, nsec, floor, o_mean, o_err, o_std, o_min, o_max, o_chi, o_nused
):
    """Weighted mean magnitude per object and average filter (``nsec`` slots).

    Measurements with ``use`` set and a finite magnitude enter; weights ``1/max(err, floor)^2``.
    Outputs have shape (nobjects, nsec); untouched slots keep the caller's fill (NaN / 0).
    """
    sw = np.zeros(nsec)
    sm = np.zeros(nsec)
    cnts = np.zeros(nsec, np.int64)
    for i in range(off.shape[0]):
        s, e = off[i], off[i] + cnt[i]
        sw[:] = 0.0
        sm[:] = 0.0
        cnts[:] = 0
        for j in range(s, e):
            k = slot[j]
            if k < 0 or not use[j] or not np.isfinite(mag[j]):
                continue
            sig = err[j] if np.isfinite(err[j]) and err[j] > floor else floor
            w = 1.0 / (sig * sig)
            sw[k] += w
            sm[k] += w * mag[j]
            cnts[k] += 1
        for k in range(nsec):
            if cnts[k] == 0:
                continue
            o_mean[i, k] = sm[k] / sw[k]
            o_err[i, k] = 1.0 / np.sqrt(sw[k])
            o_nused[i, k] = cnts[k]
            o_chi[i, k] = 0.0
            o_std[i, k] = 0.0
            o_min[i, k] = np.inf
            o_max[i, k] = -np.inf
        for j in range(s, e):
            k = slot[j]
            if k < 0 or not use[j] or not np.isfinite(mag[j]):
                continue
            sig = err[j] if np.isfinite(err[j]) and err[j] > floor else floor
            d = mag[j] - o_mean[i, k]
            o_chi[i, k] += d * d / (sig * sig)
            o_std[i, k] += d * d
            o_min[i, k] = min(o_min[i, k], mag[j])
            o_max[i, k] = max(o_max[i, k], mag[j])
        for k in range(nsec):
            n = cnts[k]
            if n == 0:
                continue
            o_std[i, k] = np.sqrt(o_std[i, k] / (n - 1)) if n > 1 else np.nan
            o_chi[i, k] = o_chi[i, k] / (n - 1) if n > 1 else np.nan
