"""A Gaia-like reference catalogue of the bright simulated stars, with realistic errors.

Stars with r <= reference_mag_max; every value is the truth plus a Gaussian error of the
stated size (errors in mas, mas/yr, mag)::

    sigma_pos = hypot(0.015, reference_pos_err * 10**(0.3 (r - 20)))   (ra_error = dec_error)
    pmra_error = pmdec_error = 1.1 sigma_pos,  parallax_error = 1.25 sigma_pos
    mag_err = hypot(0.0003, 0.006 * 10**(0.4 (r - 20)))

Positions are at ``ref_epoch`` (Julian year, column ``ref_epoch`` and header ``EPOCH``);
``ra`` errors are along the great circle (ra is shifted by error / cos(dec)). Columns follow
Gaia names: source_id (= star_id), ra, dec, ra_error, dec_error, pmra, pmdec, pmra_error,
pmdec_error, parallax, parallax_error, mag, mag_err, ref_epoch.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .config import SurveyConfig

__all__ = ["REFERENCE_DTYPE", "make_reference", "write_reference", "reference_path"]

REFERENCE_DTYPE = np.dtype(
    [("source_id", "i8"), ("ra", "f8"), ("dec", "f8"), ("ra_error", "f8"), ("dec_error", "f8")]
    + [("pmra", "f8"), ("pmdec", "f8"), ("pmra_error", "f8"), ("pmdec_error", "f8")]
    + [("parallax", "f8"), ("parallax_error", "f8"), ("mag", "f8"), ("mag_err", "f8")]
    + [("ref_epoch", "f8")]
)


def make_reference(config: SurveyConfig, stars: np.ndarray) -> np.ndarray:
    """The reference catalogue (REFERENCE_DTYPE) drawn from the true stars."""
    rng = np.random.default_rng([config.seed, 5])
    s = stars[stars["mag_r"] <= config.reference_mag_max]
    n = len(s)
    r = s["mag_r"]
    sig = np.hypot(0.015, config.reference_pos_err * 10 ** (0.3 * (r - 20.0)))
    out = np.zeros(n, REFERENCE_DTYPE)
    out["source_id"] = s["star_id"]
    g = rng.normal(size=(n, 6))
    out["ra"] = (s["ra"] + g[:, 0] * sig / 3.6e6 / np.cos(np.radians(s["dec"]))) % 360.0
    out["dec"] = s["dec"] + g[:, 1] * sig / 3.6e6
    out["ra_error"] = out["dec_error"] = sig
    out["pmra_error"] = out["pmdec_error"] = 1.1 * sig
    out["pmra"] = s["pm_ra_cosdec"] + g[:, 2] * 1.1 * sig
    out["pmdec"] = s["pm_dec"] + g[:, 3] * 1.1 * sig
    out["parallax_error"] = 1.25 * sig
    out["parallax"] = s["parallax"] + g[:, 4] * 1.25 * sig
    out["mag_err"] = np.hypot(0.0003, 0.006 * 10 ** (0.4 * (r - 20.0)))
    out["mag"] = r + g[:, 5] * out["mag_err"]
    out["ref_epoch"] = config.ref_epoch
    return out


def reference_path(outdir: Path | str, fmt: str) -> Path:
    """Path of the reference catalogue in format ``fmt`` (fits, csv, parquet)."""
    return Path(outdir) / f"reference.{fmt}"


def write_reference(config: SurveyConfig, ref: np.ndarray, outdir: Path | str) -> Path:
    """Write the reference catalogue in ``config.reference_format``; returns the path."""
    from astropy.table import Table

    path = reference_path(outdir, config.reference_format)
    table = Table(ref)
    table.meta["EPOCH"] = config.ref_epoch
    fmt = {"fits": "fits", "csv": "ascii.csv", "parquet": "parquet"}[config.reference_format]
    table.write(path, format=fmt, overwrite=True)
    return path
