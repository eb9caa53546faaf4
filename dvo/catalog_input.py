"""Read plain catalogues (FITS, Parquet, CSV) for addstar, loaded under a REF photcode.

Columns (case-insensitive): ``ra``, ``dec`` (deg), ``mag``, ``mag_err``; optional ``epoch``
(MJD if > 3000, else a Julian year), ``ra_err``, ``dec_err`` (mas). A reference magnitude is
stored as ``mag + 25`` with the REF photcode's zero point 0, so the calibrated magnitude is the
catalogue's. Positional errors are stored as ``X/Y_CCD_ERR`` with ``PLTSCALE`` = 1 mas/pixel.

Gaia names are accepted too (``ra_error``, ``dec_error``, ``ref_epoch``). A reference
catalogue's motions, which Measure has no columns for, ride in REF rows' detector-only columns
(NaN when the catalogue has none), for relastro: ``X_FIX``/``Y_FIX`` = ``pmra``/``pmdec``
(mas/yr), ``X_OFF_KH``/``Y_OFF_KH`` = their errors (``pmra_error``/``pmdec_error``), and
``X_OFF_DCR``/``Y_OFF_DCR`` = ``parallax``/``parallax_error`` (mas).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dvo.errors import IngestError, SchemaError
from dvo.photcodes import Photcodes, PhotType
from dvo.photometry import ZERO_POINT
from dvo.schema import IMAGE, MEASURE
from dvo.skytable import angular_distance
from dvo.smf import IngestBatch
from dvo.times import J2000_MJD, mjd_to_time

__all__ = ["read_catalog", "CATALOG_SUFFIXES"]

CATALOG_SUFFIXES = (".csv", ".parquet", ".pq", ".fits", ".fit", ".fits.gz")
REF_PLTSCALE = 0.001  # arcsec per "pixel": positional errors are stored in mas
DEFAULT_REF_ERR_MAS = 10.0
#: Gaia column names accepted for ours.
ALIASES = {"ra_error": "ra_err", "dec_error": "dec_err", "ref_epoch": "epoch"}
#: Reference motion columns -> the REF Measure columns that carry them (see module docstring).
MOTION_COLUMNS = {
    "pmra": "X_FIX",
    "pmdec": "Y_FIX",
    "pmra_error": "X_OFF_KH",
    "pmdec_error": "Y_OFF_KH",
    "parallax": "X_OFF_DCR",
    "parallax_error": "Y_OFF_DCR",
}


def _read_columns(path: Path) -> dict[str, np.ndarray]:
    name = path.name.lower()
    if name.endswith(".csv"):
        from pyarrow import csv

        table = csv.read_csv(str(path))
        return {c.lower(): table[c].to_numpy() for c in table.column_names}
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        table = pq.read_table(str(path))
        return {c.lower(): table[c].to_numpy() for c in table.column_names}
    import fitsio

    data = fitsio.read(str(path), ext=1)
    return {c.lower(): data[c] for c in data.dtype.names}


def read_catalog(path: str | Path, photcodes: Photcodes, photcode: str) -> IngestBatch:
    """Read a plain catalogue as one REF "image"; raises IngestError naming file and problem."""
    path = Path(path)
    try:
        code = photcodes.code(photcode)
    except SchemaError:
        raise IngestError(f"unknown photcode {photcode}", file=str(path)) from None
    if photcodes.type(code) is not PhotType.REF:
        raise IngestError(f"photcode {photcode} is not a REF photcode", file=str(path))
    try:
        cols = _read_columns(path)
    except (OSError, ValueError, KeyError) as exc:
        raise IngestError(
            f"unreadable catalogue ({' '.join(str(exc).split())[:200]})", file=str(path)
        ) from None
    for gaia, ours in ALIASES.items():
        if gaia in cols and ours not in cols:
            cols[ours] = cols[gaia]
    missing = [c for c in ("ra", "dec", "mag", "mag_err") if c not in cols]
    if missing:
        raise IngestError(f"missing columns {', '.join(missing)}", file=str(path))
    return _batch(path, cols, code)


def _epoch_mjd(cols: dict, n: int) -> np.ndarray:
    """Each row's epoch as MJD (J2000 when the catalogue has none)."""
    if "epoch" not in cols:
        return np.full(n, J2000_MJD)
    epoch = np.asarray(cols["epoch"], np.float64)
    return np.where(epoch > 3000, epoch, J2000_MJD + (epoch - 2000.0) * 365.25)


def _batch(path: Path, cols: dict, code: int) -> IngestBatch:
    ra, dec = (np.asarray(cols[c], np.float64) for c in ("ra", "dec"))
    mag, err = (np.asarray(cols[c], np.float64) for c in ("mag", "mag_err"))
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(mag)
    if ((np.abs(dec[keep]) > 90) | (ra[keep] < -360) | (ra[keep] > 720)).any():
        raise IngestError("coordinates out of range", file=str(path))
    n = int(keep.sum())
    m = MEASURE.empty(n)
    m["RA"], m["DEC"] = ra[keep] % 360.0, dec[keep]
    m["MAG"], m["MAG_ERR"] = mag[keep] + ZERO_POINT, err[keep]
    m["AIRMASS"], m["M_FLAT"], m["MCAL_PSF"], m["MCAL_APER"] = 1.0, 0.0, 0.0, 0.0
    mjd = _epoch_mjd(cols, len(ra))[keep]
    m["TIME"], m["TIME_MSEC"] = mjd_to_time(mjd)
    for axis in ("ra", "dec"):
        e = cols.get(f"{axis}_err")
        e = np.full(len(ra), DEFAULT_REF_ERR_MAS) if e is None else np.asarray(e, np.float64)
        col = "X_CCD_ERR" if axis == "ra" else "Y_CCD_ERR"
        m[col] = np.clip(np.nan_to_num(e[keep] * 100, nan=DEFAULT_REF_ERR_MAS * 100), 1, 32767)
    m["PLTSCALE"], m["PHOTCODE"] = REF_PLTSCALE, code
    for name, col in MOTION_COLUMNS.items():
        m[col] = np.asarray(cols[name], np.float64)[keep] if name in cols else np.nan
    m["DET_ID"] = np.flatnonzero(keep).astype(np.uint32)
    images = IMAGE.empty(1)
    images["NAME"], images["PHOTCODE"], images["EXP_ID"] = path.name[:117], code, -1
    images["NSTAR"], images["SECZ"], images["EXPTIME"] = n, 1.0, 0.0
    for name in ("MCAL_PSF", "MCAL_APER", "DMCAL", "APMIFIT", "DAPMIFIT", "XM"):
        images[name] = 0.0
    if n:
        images["RA_CENTER"], images["DEC_CENTER"] = _centre(m["RA"], m["DEC"])
        images["RADIUS"] = angular_distance(
            images["RA_CENTER"][0], images["DEC_CENTER"][0], m["RA"], m["DEC"]
        ).max()
        images["MJD_OBS"] = mjd.mean()
    return IngestBatch(
        source=str(path),
        images=images,
        measure=m,
        meas_image=np.zeros(n, np.int64),
        rejected=int((~keep).sum()),
    )


def _centre(ra: np.ndarray, dec: np.ndarray) -> tuple[float, float]:
    v = np.stack(
        [
            np.cos(np.radians(dec)) * np.cos(np.radians(ra)),
            np.cos(np.radians(dec)) * np.sin(np.radians(ra)),
            np.sin(np.radians(dec)),
        ]
    )
    s = v.sum(axis=1)
    s /= np.linalg.norm(s)
    return float(np.degrees(np.arctan2(s[1], s[0])) % 360), float(np.degrees(np.arcsin(s[2])))
