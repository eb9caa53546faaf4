"""The magnitude convention's two forms (numpy arrays, numba scalar) give the same floats."""

from __future__ import annotations

import numpy as np
from numba import njit

from dvo.photometry import calibrated_mag, calibrated_value


@njit
def _each(mag, c_lam, k, airmass, mcal, mflat):
    out = np.empty(mag.shape[0])
    for i in range(mag.shape[0]):
        out[i] = calibrated_value(mag[i], c_lam[i], k[i], airmass[i], mcal[i], mflat[i])
    return out


def test_scalar_form_equals_array_form(rng):
    n = 20_000
    mag = rng.uniform(10, 40, n).astype(np.float32)
    c_lam = rng.integers(20000, 30000, n).astype(np.float32)
    k = rng.uniform(-0.3, 0.0, n).astype(np.float32)
    airmass = rng.uniform(1.0, 2.5, n).astype(np.float32)
    mcal = rng.normal(0, 0.5, n).astype(np.float32)
    mflat = rng.normal(0, 0.02, n).astype(np.float32)
    for a, special in ((mcal, np.nan), (mflat, np.nan), (mflat, np.inf), (mcal, -np.inf)):
        a[rng.integers(0, n, 500)] = special
    mag[rng.integers(0, n, 100)] = np.nan
    want = calibrated_mag(mag, c_lam, k, airmass, mcal, mflat)
    got = _each(mag, c_lam, k, airmass, mcal, mflat)
    assert np.array_equal(got, want, equal_nan=True)
    assert np.isnan(got).sum() >= 90 and np.isfinite(got).sum() > n // 2
