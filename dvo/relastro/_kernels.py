"""Numba kernels of relastro: per-object weighted least squares and per-chip normal equations.

Everything here works on flat arrays and scalars; the Python driver (``objects.py``,
``chips.py``) validates, allocates the outputs and iterates. No kernel uses ``fastmath``:
inputs may hold NaN for "not available" (reference motions).

Conventions: tangent-plane offsets ``xi`` (east) and ``eta`` (north) in arcsec from each
object's anchor position; times ``tau`` in Julian years from the object's reference epoch;
parallax factors ``pa``/``pd`` in arcsec per arcsec of parallax; object parameters
``(a, d, mu_a, mu_d, plx)`` in arcsec, arcsec/yr and arcsec.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "NPAR_MAX",
    "NTERM_MAX",
    "poly_terms",
    "chip_correction",
    "accumulate_chips",
    "fit_objects",
]

NPAR_MAX = 5
NTERM_MAX = 10
#: Exponents (i, j) of u**i v**j, by total degree (the simulator's camera TERMS order).
_TERM_I = np.array([0, 1, 0, 2, 1, 0, 3, 2, 1, 0], np.int64)
_TERM_J = np.array([0, 0, 1, 0, 1, 2, 0, 1, 2, 3], np.int64)


@njit(cache=True)
def poly_terms(u: float, v: float, out: np.ndarray) -> None:
    """Fill ``out[:10]`` with the monomials u**i v**j of total degree <= 3."""
    out[0] = 1.0
    out[1] = u
    out[2] = v
    out[3] = u * u
    out[4] = u * v
    out[5] = v * v
    out[6] = u * u * u
    out[7] = u * u * v
    out[8] = u * v * v
    out[9] = v * v * v


@njit(cache=True, nogil=True)
def chip_correction(chip, u, v, coeff, out_x, out_y) -> None:
    """Correction (arcsec east, north) of each measure from its chip's polynomial.

    ``coeff`` has shape (n_chips, 2, 10); rows with ``chip < 0`` get 0.
    """
    b = np.empty(NTERM_MAX)
    for i in range(chip.shape[0]):
        c = chip[i]
        if c < 0:
            out_x[i] = 0.0
            out_y[i] = 0.0
            continue
        poly_terms(u[i], v[i], b)
        sx = 0.0
        sy = 0.0
        for k in range(NTERM_MAX):
            sx += coeff[c, 0, k] * b[k]
            sy += coeff[c, 1, k] * b[k]
        out_x[i] = sx
        out_y[i] = sy


@njit(cache=True, nogil=True)
def accumulate_chips(chip, u, v, rx, ry, wx, wy, use, ata, atb) -> None:
    """Add each used measure's weighted polynomial normal equations to its chip.

    ``ata`` (n_chips, 2, 10, 10) and ``atb`` (n_chips, 2, 10) accumulate, per axis, the terms
    of fitting the correction ``r`` (arcsec) as a polynomial in (u, v).
    """
    b = np.empty(NTERM_MAX)
    for i in range(chip.shape[0]):
        c = chip[i]
        if c < 0 or not use[i]:
            continue
        poly_terms(u[i], v[i], b)
        for k in range(NTERM_MAX):
            atb[c, 0, k] += wx[i] * b[k] * rx[i]
            atb[c, 1, k] += wy[i] * b[k] * ry[i]
            for m in range(k, NTERM_MAX):
                ata[c, 0, k, m] += wx[i] * b[k] * b[m]
                ata[c, 1, k, m] += wy[i] * b[k] * b[m]


@njit(cache=True)
def _cholesky_solve(n, rhs, npar: int, x: np.ndarray, var: np.ndarray, full: np.ndarray):
    """Solve the leading npar x npar block; fill x, the inverse (full) and its diagonal (var).

    Returns False when the block is not positive definite.
    """
    low = np.zeros((npar, npar))
    for i in range(npar):
        for j in range(i + 1):
            s = n[i, j]
            for k in range(j):
                s -= low[i, k] * low[j, k]
            if i == j:
                if s <= 0.0:
                    return False
                low[i, i] = np.sqrt(s)
            else:
                low[i, j] = s / low[j, j]
    inv = np.zeros((npar, npar))
    for col in range(npar):
        y = np.zeros(npar)
        for i in range(npar):
            s = 1.0 if i == col else 0.0
            for k in range(i):
                s -= low[i, k] * y[k]
            y[i] = s / low[i, i]
        for i in range(npar - 1, -1, -1):
            s = y[i]
            for k in range(i + 1, npar):
                s -= low[k, i] * inv[k, col]
            inv[i, col] = s / low[i, i]
    full[:, :] = 0.0
    full[:npar, :npar] = inv
    for i in range(NPAR_MAX):
        x[i] = 0.0
        var[i] = 0.0
    for i in range(npar):
        s = 0.0
        for k in range(npar):
            s += inv[i, k] * rhs[k]
        x[i] = s
        var[i] = inv[i, i]
    return True


@njit(cache=True)
def _normal(lo, hi, tau, xi, eta, sx, sy, pa, pd, used, ref, npar, n, rhs) -> None:
    """Normal equations of one object: its used measures plus its reference row, if any.

    ``ref`` = (tau, xi, eta, sigma, pm_a, pm_d, sig_pm_a, sig_pm_d, plx, sig_plx); NaN
    sigma means "no such constraint". Without fitted motion (npar < 4) the reference position
    is moved to the object's epoch with the reference proper motion, when it has one.
    """
    n[:, :] = 0.0
    rhs[:] = 0.0
    g = np.zeros(NPAR_MAX)
    for i in range(lo, hi):
        if not used[i]:
            continue
        for axis in range(2):
            g[:] = 0.0
            if axis == 0:
                g[0], g[2], g[4], w, y = 1.0, tau[i], pa[i], 1.0 / sx[i] ** 2, xi[i]
            else:
                g[1], g[3], g[4], w, y = 1.0, tau[i], pd[i], 1.0 / sy[i] ** 2, eta[i]
            for k in range(NPAR_MAX):
                rhs[k] += w * g[k] * y
                for m in range(NPAR_MAX):
                    n[k, m] += w * g[k] * g[m]
    if ref[3] > 0.0:
        w = 1.0 / ref[3] ** 2
        for axis in range(2):
            y = ref[1 + axis]
            if npar < 4 and ref[6 + axis] > 0.0:
                y -= ref[4 + axis] * ref[0]
            n[axis, axis] += w
            n[axis, 2 + axis] += w * ref[0]
            n[2 + axis, axis] += w * ref[0]
            n[2 + axis, 2 + axis] += w * ref[0] ** 2
            rhs[axis] += w * y
            rhs[2 + axis] += w * ref[0] * y
    for axis in range(2):
        s = ref[6 + axis]
        if s > 0.0:
            n[2 + axis, 2 + axis] += 1.0 / s**2
            rhs[2 + axis] += ref[4 + axis] / s**2
    if ref[9] > 0.0:
        n[4, 4] += 1.0 / ref[9] ** 2
        rhs[4] += ref[8] / ref[9] ** 2


@njit(cache=True)
def _clip(lo, hi, tau, xi, eta, sx, sy, pa, pd, p, nsigma, used) -> tuple:
    """Mark measures beyond nsigma (either axis) unused; returns (changed, chi2, n_used)."""
    changed = False
    chi2 = 0.0
    nused = 0
    for i in range(lo, hi):
        rx = (xi[i] - p[0] - p[2] * tau[i] - p[4] * pa[i]) / sx[i]
        ry = (eta[i] - p[1] - p[3] * tau[i] - p[4] * pd[i]) / sy[i]
        ok = abs(rx) <= nsigma and abs(ry) <= nsigma
        if nsigma <= 0.0:
            ok = used[i]
        if ok != used[i]:
            changed = True
            used[i] = ok
        if ok:
            chi2 += rx * rx + ry * ry
            nused += 1
    return changed, chi2, nused


@njit(cache=True, nogil=True)
def fit_objects(
    off, cnt, tau, xi, eta, sx, sy, pa, pd, ref, npar, nsigma, npass, used, params, var, chi2, nfit
) -> None:
    """Weighted least-squares position (+ proper motion (+ parallax)) of every object.

    Parameters
    ----------
    off, cnt : int64 arrays (n_obj,)
        Each object's measures are rows ``off[k] : off[k] + cnt[k]`` of the per-measure arrays.
    tau, xi, eta, sx, sy, pa, pd : float64 arrays (n_meas,)
        Epoch (yr), offsets (arcsec), per-axis errors (arcsec), parallax factors.
    ref : float64 (n_obj, 10)
        Reference constraints per object (see ``_normal``); sigma <= 0 or NaN: none.
    npar : int64 (n_obj,)
        2, 4 or 5 parameters (position, + proper motion, + parallax); 0 skips the object.
    nsigma : float
        Clipping threshold per axis; <= 0 disables clipping.
    npass : int
        Maximum fit-and-clip passes.
    used : bool (n_meas,)
        In: measures allowed; out: measures kept.
    params, var : float64 (n_obj, 5)
        Out: the parameters and the diagonal of their covariance (NaN when not fitted).
    chi2 : float64 (n_obj,)
        Out: chi-square of the kept measures.
    nfit : int64 (n_obj,)
        Out: number of kept measures.
    """
    n = np.zeros((NPAR_MAX, NPAR_MAX))
    rhs = np.zeros(NPAR_MAX)
    x = np.zeros(NPAR_MAX)
    v = np.zeros(NPAR_MAX)
    full = np.zeros((NPAR_MAX, NPAR_MAX))
    for k in range(off.shape[0]):
        lo = off[k]
        hi = lo + cnt[k]
        params[k, :] = np.nan
        var[k, :] = np.nan
        chi2[k] = np.nan
        nfit[k] = 0
        if npar[k] <= 0:
            continue
        for _ in range(npass):
            _normal(lo, hi, tau, xi, eta, sx, sy, pa, pd, used, ref[k], npar[k], n, rhs)
            if not _cholesky_solve(n, rhs, npar[k], x, v, full):
                break
            params[k, :] = x
            var[k, :] = v
            changed, c2, nu = _clip(lo, hi, tau, xi, eta, sx, sy, pa, pd, x, nsigma, used)
            chi2[k] = c2
            nfit[k] = nu
            if not changed or 2 * nu < npar[k] + 1:
                break
