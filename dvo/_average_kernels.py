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
def store_mags(objs, off, cnt, slot, cal, err, use, floor, ncode, mean, merr, std, nused, extremes):
    """Mean magnitudes of objects ``objs`` written straight into their SecFilt rows.

    Object ``objs[i]`` owns measurement rows ``off[i] .. off[i] + cnt[i] - 1``. ``cal`` and
    ``err`` are (3, nrows): PSF, aperture and Kron calibrated magnitudes and errors.
    Measurements with ``use`` set and a finite magnitude enter with weights
    ``1/max(err, floor)^2``. Outputs are (nobjects, nsec) column views of SecFilt: ``ncode``,
    and per kind a tuple of three (``mean``, ``merr``, ``std``, ``nused``); ``extremes`` =
    (MAG_MIN, MAG_MAX, MAG_CHI) of the PSF kind. Sums run in float64; a slot without
    measurements gets NaN and zero counts. One pass over each object's SecFilt rows.
    """
    nsec = ncode.shape[1]
    nc = np.zeros(nsec, np.int64)
    sw = np.zeros((3, nsec))
    sm = np.zeros((3, nsec))
    cn = np.zeros((3, nsec), np.int64)
    mu = np.zeros((3, nsec))
    chi = np.zeros((3, nsec))
    sd = np.zeros((3, nsec))
    lo = np.zeros(nsec)
    hi = np.zeros(nsec)
    for i in range(objs.shape[0]):
        o, s, e = objs[i], off[i], off[i] + cnt[i]
        nc[:] = 0
        sw[:] = 0.0
        sm[:] = 0.0
        cn[:] = 0
        chi[:] = 0.0
        sd[:] = 0.0
        lo[:] = np.inf
        hi[:] = -np.inf
        for j in range(s, e):
            k = slot[j]
            if k < 0:
                continue
            nc[k] += 1
            if not use[j]:
                continue
            for q in range(3):
                x = cal[q, j]
                if not np.isfinite(x):
                    continue
                sig = err[q, j] if np.isfinite(err[q, j]) and err[q, j] > floor else floor
                w = 1.0 / (sig * sig)
                sw[q, k] += w
                sm[q, k] += w * x
                cn[q, k] += 1
        for q in range(3):
            for k in range(nsec):
                if cn[q, k] > 0:
                    mu[q, k] = sm[q, k] / sw[q, k]
        for j in range(s, e):
            k = slot[j]
            if k < 0 or not use[j]:
                continue
            for q in range(3):
                x = cal[q, j]
                if not np.isfinite(x):
                    continue
                sig = err[q, j] if np.isfinite(err[q, j]) and err[q, j] > floor else floor
                d = x - mu[q, k]
                chi[q, k] += d * d / (sig * sig)
                sd[q, k] += d * d
                if q == 0:
                    lo[k] = min(lo[k], x)
                    hi[k] = max(hi[k], x)
        for k in range(nsec):
            ncode[o, k] = nc[k]
            for q in range(3):
                n = cn[q, k]
                nused[q][o, k] = n
                if n == 0:
                    mean[q][o, k] = np.nan
                    merr[q][o, k] = np.nan
                    std[q][o, k] = np.nan
                else:
                    mean[q][o, k] = mu[q, k]
                    merr[q][o, k] = 1.0 / np.sqrt(sw[q, k])
                    std[q][o, k] = np.sqrt(sd[q, k] / (n - 1)) if n > 1 else np.nan
            n = cn[0, k]
            if n == 0:
                extremes[0][o, k] = np.nan
                extremes[1][o, k] = np.nan
                extremes[2][o, k] = np.nan
            else:
                extremes[0][o, k] = lo[k]
                extremes[1][o, k] = hi[k]
                extremes[2][o, k] = chi[0, k] / (n - 1) if n > 1 else np.nan
