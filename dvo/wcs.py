"""Minimal TAN (gnomonic) WCS on arrays: pixel -> sky for chip headers.

Only what addstar needs for a chip's footprint (centre and radius in Images): the FITS TAN
projection with LONPOLE 180 and a CD matrix. Vectorised; angles in degrees.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tan_pixel_to_sky"]


def tan_pixel_to_sky(
    x: np.ndarray,
    y: np.ndarray,
    crval: tuple[float, float],
    crpix: tuple[float, float],
    cd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Sky position of one-based FITS pixels (x, y) under a TAN WCS with CD matrix ``cd``."""
    dx, dy = np.asarray(x, np.float64) - crpix[0], np.asarray(y, np.float64) - crpix[1]
    xi = np.radians(cd[0, 0] * dx + cd[0, 1] * dy)
    eta = np.radians(cd[1, 0] * dx + cd[1, 1] * dy)
    ra0, dec0 = np.radians(crval[0]), np.radians(crval[1])
    den = np.cos(dec0) - eta * np.sin(dec0)
    ra = ra0 + np.arctan2(xi, den)
    dec = np.arctan2(np.sin(dec0) + eta * np.cos(dec0), np.hypot(xi, den))
    return np.degrees(ra) % 360.0, np.degrees(dec)
