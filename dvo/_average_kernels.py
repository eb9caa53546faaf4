"""Numba kernels computing per-object averages, written straight into Average and SecFilt.

Measurements are read in place: object ``objs[i]`` owns rows ``rows[off[i]:off[i + 1]]`` (in
Measure order) of tables given as tuples of columns, and the outputs are column views of
the Average and SecFilt rows, so each object's rows are visited once, without gathers.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dvo._assoc_kernels import mod360
from dvo.photometry import calibrated_value

D2R = np.pi / 180.0


@njit(cache=True, inline="always")
def _position_inputs(m, r):
    """Row ``r`` of the position columns ``m`` (see :func:`store_positions`)."""
    return m[0][r], m[1][r], m[2][r], m[3][r], m[4][r], m[5][r], m[6][r], m[7][r]


@njit(cache=True)
def store_positions(
    objs, off, rows, split, a, b, is_dep, sys_err, skip, keep_flag, default_err, out
):
    """Mean position, its error, chi-square, count and epoch statistics of objects ``objs``,
    written into their Average rows.

    Object ``objs[i]`` owns measurements ``rows[off[i] .. off[i+1] - 1]`` (in Measure order);
    row ``r`` is row ``r`` of table ``a`` if ``r < split``, else row ``r - split`` of ``b``.
    ``a`` and ``b`` are tuples of columns (RA, DEC, X_CCD_ERR, Y_CCD_ERR, PLTSCALE, PHOTCODE,
    DB_FLAGS, TIME); ``is_dep`` and ``sys_err`` are indexed by photcode. A measurement's error
    is its centroid error (``X/Y_CCD_ERR * PLTSCALE``, non-finite as 0) added in quadrature to
    its photcode's systematic error, ``default_err`` where that is not positive and finite.
    DEP measurements without ``skip`` in DB_FLAGS are used, REF ones only where an object has
    none. RA offsets are taken about the first used measurement, scaled by cos(dec), so that
    objects across RA = 0 average correctly. ``out`` = Average columns (RA, DEC, RA_ERR,
    DEC_ERR, CHISQ_POS, NUMBER_POS, MEAN_EPOCH, TIME_RANGE, FLAGS); objects with ``keep_flag``
    set in FLAGS, or without a usable measurement, are left as they are.
    """
    o_ra, o_dec, o_rerr, o_derr, o_chi, o_n, o_epoch, o_range, o_flags = out
    big = np.finfo(np.float64).max
    most = 0
    for i in range(objs.shape[0]):
        most = max(most, off[i + 1] - off[i])
    x = np.empty(most)
    y = np.empty(most)
    sig = np.empty(most)
    t = np.empty(most)
    use = np.empty(most, np.bool_)
    dep = np.empty(most, np.bool_)
    for i in range(objs.shape[0]):
        o = objs[i]
        if o_flags[o] & keep_flag:
            continue
        s, e = off[i], off[i + 1]
        any_dep = False
        for j in range(s, e):
            r, q = rows[j], j - s
            x[q], y[q], xe, ye, ps, code, flags, t[q] = (
                _position_inputs(a, r) if r < split else _position_inputs(b, r - split)
            )
            c = 0.005 * (np.float64(xe) + ye) * np.float64(ps)
            if np.isnan(c):
                c = 0.0
            elif np.isinf(c):
                c = big if c > 0 else -big
            g = np.hypot(c, sys_err[code])
            sig[q] = g if np.isfinite(g) and g > 0 else default_err
            use[q] = (flags & skip) == 0
            dep[q] = is_dep[code]
            any_dep = any_dep or (use[q] and dep[q])
        ref = -1
        for q in range(e - s):
            use[q] = use[q] and (dep[q] or not any_dep)
            if use[q] and ref < 0:
                ref = q
        if ref < 0:
            continue
        ra0, dec0 = x[ref], y[ref]
        cosd = np.cos(dec0 * D2R)
        sw = sx = sy = st = 0.0
        n = 0
        tmin, tmax = np.inf, -np.inf
        for q in range(e - s):
            if use[q]:
                w = 1.0 / (sig[q] * sig[q])
                dx = (mod360(x[q] - ra0 + 180.0) - 180.0) * cosd
                sw += w
                sx += w * dx
                sy += w * (y[q] - dec0)
                n += 1
                st += t[q]
                tmin = min(tmin, t[q])
                tmax = max(tmax, t[q])
        mx, my = sx / sw, sy / sw
        chi = 0.0
        for q in range(e - s):
            if use[q]:
                w = 1.0 / (sig[q] * sig[q])
                dx = (mod360(x[q] - ra0 + 180.0) - 180.0) * cosd - mx
                dy = y[q] - dec0 - my
                chi += w * (dx * dx + dy * dy) * 3600.0 * 3600.0
        o_dec[o] = dec0 + my
        o_ra[o] = mod360(ra0 + mx / cosd) if cosd > 1e-12 else ra0
        err = 1.0 / np.sqrt(sw)
        o_rerr[o] = err
        o_derr[o] = err
        o_chi[o] = chi / (2.0 * (n - 1)) if n > 1 else np.nan
        o_n[o] = n
        o_epoch[o] = np.int32(np.rint(st / n))
        o_range[o] = np.int32(tmax - tmin)


@njit(cache=True)
def store_mags(objs, off, rows, m, slot_of, is_dep, c_lam, k, skip, floor, ncode, kinds, extremes):
    """Mean magnitudes of objects ``objs`` written straight into their SecFilt rows.

    Object ``objs[i]`` owns measurements ``rows[off[i] .. off[i+1] - 1]`` of table ``m``, a
    tuple of columns (PHOTCODE, DB_FLAGS, AIRMASS, M_FLAT, MCAL_PSF, MCAL_APER, MAG,
    MAG_ERR, M_APER, M_APER_ERR, M_KRON, M_KRON_ERR); ``slot_of``, ``is_dep``, ``c_lam`` and
    ``k`` are indexed by photcode. Per average filter (slot), the calibrated magnitudes
    (:func:`dvo.photometry.calibrated_value`) of DEP measurements without ``skip`` in
    DB_FLAGS enter (REF ones where a slot has none), finite ones only, with weights
    ``1/max(err, floor)^2``; sums run in float64. Outputs are (nobjects, nsec) column views
    of SecFilt: ``ncode`` (measurements per slot), per kind (PSF, aperture, Kron) in
    ``kinds`` the mean, its error, the stdev and the count used, and ``extremes`` = MAG_MIN,
    MAG_MAX, MAG_CHI of the PSF kind. A slot without measurements gets NaN and zero counts.
    """
    nsec = ncode.shape[1]
    most = 0
    for i in range(objs.shape[0]):
        most = max(most, off[i + 1] - off[i])
    slot = np.empty(most, np.int64)
    usable = np.empty(most, np.bool_)
    dep = np.empty(most, np.bool_)
    cal = np.empty((3, most))
    err = np.empty((3, most))
    nc = np.zeros(nsec, np.int64)
    has_dep = np.zeros(nsec, np.bool_)
    sw = np.zeros((3, nsec))
    sm = np.zeros((3, nsec))
    cn = np.zeros((3, nsec), np.int64)
    mu = np.zeros((3, nsec))
    chi = np.zeros((3, nsec))
    sd = np.zeros((3, nsec))
    lo = np.zeros(nsec)
    hi = np.zeros(nsec)
    for i in range(objs.shape[0]):
        o, s, e = objs[i], off[i], off[i + 1]
        nc[:] = 0
        has_dep[:] = False
        sw[:] = 0.0
        sm[:] = 0.0
        cn[:] = 0
        chi[:] = 0.0
        sd[:] = 0.0
        lo[:] = np.inf
        hi[:] = -np.inf
        for j in range(s, e):
            r, q = rows[j], j - s
            code = m[0][r]
            kk = slot_of[code]
            slot[q] = kk
            if kk < 0:
                continue
            nc[kk] += 1
            usable[q] = (m[1][r] & skip) == 0
            dep[q] = is_dep[code]
            if usable[q] and dep[q]:
                has_dep[kk] = True
            airmass, flat = m[2][r], m[3][r]
            cal[0, q] = calibrated_value(m[6][r], c_lam[code], k[code], airmass, m[4][r], flat)
            cal[1, q] = calibrated_value(m[8][r], c_lam[code], k[code], airmass, m[5][r], flat)
            cal[2, q] = calibrated_value(m[10][r], c_lam[code], k[code], airmass, m[5][r], flat)
            err[0, q] = m[7][r]
            err[1, q] = m[9][r]
            err[2, q] = m[11][r]
        for q in range(e - s):
            kk = slot[q]
            if kk < 0 or not usable[q] or not (dep[q] or not has_dep[kk]):
                slot[q] = -1  # not used from here on
                continue
            for p in range(3):
                x = cal[p, q]
                if not np.isfinite(x):
                    continue
                g = err[p, q] if np.isfinite(err[p, q]) and err[p, q] > floor else floor
                w = 1.0 / (g * g)
                sw[p, kk] += w
                sm[p, kk] += w * x
                cn[p, kk] += 1
        for p in range(3):
            for kk in range(nsec):
                if cn[p, kk] > 0:
                    mu[p, kk] = sm[p, kk] / sw[p, kk]
        for q in range(e - s):
            kk = slot[q]
            if kk < 0:
                continue
            for p in range(3):
                x = cal[p, q]
                if not np.isfinite(x):
                    continue
                g = err[p, q] if np.isfinite(err[p, q]) and err[p, q] > floor else floor
                d = x - mu[p, kk]
                chi[p, kk] += d * d / (g * g)
                sd[p, kk] += d * d
                if p == 0:
                    lo[kk] = min(lo[kk], x)
                    hi[kk] = max(hi[kk], x)
        for kk in range(nsec):
            ncode[o, kk] = nc[kk]
            for p in range(3):
                mean, merr, std, nused = kinds[p]
                n = cn[p, kk]
                nused[o, kk] = n
                if n == 0:
                    mean[o, kk] = np.nan
                    merr[o, kk] = np.nan
                    std[o, kk] = np.nan
                else:
                    mean[o, kk] = mu[p, kk]
                    merr[o, kk] = 1.0 / np.sqrt(sw[p, kk])
                    std[o, kk] = np.sqrt(sd[p, kk] / (n - 1)) if n > 1 else np.nan
            n = cn[0, kk]
            if n == 0:
                extremes[0][o, kk] = np.nan
                extremes[1][o, kk] = np.nan
                extremes[2][o, kk] = np.nan
            else:
                extremes[0][o, kk] = lo[kk]
                extremes[1][o, kk] = hi[kk]
                extremes[2][o, kk] = chi[0, kk] / (n - 1) if n > 1 else np.nan
