"""The exposures of a survey: names, times, boresights, airmass, seeing, sky and zero points.

Cadence: exposure i is taken in night ``k = i * n_nights // n_exposures``; night k starts at
``mjd_start + k * span_days / n_nights`` and its exposures follow every
``min(90 s, 0.33 d / n_in_night)``. Filters cycle through ``filters``. Airmass is uniform in
[1, airmass_max] (not tied to the pointing). FWHM = seeing * exp(N(0, seeing_scatter)).

Zero points (mag, positive = fainter, the dZP of smf-format.md)::

    dzp_exposure = N(0, zp_scatter) + cloud + zp_drift * (mjd - mjd_start) - k_night * (X - 1)
    cloud        = U(cloud_min, cloud_max) with probability cloudy_fraction, else 0
    k_night      ~ N(0, extinction_scatter)  (per night: the true K of the night is K + k_night)
    dzp(image)   = dzp_exposure + N(0, zp_chip_scatter)
"""

from __future__ import annotations

import numpy as np

from dvo.gpc1 import FILTERS, PIXEL_SCALE

from .config import DEFAULT_SKY, SurveyConfig
from .sky import tan_deproject

__all__ = ["EXPOSURE_DTYPE", "make_exposures", "exposure_name", "earth_position"]

EXPOSURE_DTYPE = np.dtype(
    [
        ("exp_index", "i4"),
        ("exp_name", "U20"),
        ("exp_id", "i8"),
        ("filter", "U1"),
        ("mjd", "f8"),
        ("exptime", "f8"),
        ("airmass", "f8"),
        ("night", "i4"),
        ("ra", "f8"),
        ("dec", "f8"),
        ("posangle", "f8"),
        ("fwhm", "f8"),
        ("sky", "f8"),
        ("cloudy", "?"),
        ("dzp_random", "f8"),
        ("dzp_cloud", "f8"),
        ("dzp_drift", "f8"),
        ("k_night", "f8"),
        ("dzp_extinction", "f8"),
        ("dzp_exposure", "f8"),
        ("earth_x", "f8"),
        ("earth_y", "f8"),
        ("earth_z", "f8"),
    ]
)


def exposure_name(mjd: float, filter_name: str, index: int) -> str:
    """Pan-STARRS style exposure name, e.g. ``o7000r0003o``."""
    return f"o{int(mjd) - 50000:04d}{filter_name}{index:04d}o"


def _times(config: SurveyConfig) -> tuple[np.ndarray, np.ndarray]:
    """(night, mjd) of every exposure."""
    n = config.n_exposures
    i = np.arange(n)
    night = i * config.n_nights // n
    first = np.searchsorted(night, night, side="left")
    per_night = np.bincount(night, minlength=config.n_nights)[night]
    step = np.minimum(90.0 / 86400.0, 0.33 / per_night)
    start = config.mjd_start + night * config.span_days / config.n_nights
    return night, start + (i - first) * step


def _boresights(rng: np.random.Generator, config: SurveyConfig) -> tuple[np.ndarray, np.ndarray]:
    """(ra, dec) of every exposure's boresight (deg)."""
    n = config.n_exposures
    if config.pointings is None:
        h = config.field_size / 2
        xi, eta = rng.uniform(-h, h, n), rng.uniform(-h, h, n)
        return tan_deproject(xi, eta, config.ra, config.dec)
    pts = np.asarray(config.pointings, dtype=float).reshape(-1, 2)
    base = pts[np.arange(n) % len(pts)]
    r = config.dither * np.sqrt(rng.uniform(0.0, 1.0, n))
    phi = rng.uniform(0.0, 2 * np.pi, n)
    ra, dec = np.empty(n), np.empty(n)
    for k in range(n):
        ra[k], dec[k] = tan_deproject(
            r[k] * np.cos(phi[k]), r[k] * np.sin(phi[k]), base[k, 0], base[k, 1]
        )
    return ra, dec


def _zero_points(rng: np.random.Generator, config: SurveyConfig, exps: np.ndarray) -> None:
    """Fill the zero-point columns of ``exps`` (see the module docstring)."""
    n = len(exps)
    exps["dzp_random"] = rng.normal(0.0, config.zp_scatter, n)
    exps["cloudy"] = rng.uniform(0.0, 1.0, n) < config.cloudy_fraction
    cloud = rng.uniform(config.cloud_min, config.cloud_max, n)
    exps["dzp_cloud"] = np.where(exps["cloudy"], cloud, 0.0)
    exps["dzp_drift"] = config.zp_drift * (exps["mjd"] - config.mjd_start)
    k_night = rng.normal(0.0, config.extinction_scatter, config.n_nights)
    exps["k_night"] = k_night[exps["night"]]
    exps["dzp_extinction"] = -exps["k_night"] * (exps["airmass"] - 1.0)
    exps["dzp_exposure"] = (
        exps["dzp_random"] + exps["dzp_cloud"] + exps["dzp_drift"] + exps["dzp_extinction"]
    )


def make_exposures(config: SurveyConfig) -> np.ndarray:
    """The exposure table (EXPOSURE_DTYPE) of a survey, one row per exposure."""
    rng = np.random.default_rng([config.seed, 2])
    n = config.n_exposures
    exps = np.zeros(n, EXPOSURE_DTYPE)
    exps["exp_index"] = np.arange(n)
    exps["exp_id"] = config.exp_id_start + np.arange(n)
    exps["filter"] = [config.filters[i % len(config.filters)] for i in range(n)]
    exps["night"], exps["mjd"] = _times(config)
    exps["exp_name"] = [
        exposure_name(m, f, i)
        for i, (m, f) in enumerate(zip(exps["mjd"], exps["filter"], strict=True))
    ]
    exps["exptime"] = [config.exptime_for(f) for f in exps["filter"]]
    exps["airmass"] = rng.uniform(1.0, config.airmass_max, n)
    exps["ra"], exps["dec"] = _boresights(rng, config)
    exps["posangle"] = config.posangle + rng.normal(0.0, 1.0, n) * config.posangle_jitter
    exps["fwhm"] = config.seeing * np.exp(rng.normal(0.0, config.seeing_scatter, n))
    zp = np.array([FILTERS[f].zero_point for f in exps["filter"]])
    mu = np.array([DEFAULT_SKY[f] for f in exps["filter"]])
    exps["sky"] = 10 ** (-0.4 * (mu - zp)) * exps["exptime"] * PIXEL_SCALE**2
    _zero_points(rng, config, exps)
    exps["earth_x"], exps["earth_y"], exps["earth_z"] = earth_position(exps["mjd"])
    return exps


def earth_position(mjd: np.ndarray) -> np.ndarray:
    """Barycentric position of the Earth (au), shape (3, n), at UTC MJDs (astropy, builtin)."""
    from astropy import units as u
    from astropy.coordinates import get_body_barycentric
    from astropy.time import Time

    t = Time(np.atleast_1d(mjd), format="mjd", scale="utc")
    return get_body_barycentric("earth", t).xyz.to_value(u.au)
