"""The chip correction model and the geometry relastro works in.

Chip correction
---------------
A chip image's correction is a polynomial in normalised chip coordinates
``u = (X_CCD - (NX-1)/2) / ((NX-1)/2)`` (``v`` likewise with Y_CCD and NY), per axis, giving
an offset in arcsec east (``xi``) and north (``eta``) that is *added* to the position the chip
WCS stored in Images gives for (X_CCD + 1, Y_CCD + 1)::

    corrected = WCS(X_CCD, Y_CCD) + sum_k c[axis, k] u**i_k v**j_k

with the 10 monomials of total degree <= 3 in :data:`TERMS` order. The order follows the
original's star-count rule (:func:`order_for_count`), capped by the caller's ``order_max``.

Geometry
--------
Objects are fitted in the gnomonic tangent plane at an anchor position (the object's Average
position when relastro starts); offsets in arcsec.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "TERMS",
    "ORDER_MAX",
    "nterms",
    "order_for_count",
    "chip_uv",
    "pixel_to_sky",
    "sky_to_offsets",
    "offsets_to_sky",
]

TERMS = np.array(
    [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3)], np.int64
)
ORDER_MAX = 3
#: (minimum stars, order) of DVO's FitChip rule, beyond order 3 capped by ORDER_MAX.
_ORDER_RULE = ((64, 3), (25, 2), (6, 1), (1, 0))
ARCSEC = 3600.0


def nterms(order: np.ndarray | int) -> np.ndarray:
    """Number of polynomial terms of a given total order (1, 3, 6, 10; 0 for order < 0)."""
    order = np.asarray(order, np.int64)
    return np.where(order >= 0, (order + 1) * (order + 2) // 2, 0)


def order_for_count(nstar: np.ndarray, order_max: int = ORDER_MAX) -> np.ndarray:
    """Polynomial order per chip from its number of fitted stars (-1: too few to fit).

    DVO's rule: more than 5 stars -> 1, more than 24 -> 2, more than 63 -> 3 (and 4..6 above
    128, 225, 360, which the 10-term model here caps at 3). One star gives an offset only.

    Examples
    --------
    >>> order_for_count(np.array([0, 1, 6, 25, 64, 1000]), 3).tolist()
    [-1, 0, 1, 2, 3, 3]
    """
    nstar = np.asarray(nstar, np.int64)
    out = np.full(nstar.shape, -1, np.int64)
    for minimum, order in reversed(_ORDER_RULE):
        out[nstar >= minimum] = order
    return np.minimum(out, min(int(order_max), ORDER_MAX))


def chip_uv(x: np.ndarray, y: np.ndarray, nx: np.ndarray, ny: np.ndarray):
    """Normalised chip coordinates (u, v) of zero-based pixels on chips of size (nx, ny)."""
    hx = (np.asarray(nx, np.float64) - 1.0) / 2.0
    hy = (np.asarray(ny, np.float64) - 1.0) / 2.0
    return (x - hx) / hx, (y - hy) / hy


def pixel_to_sky(x, y, crval1, crval2, crpix1, crpix2, cd):
    """RA/Dec (deg) of zero-based pixels under per-row TAN WCS (cd: (n, 2, 2) deg/pixel)."""
    dx = np.asarray(x, np.float64) + 1.0 - crpix1
    dy = np.asarray(y, np.float64) + 1.0 - crpix2
    xi = np.radians(cd[:, 0, 0] * dx + cd[:, 0, 1] * dy)
    eta = np.radians(cd[:, 1, 0] * dx + cd[:, 1, 1] * dy)
    return _deproject(xi, eta, crval1, crval2)


def _deproject(xi, eta, ra0, dec0):
    a0, d0 = np.radians(ra0), np.radians(dec0)
    den = np.cos(d0) - eta * np.sin(d0)
    ra = a0 + np.arctan2(xi, den)
    dec = np.arctan2(np.sin(d0) + eta * np.cos(d0), np.hypot(xi, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)


def sky_to_offsets(ra, dec, ra0, dec0):
    """Gnomonic offsets (xi east, eta north; arcsec) of (ra, dec) from (ra0, dec0)."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(ra0), np.radians(dec0)
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cosc
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc
    return np.degrees(xi) * ARCSEC, np.degrees(eta) * ARCSEC


def offsets_to_sky(xi, eta, ra0, dec0):
    """Inverse of :func:`sky_to_offsets`."""
    return _deproject(np.radians(xi / ARCSEC), np.radians(eta / ARCSEC), ra0, dec0)
