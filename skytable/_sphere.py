"""Spherical geometry on RA/Dec boxes, in NumPy (degrees in, unit vectors inside).

A *box* is RA in ``[r_min, r_max)`` taken modulo 360 (so ``r_max`` may exceed 360 when a
box crosses RA = 0, and ``r_max - r_min == 360`` is a full ring) and Dec in
``[d_min, d_max]``. The one primitive is :func:`box_max_dot`: the largest value of
``v . p`` over the points ``p`` of a box, which is exact, and from which the cone, polygon
and neighbour tests follow (``max v.p >= cos r`` iff the box comes within ``r`` of ``v``).
"""

from __future__ import annotations

import numpy as np

__all__ = ["radec_to_vec", "box_max_dot", "angular_distance", "box_area", "ra_in_interval"]


def radec_to_vec(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Unit vectors, shape ``(..., 3)``, of RA/Dec in degrees.

    Examples
    --------
    >>> radec_to_vec(np.array([90.0]), np.array([0.0])).round(12)
    array([[0., 1., 0.]])
    """
    a, d = np.radians(ra), np.radians(dec)
    cd = np.cos(d)
    return np.stack([cd * np.cos(a), cd * np.sin(a), np.sin(d)], axis=-1)


def angular_distance(ra1, dec1, ra2, dec2) -> np.ndarray:
    """Great-circle distance in degrees (haversine form, accurate at small separations).

    Examples
    --------
    >>> round(float(angular_distance(10.0, 0.0, 11.0, 0.0)), 12)
    1.0
    """
    a1, d1, a2, d2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (ra1, dec1, ra2, dec2))
    h = np.sin((d2 - d1) / 2) ** 2 + np.cos(d1) * np.cos(d2) * np.sin((a2 - a1) / 2) ** 2
    return np.degrees(2 * np.arcsin(np.sqrt(np.clip(h, 0.0, 1.0))))


def ra_in_interval(ra, r_min, width) -> np.ndarray:
    """Whether ``ra`` lies in the closed circular interval ``[r_min, r_min + width]``.

    Examples
    --------
    >>> ra_in_interval(np.array([1.0, 180.0]), 350.0, 20.0)
    array([ True, False])
    """
    return (np.mod(np.asarray(ra) - r_min, 360.0) <= width) | (width >= 360.0)


def box_max_dot(r_min, r_max, d_min, d_max, v: np.ndarray) -> np.ndarray:
    """Maximum of ``v . p`` over the points ``p`` of each box (exact).

    Parameters
    ----------
    r_min, r_max, d_min, d_max : array_like
        Box bounds in degrees (broadcast together).
    v : numpy.ndarray
        Vectors of shape ``(..., 3)`` broadcasting against the boxes (need not be unit).

    Returns
    -------
    numpy.ndarray
        ``max v.p``; for a unit ``v`` this is the cosine of the distance from ``v`` to the box.

    Examples
    --------
    >>> v = radec_to_vec(np.array(15.0), np.array(0.0))
    >>> float(np.degrees(np.arccos(box_max_dot(0.0, 10.0, -5.0, 5.0, v))).round(9))
    5.0
    """
    x, y, z = v[..., 0], v[..., 1], v[..., 2]
    a = np.hypot(x, y)
    phi = np.degrees(np.arctan2(y, x))
    width = np.asarray(r_max) - np.asarray(r_min)
    inside = ra_in_interval(phi, r_min, width)
    c_edge = np.maximum(np.cos(np.radians(r_min - phi)), np.cos(np.radians(r_max - phi)))
    b = a * np.where(inside, 1.0, c_edge)
    psi = np.degrees(np.arctan2(z, b))
    r = np.hypot(b, z)
    d1, d2 = np.radians(d_min), np.radians(d_max)
    ends = np.maximum(b * np.cos(d1) + z * np.sin(d1), b * np.cos(d2) + z * np.sin(d2))
    return np.where((psi >= d_min) & (psi <= d_max), r, ends)


def box_area(r_min, r_max, d_min, d_max) -> np.ndarray:
    """Area of RA/Dec boxes in square degrees.

    Examples
    --------
    >>> round(float(box_area(0.0, 360.0, -90.0, 90.0)), 3)
    41252.961
    """
    sd = np.sin(np.radians(d_max)) - np.sin(np.radians(d_min))
    return (np.asarray(r_max) - np.asarray(r_min)) * sd * (180.0 / np.pi)
