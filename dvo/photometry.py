"""The DVO magnitude convention, in exactly one place.

addstar stores ``MAG = PSF_INST_MAG + 2.5 log10(EXPTIME) + ZERO_POINT`` (ZERO_POINT = 25) for a
detection, and a reference catalogue's magnitude as ``mag + ZERO_POINT``. The calibrated
(relative) magnitude of a measurement is then, as DVO's PhotRel::

    MAG - 25 + 0.001 * C_LAM + K * (AIRMASS - 1) - MCAL - M_FLAT

with the photcode's ``C_LAM`` (millimag) and ``K`` (mag/airmass); a NaN ``M_FLAT`` counts as 0.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["ZERO_POINT", "stored_mag", "calibrated_mag", "calibrated_value"]

ZERO_POINT = 25.0


def stored_mag(inst_mag: np.ndarray, exptime: float | np.ndarray) -> np.ndarray:
    """Measure.MAG from a psphot instrumental magnitude and the exposure time (s)."""
    return (np.asarray(inst_mag, np.float64) + 2.5 * np.log10(exptime) + ZERO_POINT).astype(
        np.float32
    )


def calibrated_mag(
    mag: np.ndarray,
    c_lam: np.ndarray,
    k: np.ndarray,
    airmass: np.ndarray,
    mcal: np.ndarray,
    mflat: np.ndarray,
) -> np.ndarray:
    """Calibrated magnitude of measurements (float64), DVO's PhotRel without colour terms.

    Parameters
    ----------
    mag : array
        Measure.MAG (instrumental + 2.5 log10 exptime + 25).
    c_lam, k : array
        The photcode's zero point (millimag) and airmass slope (mag/airmass).
    airmass, mcal, mflat : array
        Measure.AIRMASS, Measure.MCAL_PSF (or MCAL_APER) and Measure.M_FLAT.

    Examples
    --------
    >>> float(calibrated_mag(40.0, 24563, -0.147, 1.0, 0.0, np.nan))
    39.563
    """
    flat = np.nan_to_num(np.asarray(mflat, np.float64), nan=0.0)
    mcal = np.nan_to_num(np.asarray(mcal, np.float64), nan=0.0)
    return (
        np.asarray(mag, np.float64)
        - ZERO_POINT
        + 0.001 * np.asarray(c_lam, np.float64)
        + np.asarray(k, np.float64) * (np.asarray(airmass, np.float64) - 1.0)
        - mcal
        - flat
    )


_BIG = float(np.finfo(np.float64).max)


@njit(cache=True)
def calibrated_value(mag, c_lam, k, airmass, mcal, mflat) -> float:
    """:func:`calibrated_mag` of one measurement, for numba kernels: the same operations in
    the same order, so the same float64 (tests compare the two)."""
    f = np.float64(mflat)
    c = np.float64(mcal)
    if np.isnan(f):
        f = 0.0
    elif np.isinf(f):
        f = _BIG if f > 0 else -_BIG
    if np.isnan(c):
        c = 0.0
    elif np.isinf(c):
        c = _BIG if c > 0 else -_BIG
    return (
        np.float64(mag)
        - ZERO_POINT
        + 0.001 * np.float64(c_lam)
        + np.float64(k) * (np.float64(airmass) - 1.0)
        - c
        - f
    )
