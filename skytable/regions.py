"""Sky regions: cone, RA/Dec box, convex spherical polygon, whole sky.

Each region is a frozen dataclass validated in ``__post_init__`` with two methods:

- ``contains(ra, dec)``: exact geometry on points (degrees, closed boundaries), the fine
  row filter of a query;
- ``touches_boxes(r_min, r_max, d_min, d_max)``: the coarse partition filter. It never
  answers False for a box the region touches; it is exact for cones and boxes and may
  answer True for a few boxes near a polygon's vertices.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from dvo.skytable._sphere import angular_distance, box_max_dot, ra_in_interval, radec_to_vec

from dvo.errors import SkyTableError

__all__ = ["Region", "Cone", "Box", "Polygon", "AllSky"]

_EPS = 1e-12  # slack on dot products so that touching counts as touching


def _check_finite(name: str, *values: float) -> None:
    if not np.all(np.isfinite(np.asarray(values, dtype=np.float64))):
        raise SkyTableError(f"{name}: coordinates must be finite numbers")


def _check_dec(name: str, *decs: float) -> None:
    d = np.asarray(decs, dtype=np.float64)
    if np.any((d < -90.0) | (d > 90.0)):
        raise SkyTableError(f"{name}: dec must lie in [-90, 90], got {d[(d < -90) | (d > 90)][0]}")


def _as_points(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64)


class Region:
    """Base class of regions (the interface, and isinstance checks)."""

    def contains(self, ra, dec) -> np.ndarray:  # pragma: no cover - interface
        """Whether each point (degrees) lies in the region, boundaries included.

        Examples
        --------
        >>> Cone(0.0, 0.0, 1.0).contains([0.5], [0.0])
        array([ True])
        """
        raise NotImplementedError

    def touches_boxes(self, r_min, r_max, d_min, d_max) -> np.ndarray:  # pragma: no cover
        """Whether the region may touch each RA/Dec box; never False for a touched box.

        Examples
        --------
        >>> Cone(0.0, 0.0, 1.0).touches_boxes(np.array([0.5, 10.0]), np.array([2.0, 20.0]),
        ...                                   np.array([-1.0, -1.0]), np.array([1.0, 1.0]))
        array([ True, False])
        """
        raise NotImplementedError


@dataclass(frozen=True)
class AllSky(Region):
    """The whole sky.

    Examples
    --------
    >>> AllSky().contains([0.0, 10.0], [90.0, -90.0])
    array([ True,  True])
    """

    def contains(self, ra, dec) -> np.ndarray:
        ra, dec = _as_points(ra, dec)
        return np.ones(np.broadcast(ra, dec).shape, dtype=bool)

    def touches_boxes(self, r_min, r_max, d_min, d_max) -> np.ndarray:
        return np.ones(np.broadcast(r_min, d_min).shape, dtype=bool)


@dataclass(frozen=True)
class Cone(Region):
    """Points within ``radius`` degrees of (``ra``, ``dec``); radius in [0, 180].

    Examples
    --------
    >>> Cone(10.0, 20.0, 1.0).contains([10.0, 10.0], [20.5, 21.5])
    array([ True, False])
    """

    ra: float
    dec: float
    radius: float

    def __post_init__(self) -> None:
        _check_finite("Cone", self.ra, self.dec, self.radius)
        _check_dec("Cone", self.dec)
        if not 0.0 <= self.radius <= 180.0:
            raise SkyTableError(f"Cone: radius must lie in [0, 180] deg, got {self.radius}")

    def contains(self, ra, dec) -> np.ndarray:
        ra, dec = _as_points(ra, dec)
        return angular_distance(self.ra, self.dec, ra, dec) <= self.radius

    def touches_boxes(self, r_min, r_max, d_min, d_max) -> np.ndarray:
        v = radec_to_vec(np.asarray(self.ra), np.asarray(self.dec))
        return box_max_dot(r_min, r_max, d_min, d_max, v) >= np.cos(np.radians(self.radius)) - _EPS


@dataclass(frozen=True)
class Box(Region):
    """RA in [ra_min, ra_max] and Dec in [dec_min, dec_max] (closed), degrees.

    ``ra_min > ra_max`` means the box crosses RA = 0; ``(0, 360)`` is a full ring.

    Examples
    --------
    >>> Box(350.0, 10.0, -5.0, 5.0).contains([355.0, 5.0, 180.0], [0.0, 0.0, 0.0])
    array([ True,  True, False])
    """

    ra_min: float
    ra_max: float
    dec_min: float
    dec_max: float

    def __post_init__(self) -> None:
        _check_finite("Box", self.ra_min, self.ra_max, self.dec_min, self.dec_max)
        _check_dec("Box", self.dec_min, self.dec_max)
        if not (0.0 <= self.ra_min <= 360.0 and 0.0 <= self.ra_max <= 360.0):
            raise SkyTableError("Box: ra_min and ra_max must lie in [0, 360]")
        if self.dec_min > self.dec_max:
            raise SkyTableError("Box: dec_min must not exceed dec_max")

    @property
    def ra_width(self) -> float:
        """RA extent in degrees, counting across RA = 0 when ``ra_min > ra_max``."""
        return (
            self.ra_max - self.ra_min
            if self.ra_min <= self.ra_max
            else 360 - self.ra_min + self.ra_max
        )

    def contains(self, ra, dec) -> np.ndarray:
        ra, dec = _as_points(ra, dec)
        in_ra = ra_in_interval(np.mod(ra, 360.0), self.ra_min, self.ra_width)
        return in_ra & (dec >= self.dec_min) & (dec <= self.dec_max)

    def touches_boxes(self, r_min, r_max, d_min, d_max) -> np.ndarray:
        r_min, r_max = np.asarray(r_min, dtype=np.float64), np.asarray(r_max, dtype=np.float64)
        width = r_max - r_min
        ra_overlap = ra_in_interval(self.ra_min, r_min, width) | ra_in_interval(
            r_min, self.ra_min, self.ra_width
        )
        return (
            ra_overlap & (np.asarray(d_max) >= self.dec_min) & (np.asarray(d_min) <= self.dec_max)
        )


@dataclass(frozen=True)
class Polygon(Region):
    """Convex spherical polygon with great-circle edges; vertices in degrees, either order.

    Examples
    --------
    >>> p = Polygon([0.0, 10.0, 10.0, 0.0], [0.0, 0.0, 10.0, 10.0])
    >>> p.contains([5.0, 15.0], [5.0, 5.0])
    array([ True, False])
    """

    ra: tuple[float, ...]
    dec: tuple[float, ...]
    _normals: np.ndarray = field(init=False, repr=False, compare=False)
    _cap: Cone = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        ra = tuple(float(x) for x in np.atleast_1d(np.asarray(self.ra, dtype=np.float64)))
        dec = tuple(float(x) for x in np.atleast_1d(np.asarray(self.dec, dtype=np.float64)))
        object.__setattr__(self, "ra", ra)
        object.__setattr__(self, "dec", dec)
        if len(ra) != len(dec) or len(ra) < 3:
            raise SkyTableError("Polygon: need at least 3 vertices with as many ra as dec")
        _check_finite("Polygon", *ra, *dec)
        _check_dec("Polygon", *dec)
        object.__setattr__(self, "_normals", _convex_normals(np.array(ra), np.array(dec)))
        object.__setattr__(self, "_cap", _bounding_cap(np.array(ra), np.array(dec)))

    def contains(self, ra, dec) -> np.ndarray:
        ra, dec = _as_points(ra, dec)
        p = radec_to_vec(ra, dec)
        return np.all(p @ self._normals.T >= -_EPS, axis=-1)

    def touches_boxes(self, r_min, r_max, d_min, d_max) -> np.ndarray:
        ok = self._cap.touches_boxes(r_min, r_max, d_min, d_max)  # trims boxes near vertices
        for n in self._normals:  # a few edges; each test is exact for its own half-sphere
            ok &= box_max_dot(r_min, r_max, d_min, d_max, n) >= -_EPS
        return ok


def _bounding_cap(ra: np.ndarray, dec: np.ndarray) -> Cone:
    """A cap holding every vertex, hence (caps under 90 deg being convex) the polygon."""
    centre = radec_to_vec(ra, dec).sum(axis=0)
    norm = np.linalg.norm(centre)
    if norm < 1e-9:
        return Cone(0.0, 0.0, 180.0)
    c = centre / norm
    cra = float(np.degrees(np.arctan2(c[1], c[0])) % 360.0)
    cdec = float(np.degrees(np.arcsin(np.clip(c[2], -1, 1))))
    radius = float(angular_distance(cra, cdec, ra, dec).max()) * (1 + 1e-9) + 1e-9
    return Cone(cra, cdec, radius if radius < 90.0 else 180.0)


def _convex_normals(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Inward unit normals of the edges of a convex polygon, or SkyTableError."""
    v = radec_to_vec(ra, dec)
    n = np.cross(v, np.roll(v, -1, axis=0))
    norm = np.linalg.norm(n, axis=1)
    if np.any(norm < 1e-12):
        raise SkyTableError("Polygon: repeated or antipodal consecutive vertices")
    n /= norm[:, None]
    side = v @ n.T  # side[j, i]: vertex j against edge i (0 by construction for its ends)
    k = len(v)
    own = (np.arange(k)[:, None] == np.arange(k)[None, :]) | (
        np.arange(k)[:, None] == (np.arange(k)[None, :] + 1) % k
    )
    side = np.where(own, 0.0, side)
    if np.all(side >= -1e-12):
        return n
    if np.all(side <= 1e-12):
        return -n
    raise SkyTableError("Polygon: vertices do not form a convex polygon")
