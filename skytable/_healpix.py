"""The HEALPix scheme: nested pixels as partitions, rows at depth k are pixels of order k.

There is no depth-0 "whole sky" row: the 12 base pixels are the roots (``parent = -1``).
Names follow the HATS/LSDB hive layout, ``Norder=<k>/Dir=<d>/Npix=<p>`` with
``d = (p // 10000) * 10000``. The stored bounds are an RA/Dec box enclosing the pixel
(padded by 2% of the pixel size); ``r_max`` may exceed 360 when a pixel crosses RA = 0,
meaning RA in ``[r_min, 360) U [0, r_max - 360)``. Point membership uses ``healpy.ang2pix``
(nested), so on pixel edges it follows healpy's convention.
"""

from __future__ import annotations

import healpy as hp
import numpy as np
from dvo.skytable._build import Columns, Level, assemble, join
from dvo.skytable.density import pixel_counts

from dvo.errors import SkyTableError

__all__ = ["build_healpix", "build_healpix_adaptive", "hpx_names", "MAX_ORDER"]

MAX_ORDER = 9
_PAD = 0.02
_CHUNK = 65536


def hpx_names(order: int, pix: np.ndarray) -> np.ndarray:
    """HATS-style names of pixels of one order.

    Examples
    --------
    >>> hpx_names(7, np.array([5, 123456])).tolist()
    ['Norder=7/Dir=0/Npix=5', 'Norder=7/Dir=120000/Npix=123456']
    """
    pix = np.asarray(pix, dtype=np.int64)
    d = (pix // 10000) * 10000
    return join(f"Norder={order}/Dir=", d.astype(str), "/Npix=", pix.astype(str))


def _bounds_chunk(nside: int, pix: np.ndarray) -> tuple[np.ndarray, ...]:
    vec = hp.boundaries(nside, pix, step=4, nest=True)  # (n, 3, 16)
    vec = vec.reshape(len(pix), 3, -1) if vec.ndim == 3 else vec[None]
    x, y, z = vec[:, 0], vec[:, 1], vec[:, 2]
    cra, cdec = hp.pix2ang(nside, pix, nest=True, lonlat=True)
    dec = np.degrees(np.arcsin(np.clip(z, -1.0, 1.0)))
    pole_n = np.any(z > 1 - 1e-12, axis=1)
    pole_s = np.any(z < -1 + 1e-12, axis=1)
    lon = np.degrees(np.arctan2(y, x))
    rel = np.mod(lon - cra[:, None] + 180.0, 360.0) - 180.0
    rel = np.where(np.abs(z) > 1 - 1e-12, 0.0, rel)  # the pole has no RA
    pad = _PAD * np.degrees(hp.nside2resol(nside))
    d_min = np.where(pole_s, -90.0, np.maximum(dec.min(axis=1) - pad, -90.0))
    d_max = np.where(pole_n, 90.0, np.minimum(dec.max(axis=1) + pad, 90.0))
    off_pole = np.where(np.abs(z) > 1 - 1e-12, 0.0, np.abs(dec))
    worst = np.cos(np.radians(np.minimum(off_pole.max(axis=1) + pad, 90.0)))
    rpad = np.where(worst > 1e-3, pad / np.maximum(worst, 1e-3), 360.0)
    lo = cra + rel.min(axis=1) - rpad
    width = rel.max(axis=1) - rel.min(axis=1) + 2 * rpad
    full = width >= 360.0
    r_min = np.where(full, 0.0, np.mod(lo, 360.0))
    r_max = np.where(full, 360.0, r_min + width)
    return r_min, r_max, d_min, d_max


def _level(order: int, pix: np.ndarray, parent: np.ndarray) -> Level:
    nside = 2**order
    parts = [_bounds_chunk(nside, pix[i : i + _CHUNK]) for i in range(0, len(pix), _CHUNK)]
    r_min, r_max, d_min, d_max = (np.concatenate([p[k] for p in parts]) for k in range(4))
    return Level(r_min, r_max, d_min, d_max, hpx_names(order, pix), parent, extra={"pix": pix})


def _check_order(order: int) -> None:
    if not (isinstance(order, int | np.integer) and 0 <= order <= MAX_ORDER):
        raise SkyTableError(f"HEALPix order must be an integer in 0..{MAX_ORDER}, got {order}")


def build_healpix(order: int) -> Columns:
    """All nested pixels of orders 0..``order``; tables at ``order``."""
    _check_order(order)
    levels = [_level(0, np.arange(12, dtype=np.int64), np.full(12, -1))]
    for k in range(1, order + 1):
        pix = np.arange(12 * 4**k, dtype=np.int64)
        levels.append(_level(k, pix, pix >> 2))
    return assemble(levels)


def build_healpix_adaptive(
    density: np.ndarray, max_count: float, max_order: int = MAX_ORDER
) -> Columns:
    """Pixels split into their 4 children while they expect more than ``max_count``."""
    if not max_count > 0:
        raise SkyTableError("max_per_partition must be positive")
    _check_order(max_order)
    pix = np.arange(12, dtype=np.int64)
    levels = [_level(0, pix, np.full(12, -1))]
    for k in range(1, max_order + 1):
        split = np.flatnonzero(pixel_counts(density, k - 1, pix) > max_count)
        if split.size == 0:
            break
        pix = (4 * pix[split][:, None] + np.arange(4)).ravel()
        levels.append(_level(k, pix, np.repeat(split, 4)))
    return assemble(levels)
