"""Numba kernels of relphot: one pass over the stars of a partition.

A "star" here is one object in one average filter: a run ``starts[s]:starts[s+1]`` of
measurements (sorted by object and filter). Every measurement k carries its magnitude
``y[k]`` (DVO PhotCat: MAG - 25 + 0.001 C_LAM + K (AIRMASS - 1)), its variance ``var[k]``
(measurement error and systematic floor in quadrature), its image row ``img[k]`` (-1 for a
reference measurement) and its flat-field column ``fcol[k]`` (-1 without a flat).

The model of a measurement is ``y = M_star + Z(image) + F[fcol]``, where ``Z`` is the image's
own zero-point column, or ``a_night + k_night (AIRMASS - 1)`` for images tied to their night.
Eliminating ``M_star`` (a Schur complement per star, as ubercal does) leaves the reduced normal
equations ``S theta = b`` over the image-level parameters, accumulated here into a dense ``S``.

No ``fastmath``: inputs may hold NaN in unused slots. Everything is float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

# indices into the ``opts`` array
O_ROBUST, O_CLIP, O_CAUCHY, O_STAR_CHI2, O_STAR_SCATTER = 0, 1, 2, 3, 4
O_BRIGHT_VAR, O_MAG_LO, O_BIN_WIDTH, O_ACCUMULATE, O_USE_REF, O_SYS_VAR = 5, 6, 7, 8, 9, 10
N_OPTS = 11
# columns of the per-image statistics
I_N, I_SW, I_SWR, I_SWR2, I_REF, I_CHI2, I_GRP = 0, 1, 2, 3, 4, 5, 6
N_ISTAT = 7
# counters
C_STARS, C_REJECTED, C_CLIPPED, C_MEASURES = 0, 1, 2, 3
N_COUNTS = 4


@njit(cache=True)
def model_zp(k, img, fcol, izcol, iacol, ikcol, ixam1, theta):
    """Model offset (zero point + flat) of measurement k under parameters theta."""
    j = img[k]
    z = 0.0
    if j >= 0:
        c = izcol[j]
        z = theta[c] if c >= 0 else theta[iacol[j]] + theta[ikcol[j]] * ixam1[j]
    f = fcol[k]
    if f >= 0:
        z += theta[f]
    return z


@njit(cache=True)
def star_weights(s0, s1, y, var, img, isref, ifit, z, opts, w0, w):
    """Fit weights of one star's measurements; returns (mean, W, n used, chi2/dof).

    ``w0`` gets the plain inverse-variance weights of measurements that may enter the star
    mean (images in the fit, reference measurements when pinning by REF); ``w`` the robust
    weights (Cauchy, with clipping beyond ``opts[O_CLIP]`` sigma) when ``opts[O_ROBUST]``.
    """
    sw = 0.0
    swy = 0.0
    for k in range(s0, s1):
        i = k - s0
        j = img[k]
        use = (j >= 0 and ifit[j]) or (j < 0 and isref[k] and opts[O_USE_REF] > 0)
        w0[i] = 1.0 / var[k] if use else 0.0
        sw += w0[i]
        swy += w0[i] * (y[k] - z[i])
    if sw <= 0.0:
        return np.nan, 0.0, 0, np.nan
    mean = swy / sw
    for k in range(s0, s1):
        w[k - s0] = w0[k - s0]
    if opts[O_ROBUST] > 0:
        for _ in range(2):
            sw = 0.0
            swy = 0.0
            for k in range(s0, s1):
                i = k - s0
                t = (y[k] - z[i] - mean) / np.sqrt(var[k])
                cut = abs(t) > opts[O_CLIP]
                w[i] = 0.0 if cut else w0[i] / (1.0 + (t / opts[O_CAUCHY]) ** 2)
                sw += w[i]
                swy += w[i] * (y[k] - z[i])
            if sw <= 0.0:
                return np.nan, 0.0, 0, np.nan
            mean = swy / sw
    n = 0
    chi = 0.0
    for k in range(s0, s1):
        i = k - s0
        if w[i] > 0.0:
            n += 1
            chi += w0[i] * (y[k] - z[i] - mean) ** 2
    chi2 = chi / (n - 1) if n > 1 else np.nan
    return mean, sw, n, chi2


@njit(cache=True)
def accumulate_star(s0, s1, y, img, fcol, izcol, iacol, ikcol, ixam1, w, wsum, S, b, cols, vals):
    """Add one star's Schur-complement contribution to ``S`` and ``b``.

    Only the upper triangle of ``S`` is accumulated (see :func:`symmetrize`); ``cols``/``vals``
    are scratch buffers of at least 3 entries per measurement.
    """
    e = 0
    swy = 0.0
    for k in range(s0, s1):
        wk = w[k - s0]
        if wk <= 0.0:
            continue
        swy += wk * y[k]
        e0 = e
        j = img[k]
        if j >= 0:
            if izcol[j] >= 0:
                cols[e] = izcol[j]
                vals[e] = 1.0
                e += 1
            else:
                cols[e] = iacol[j]
                vals[e] = 1.0
                cols[e + 1] = ikcol[j]
                vals[e + 1] = ixam1[j]
                e += 2
        if fcol[k] >= 0:
            cols[e] = fcol[k]
            vals[e] = 1.0
            e += 1
        for p in range(e0, e):
            b[cols[p]] += wk * vals[p] * y[k]
            for q in range(e0, e):
                if cols[p] <= cols[q]:
                    S[cols[p], cols[q]] += wk * vals[p] * vals[q]
        for p in range(e0, e):
            vals[p] *= wk
    mean_y = swy / wsum
    for p in range(e):
        b[cols[p]] -= vals[p] * mean_y
        up = vals[p] / wsum
        cp = cols[p]
        for q in range(e):
            if cp <= cols[q]:
                S[cp, cols[q]] -= up * vals[q]


@njit(cache=True)
def image_stats(s0, s1, y, var, img, ifit, z, mean, opts, istat, has_ref, grp):
    """Residual statistics per image at the current parameters (all images, fit or not).

    Images outside the fit are not clipped nor down-weighted: their offset from the model (a
    cloud under a night model) is what their statistics must measure. ``grp`` is the group of
    the star (from its images in the fit), kept as ``I_GRP`` + 1.
    """
    for k in range(s0, s1):
        j = img[k]
        if j < 0:
            continue
        r = y[k] - z[k - s0] - mean
        t = r / np.sqrt(var[k])
        robust = opts[O_ROBUST] > 0 and ifit[j]
        if robust and abs(t) > opts[O_CLIP]:
            continue
        wk = 1.0 / var[k]
        if robust:
            wk = wk / (1.0 + (t / opts[O_CAUCHY]) ** 2)
        istat[j, I_N] += 1.0
        istat[j, I_SW] += wk
        istat[j, I_SWR] += wk * r
        istat[j, I_SWR2] += wk * r * r
        istat[j, I_CHI2] += t * t
        if has_ref:
            istat[j, I_REF] = 1.0
        istat[j, I_GRP] = max(istat[j, I_GRP], grp + 1.0)


@njit(cache=True)
def repeatability(s0, s1, y, var, img, zst, z, w, mean, opts, rep):
    """Scatter of a star's measurements about its mean: raw, stored and new calibration.

    ``rep[kind, state, bin] += (sum r^2, n, expected sum r^2 from the errors)`` with states
    0 raw (no zero point), 1 as stored, 2 as solved; the bin is the star's magnitude; kind 0
    counts every star with 3 or more measurements, kind 1 only bright ones (rms error below
    ``sqrt(opts[O_BRIGHT_VAR])``).
    """
    nb = rep.shape[2]
    sw = 0.0
    svar = 0.0
    n = 0
    for k in range(s0, s1):
        if img[k] >= 0 and w[k - s0] > 0.0:
            sw += 1.0 / var[k]
            svar += var[k] - opts[O_SYS_VAR]
            n += 1
    if n < 3:
        return
    kinds = 2 if svar / n <= opts[O_BRIGHT_VAR] else 1
    ib = int((mean - opts[O_MAG_LO]) / opts[O_BIN_WIDTH])
    if ib < 0 or ib >= nb:
        return
    for state in range(3):
        swy = 0.0
        for k in range(s0, s1):
            if img[k] >= 0 and w[k - s0] > 0.0:
                off = 0.0 if state == 0 else (zst[k] if state == 1 else z[k - s0])
                swy += (y[k] - off) / var[k]
        m = swy / sw
        for k in range(s0, s1):
            if img[k] >= 0 and w[k - s0] > 0.0:
                off = 0.0 if state == 0 else (zst[k] if state == 1 else z[k - s0])
                wk = 1.0 / var[k]
                for kind in range(kinds):
                    rep[kind, state, ib, 0] += (y[k] - off - m) ** 2
                    rep[kind, state, ib, 1] += 1.0
                    rep[kind, state, ib, 2] += (var[k] - opts[O_SYS_VAR]) * (1.0 - wk / sw)


@njit(cache=True)
def residual_map(s0, s1, y, z, w, mean, mcol, rmap):
    """Weighted residual sums per camera map cell (``rmap[cell] += (sum w r, sum w)``)."""
    for k in range(s0, s1):
        c = mcol[k]
        wk = w[k - s0]
        if c >= 0 and wk > 0.0:
            rmap[c, 0] += wk * (y[k] - z[k - s0] - mean)
            rmap[c, 1] += wk


@njit(cache=True)
def partition_pass(
    starts, y, var, img, fcol, mcol, zst, isref,
    izcol, iacol, ikcol, ixam1, ifit, igroup, theta, opts,
    S, b, istat, rep, rmap, counts,
):  # fmt: skip
    """One partition: star means, robust weights, statistics and (optionally) normal equations.

    Parameters are described in the module docstring; outputs are added to in place.
    """
    nmax = 1
    for s in range(len(starts) - 1):
        nmax = max(nmax, starts[s + 1] - starts[s])
    w0 = np.empty(nmax)
    w = np.empty(nmax)
    z = np.empty(nmax)
    cols = np.empty(3 * nmax, np.int64)
    vals = np.empty(3 * nmax)
    for s in range(len(starts) - 1):
        s0, s1 = starts[s], starts[s + 1]
        for k in range(s0, s1):
            z[k - s0] = model_zp(k, img, fcol, izcol, iacol, ikcol, ixam1, theta)
        mean, wsum, n, chi2 = star_weights(s0, s1, y, var, img, isref, ifit, z, opts, w0, w)
        if n < 2:
            continue
        if opts[O_ROBUST] > 0:
            scatter = np.sqrt(chi2 * n / wsum) if wsum > 0 else np.inf
            if chi2 > opts[O_STAR_CHI2] or scatter > opts[O_STAR_SCATTER]:
                counts[C_REJECTED] += 1
                continue
        has_ref = False
        grp = -1
        for k in range(s0, s1):
            if img[k] >= 0 and w[k - s0] > 0.0:
                grp = max(grp, igroup[img[k]])
            if img[k] < 0 and w[k - s0] > 0.0:
                has_ref = True
            elif w0[k - s0] > 0.0 and w[k - s0] <= 0.0:
                counts[C_CLIPPED] += 1
        counts[C_STARS] += 1
        counts[C_MEASURES] += n
        image_stats(s0, s1, y, var, img, ifit, z, mean, opts, istat, has_ref, grp)
        repeatability(s0, s1, y, var, img, zst, z, w, mean, opts, rep)
        residual_map(s0, s1, y, z, w, mean, mcol, rmap)
        if opts[O_ACCUMULATE] > 0:
            accumulate_star(
                s0, s1, y, img, fcol, izcol, iacol, ikcol, ixam1, w, wsum, S, b, cols, vals
            )


@njit(cache=True)
def upper_nonzeros(S):
    """Row, column and value of the non-zero upper-triangle entries of ``S`` (row order)."""
    n = S.shape[0]
    nnz = 0
    for i in range(n):
        for j in range(i, n):
            if S[i, j] != 0.0:
                nnz += 1
    rows = np.empty(nnz, np.int64)
    cols = np.empty(nnz, np.int64)
    vals = np.empty(nnz)
    e = 0
    for i in range(n):
        for j in range(i, n):
            if S[i, j] != 0.0:
                rows[e] = i
                cols[e] = j
                vals[e] = S[i, j]
                e += 1
    return rows, cols, vals


@njit(cache=True)
def _csr_matvec(indptr, indices, data, x, out):
    for i in range(len(indptr) - 1):
        acc = 0.0
        for p in range(indptr[i], indptr[i + 1]):
            acc += data[p] * x[indices[p]]
        out[i] = acc


@njit(cache=True)
def _apply(a_ptr, a_idx, a_val, g_ptr, g_idx, g_val, lam, ridge, x, out, gx):
    """out = (A + lam G^T G + diag(ridge)) x for CSR A and CSR G."""
    _csr_matvec(a_ptr, a_idx, a_val, x, out)
    _csr_matvec(g_ptr, g_idx, g_val, x, gx)
    for r in range(len(g_ptr) - 1):
        for p in range(g_ptr[r], g_ptr[r + 1]):
            out[g_idx[p]] += lam * g_val[p] * gx[r]
    for i in range(len(x)):
        out[i] += ridge[i] * x[i]


@njit(cache=True)
def _dot(a, b):
    acc = 0.0
    for i in range(len(a)):
        acc += a[i] * b[i]
    return acc


@njit(cache=True)
def pcg(a_ptr, a_idx, a_val, g_ptr, g_idx, g_val, lam, ridge, pre, b, x, rtol, maxiter):
    """Jacobi-preconditioned conjugate gradients on ``A + lam G^T G + diag(ridge)``.

    ``x`` holds the starting point and receives the solution. Returns (iterations, relative
    residual). Plain loops, no BLAS: the machines are shared and BLAS threads oversubscribe.
    """
    n = len(b)
    r = np.empty(n)
    q = np.empty(n)
    gx = np.empty(len(g_ptr) - 1)
    _apply(a_ptr, a_idx, a_val, g_ptr, g_idx, g_val, lam, ridge, x, q, gx)
    bnorm = 0.0
    for i in range(n):
        r[i] = b[i] - q[i]
        bnorm += b[i] * b[i]
    bnorm = max(np.sqrt(bnorm), 1e-300)
    z = pre * r
    p = z.copy()
    rz = _dot(r, z)
    it = 0
    res = np.sqrt(_dot(r, r)) / bnorm
    while it < maxiter and res > rtol:
        _apply(a_ptr, a_idx, a_val, g_ptr, g_idx, g_val, lam, ridge, p, q, gx)
        alpha = rz / _dot(p, q)
        for i in range(n):
            x[i] += alpha * p[i]
            r[i] -= alpha * q[i]
            z[i] = pre[i] * r[i]
        rz_new = _dot(r, z)
        beta = rz_new / rz
        rz = rz_new
        for i in range(n):
            p[i] = z[i] + beta * p[i]
        res = np.sqrt(_dot(r, r)) / bnorm
        it += 1
    return it, res
