"""Parallax factors from the Earth's barycentric position (astropy), once per distinct time.

An object at parallax ``plx`` appears displaced by ``plx * (pa, pd)`` (east, north) with::

    pa = X sin(ra) - Y cos(ra)
    pd = X cos(ra) sin(dec) + Y sin(ra) sin(dec) - Z cos(dec)

where (X, Y, Z) is the barycentric position of the Earth in au (ICRS), the convention of the
simulator (``tools/simulate/stars.py``) and of Gaia.
"""

from __future__ import annotations

import numpy as np

__all__ = ["earth_positions", "parallax_factors"]


def earth_positions(mjd: np.ndarray) -> np.ndarray:
    """Barycentric Earth positions (n, 3) in au at UTC MJDs, computed once per distinct MJD.

    Examples
    --------
    >>> e = earth_positions(np.array([57000.0, 57000.0]))
    >>> e.shape, bool(0.98 < np.linalg.norm(e[0]) < 1.02)
    ((2, 3), True)
    """
    from astropy import units as u
    from astropy.coordinates import get_body_barycentric
    from astropy.time import Time

    mjd = np.asarray(mjd, np.float64)
    out = np.full((len(mjd), 3), np.nan)
    ok = np.isfinite(mjd)
    if not ok.any():
        return out
    uniq, inverse = np.unique(mjd[ok], return_inverse=True)
    pos = get_body_barycentric("earth", Time(uniq, format="mjd", scale="utc"))
    xyz = np.stack([pos.x.to_value(u.au), pos.y.to_value(u.au), pos.z.to_value(u.au)], axis=1)
    out[ok] = xyz[inverse]
    return out


def parallax_factors(ra: np.ndarray, dec: np.ndarray, earth: np.ndarray):
    """(pa, pd) per row for objects at (ra, dec) deg observed with Earth at ``earth`` (n, 3)."""
    a, d = np.radians(ra), np.radians(dec)
    x, y, z = earth[:, 0], earth[:, 1], earth[:, 2]
    pa = x * np.sin(a) - y * np.cos(a)
    pd = x * np.cos(a) * np.sin(d) + y * np.sin(a) * np.sin(d) - z * np.cos(d)
    return pa, pd
