"""Spherical geometry on arrays: unit vectors, the gnomonic (TAN) projection, caps, latitude.

The TAN projection here is the FITS one with the default LONPOLE = 180 deg, i.e. the standard
gnomonic projection about (ra0, dec0) with xi towards east and eta towards north, both in
degrees; a header WCS with CTYPE ``RA---TAN``/``DEC--TAN`` and CRVAL = (ra0, dec0) maps
intermediate world coordinates (xi, eta) to the same sky position.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "radec_to_vec",
    "vec_to_radec",
    "tangent_basis",
    "tan_project",
    "tan_deproject",
    "sample_cap",
    "galactic_latitude",
    "separation",
]

_D2R = np.pi / 180.0
#: North Galactic Pole in ICRS (deg).
NGP_RA, NGP_DEC = 192.85948, 27.12825


def radec_to_vec(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors, shape (n, 3), of positions in degrees."""
    a, d = np.radians(ra), np.radians(dec)
    cd = np.cos(d)
    return np.stack([cd * np.cos(a), cd * np.sin(a), np.sin(d)], axis=-1)


def vec_to_radec(v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) in degrees, ra in [0, 360), of vectors of any length, shape (n, 3)."""
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    ra = np.degrees(np.arctan2(y, x)) % 360.0
    dec = np.degrees(np.arctan2(z, np.hypot(x, y)))
    return ra, dec


def tangent_basis(ra: np.ndarray, dec: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors towards east and north at positions in degrees, each shape (n, 3)."""
    a, d = np.radians(ra), np.radians(dec)
    sa, ca, sd, cd = np.sin(a), np.cos(a), np.sin(d), np.cos(d)
    east = np.stack([-sa, ca, np.zeros_like(a)], axis=-1)
    north = np.stack([-sd * ca, -sd * sa, cd], axis=-1)
    return east, north


def tan_project(v: np.ndarray, ra0: float, dec0: float) -> tuple[np.ndarray, np.ndarray]:
    """Gnomonic projection of vectors (n, 3) about (ra0, dec0): (xi, eta) in degrees."""
    centre = radec_to_vec(np.array([ra0]), np.array([dec0]))[0]
    east, north = (b[0] for b in tangent_basis(np.array([ra0]), np.array([dec0])))
    den = v @ centre
    return np.degrees((v @ east) / den), np.degrees((v @ north) / den)


def tan_deproject(
    xi: np.ndarray, eta: np.ndarray, ra0: float, dec0: float
) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`tan_project`: (ra, dec) in degrees of (xi, eta) in degrees."""
    x, y = np.radians(xi), np.radians(eta)
    d0 = np.radians(dec0)
    s0, c0 = np.sin(d0), np.cos(d0)
    den = c0 - y * s0
    ra = (ra0 + np.degrees(np.arctan2(x, den))) % 360.0
    dec = np.degrees(np.arctan2(s0 + y * c0, np.hypot(x, den)))
    return ra, dec


def sample_cap(
    rng: np.random.Generator, n: int, ra0: float, dec0: float, radius: float
) -> np.ndarray:
    """n unit vectors uniform on the spherical cap of ``radius`` deg around (ra0, dec0)."""
    z = rng.uniform(np.cos(np.radians(radius)), 1.0, n)
    phi = rng.uniform(0.0, 2 * np.pi, n)
    r = np.sqrt(np.maximum(0.0, 1.0 - z * z))
    centre = radec_to_vec(np.array([ra0]), np.array([dec0]))[0]
    east, north = (b[0] for b in tangent_basis(np.array([ra0]), np.array([dec0])))
    return (
        z[:, None] * centre + (r * np.cos(phi))[:, None] * east + (r * np.sin(phi))[:, None] * north
    )


def cap_area(radius: float) -> float:
    """Area (deg^2) of a spherical cap of ``radius`` deg."""
    return 2 * np.pi * (1 - np.cos(np.radians(radius))) / _D2R**2


def galactic_latitude(v: np.ndarray) -> np.ndarray:
    """Galactic latitude b (deg) of unit vectors (n, 3)."""
    ngp = radec_to_vec(np.array([NGP_RA]), np.array([NGP_DEC]))[0]
    return np.degrees(np.arcsin(np.clip(v @ ngp, -1.0, 1.0)))


def separation(ra1: np.ndarray, dec1: np.ndarray, ra2: np.ndarray, dec2: np.ndarray) -> np.ndarray:
    """Angular separation (deg) between positions in degrees (broadcasting)."""
    v1, v2 = radec_to_vec(ra1, dec1), radec_to_vec(ra2, dec2)
    cross = np.linalg.norm(np.cross(v1, v2), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(v1 * v2, axis=-1)))
