"""Star-count density maps (HEALPix, nested) and expected counts in boxes and pixels.

The bundled default is an analytic model of Galactic star counts to the Guide Star
Catalog depth (V ~ 15), computed on demand (no data file), so it can be read in full here:

    n(l, b) = n0 * (1 + A * exp(-|b| / H)) * (1 + C * exp(-(l'^2 / (2 SL^2) + b^2 / (2 SB^2))))

an exponential disc seen from inside (plane-to-pole contrast 1 + A) and a Gaussian bulge
towards the Galactic centre (l' = l wrapped to [-180, 180)). The parameters
(:data:`MODEL`) are round numbers of the size seen in bright star counts (Bahcall &
Soneira 1980: about 10x more stars per square degree in the plane than at the poles at
V ~ 15, with a further rise towards the bulge); ``n0`` is set so the whole sky holds
:data:`GSC_TOTAL_STARS`, the number of stars of GSC 1.1. User maps are any nested HEALPix
arrays of expected counts per pixel (any nside).
"""

from __future__ import annotations

import functools

import healpy as hp
import numpy as np
from dvo.skytable._sphere import box_area, radec_to_vec

from dvo.errors import SkyTableError

__all__ = [
    "MODEL",
    "GSC_TOTAL_STARS",
    "default_density",
    "galactic",
    "model_density",
    "check_density",
    "box_counts",
    "pixel_counts",
    "read_density",
]

GSC_TOTAL_STARS = 15_000_000
MODEL = {"A": 9.0, "H": 12.0, "C": 2.0, "SL": 20.0, "SB": 8.0}
DEFAULT_NSIDE = 64


def model_density(ra, dec, model: dict | None = None) -> np.ndarray:
    """Relative star density of the analytic model at (ra, dec) in degrees (n0 = 1).

    Examples
    --------
    >>> bool(model_density(266.4, -28.9) > 10 * model_density(192.86, 27.13))  # GC vs NGP
    True
    """
    m = MODEL if model is None else model
    lon, lat = galactic(ra, dec)
    lon = (lon + 180.0) % 360.0 - 180.0
    disc = 1.0 + m["A"] * np.exp(-np.abs(lat) / m["H"])
    bulge = 1.0 + m["C"] * np.exp(-(lon**2) / (2 * m["SL"] ** 2) - lat**2 / (2 * m["SB"] ** 2))
    return disc * bulge


# ICRS (J2000) to Galactic rotation (Hipparcos definition, as in astropy)
_TO_GAL = np.array(
    [
        [-0.0548755604162154, -0.8734370902348850, -0.4838350155487132],
        [0.4941094278755837, -0.4448296299600112, 0.7469822444972189],
        [-0.8676661490190047, -0.1980763734312015, 0.4559837761750669],
    ]
)


def galactic(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Galactic (l, b) in degrees of ICRS (ra, dec) in degrees.

    Examples
    --------
    >>> [round(float(x), 2) for x in galactic(192.85948, 27.12825)][1]
    90.0
    """
    v = radec_to_vec(np.asarray(ra, dtype=np.float64), np.asarray(dec, dtype=np.float64))
    g = v @ _TO_GAL.T
    lon = np.degrees(np.arctan2(g[..., 1], g[..., 0])) % 360.0
    return lon, np.degrees(np.arcsin(np.clip(g[..., 2], -1.0, 1.0)))


@functools.lru_cache(maxsize=1)
def _default_map() -> np.ndarray:
    npix = hp.nside2npix(DEFAULT_NSIDE)
    ra, dec = hp.pix2ang(DEFAULT_NSIDE, np.arange(npix), nest=True, lonlat=True)
    rel = model_density(ra, dec)
    out = (rel * (GSC_TOTAL_STARS / rel.sum())).astype(np.float64)
    out.setflags(write=False)
    return out


def default_density() -> np.ndarray:
    """The bundled default map: nested HEALPix nside 64, expected GSC stars per pixel.

    Examples
    --------
    >>> m = default_density()
    >>> len(m), round(float(m.sum()))
    (49152, 15000000)
    """
    return _default_map()


def check_density(density) -> np.ndarray:
    """Validate a nested HEALPix count map; returns it as float64.

    Raises
    ------
    SkyTableError
        If the length is not 12 * nside**2, or values are negative or not finite.
    """
    m = np.asarray(density, dtype=np.float64)
    if m.ndim != 1 or not hp.isnpixok(m.size):
        raise SkyTableError(f"density map: length {m.size} is not a HEALPix 12*nside^2")
    if not np.all(np.isfinite(m)) or np.any(m < 0):
        raise SkyTableError("density map: values must be finite and non-negative")
    return m


def box_counts(density: np.ndarray, r_min, r_max, d_min, d_max) -> np.ndarray:
    """Expected counts in RA/Dec boxes: area times the mean density over an equal-area grid.

    Each box gets m x m samples, m = 2 * ceil(sqrt(box area / map pixel area)) clipped to
    2..24, so large boxes see every pixel and small ones still get 4 samples; a box's
    count depends only on the box (not on the other boxes of the call).

    Examples
    --------
    >>> m = default_density()
    >>> c = box_counts(m, np.array([0.0]), np.array([360.0]), np.array([-90.0]), np.array([90.0]))
    >>> bool(abs(c[0] / m.sum() - 1) < 0.01)
    True
    """
    r_min, r_max, d_min, d_max = (
        np.asarray(x, dtype=np.float64) for x in (r_min, r_max, d_min, d_max)
    )
    nside = hp.npix2nside(density.size)
    pix_area = hp.nside2pixarea(nside, degrees=True)
    area = box_area(r_min, r_max, d_min, d_max)
    steps = np.clip(2 * np.ceil(np.sqrt(area / pix_area)), 2, 24).astype(np.int64)
    out = np.zeros(area.shape)
    for m in np.unique(steps):  # a few sampling densities
        sel = np.flatnonzero(steps == m)
        mean = _mean_density(density, nside, r_min[sel], r_max[sel], d_min[sel], d_max[sel], int(m))
        out[sel] = mean / pix_area * area[sel]
    return out


def _mean_density(density, nside, r_min, r_max, d_min, d_max, m: int) -> np.ndarray:
    u = (np.arange(m) + 0.5) / m
    s0, s1 = np.sin(np.radians(d_min)), np.sin(np.radians(d_max))
    ra = r_min[:, None, None] + (r_max - r_min)[:, None, None] * u[None, None, :]
    sd = s0[:, None, None] + (s1 - s0)[:, None, None] * u[None, :, None]
    dec = np.degrees(np.arcsin(np.clip(sd, -1, 1)))
    ra, dec = np.broadcast_arrays(ra, dec)
    pix = hp.ang2pix(nside, np.mod(ra, 360.0), dec, nest=True, lonlat=True)
    return density[pix].mean(axis=(1, 2))


def pixel_counts(density: np.ndarray, order: int, pix: np.ndarray) -> np.ndarray:
    """Expected counts in nested HEALPix pixels ``pix`` of ``order`` (exact on the map grid)."""
    map_order = hp.nside2order(hp.npix2nside(density.size))
    if order >= map_order:
        shift = 2 * (order - map_order)
        return density[pix >> shift] / float(4 ** (order - map_order))
    shift = 2 * (map_order - order)
    csum = np.concatenate([[0.0], np.cumsum(density)])
    return csum[(pix + 1) << shift] - csum[pix << shift]


def read_density(path) -> np.ndarray:
    """Read a HEALPix count map from FITS (healpy format; RING maps are reordered to NESTED).

    Raises
    ------
    SkyTableError
        If the file is missing or does not hold a valid HEALPix map.
    """
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            m = hp.read_map(str(path), nest=True, dtype=np.float64)
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise SkyTableError(f"{path}: not a readable HEALPix map ({exc})") from exc
    return check_density(np.where(m == hp.UNSEEN, 0.0, m))
