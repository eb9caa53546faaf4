"""Minimal TAN (gnomonic) WCS on arrays: pixel <-> sky for chip headers.

Only what dvo needs for image footprints and astrometric fits: the FITS TAN projection with
LONPOLE 180 and an optional polynomial distortion of the intermediate coordinates. Everything
is vectorised; angles in degrees.
"""

from __future__ import annotations

import numpy as np

__all__ = ["tan_pixel_to_sky", "tan_sky_to_pixel", "angular_distance"]


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


def tan_sky_to_pixel(
    ra: np.ndarray,
    dec: np.ndarray,
    crval: tuple[float, float],
    crpix: tuple[float, float],
    cd: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One-based FITS pixel of sky positions under a TAN WCS (inverse of the above)."""
    a, d = np.radians(ra), np.radians(dec)
    a0, d0 = np.radians(crval[0]), np.radians(crval[1])
    cosc = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.degrees(np.cos(d) * np.sin(a - a0) / cosc)
    eta = np.degrees((np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cosc)
    inv = np.linalg.inv(cd)
    return crpix[0] + inv[0, 0] * xi + inv[0, 1] * eta, crpix[1] + inv[1, 0] * xi + inv[1, 1] * eta


def angular_distance(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance in degrees (haversine, accurate at all scales)."""
    r1, d1, r2, d2 = (np.radians(np.asarray(v, np.float64)) for v in (ra1, dec1, ra2, dec2))
    s = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((r2 - r1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(s, 0, 1))))
