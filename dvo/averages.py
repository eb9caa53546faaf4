"""Keep a partition's Average and SecFilt rows equal to what its measurements say.

:func:`recompute` is the one definition of an object's averages; addstar runs it after every
file, relphot after writing new zero points, and ``dvo verify`` compares stored values with it.

Rules (documented for users):

- Positions: inverse-variance weighted mean of the detector (DEP) measurements; an object with
  none uses its reference (REF) measurements. Per-measurement error is the centroid error
  (``X/Y_CCD_ERR * PLTSCALE``) added in quadrature to the photcode's systematic error.
- Magnitudes, per average filter: weighted mean of calibrated magnitudes
  (:func:`dvo.photometry.calibrated_mag`) of DEP measurements mapped to that filter, else of
  REF ones; weights ``1/max(err, 1 mmag)^2``. Also error of the mean, stdev, reduced chi-square,
  min/max, NCODE (all measurements in the filter) and NUSED.
- Measurements flagged SKIP_ASTROM / SKIP_PHOTOM in DB_FLAGS are left out of the respective mean.
- Objects flagged ASTROMETRY_FITTED (relastro wrote their position, motion and parallax) keep
  their astrometry; only counts, offsets and magnitudes are recomputed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dvo._average_kernels import mean_mags, mean_positions
from dvo.flags import MeasFlags, ObjFlags
from dvo.partition import Partition, expand_ranges, index_ranges
from dvo.photcodes import Photcodes, PhotType
from dvo.photometry import calibrated_mag

__all__ = ["recompute", "update_objects", "MEASURE_INPUTS"]

MAG_FLOOR = 0.001  # mag
DEFAULT_POS_ERR = 0.1  # arcsec, for measurements without a centroid error


MEASURE_INPUTS = (
    "RA", "DEC", "X_CCD_ERR", "Y_CCD_ERR", "PLTSCALE", "PHOTCODE", "DB_FLAGS", "TIME", "MAG",
    "MAG_ERR", "M_APER", "M_APER_ERR", "M_KRON", "M_KRON_ERR", "MCAL_PSF", "MCAL_APER",
    "AIRMASS", "M_FLAT",
)  # fmt: skip


def recompute(
    part: Partition,
    photcodes: Photcodes,
    *,
    objects: np.ndarray | None = None,
    inplace: bool = False,
) -> Partition:
    """``part`` with Average/SecFilt derived columns recomputed (a copy unless ``inplace``).

    Offsets and counts are always recomputed for every object; positions and magnitudes for
    ``objects`` only (all when None), which is what makes addstar's cost follow the change.
    """
    nobj, nsec = len(part.average), part.nsecfilt
    average = part.average if inplace else part.average.copy()
    secfilt = part.secfilt if inplace else part.secfilt.copy()
    m = part.measure
    off, cnt = index_ranges(m["AVE_REF"], nobj)
    average["OFF_MEASURE"], average["NMEASURE"] = off, cnt
    loff, lcnt = index_ranges(part.lensing["AVE_REF"], nobj)
    average["OFF_LENSING"], average["NLENSING"] = loff, lcnt
    if len(m) == 0:
        return dataclasses.replace(part, average=average, secfilt=secfilt)
    if objects is None:
        objects, sub, sub_off, sub_cnt = slice(None), m, off, cnt
    else:
        sub_cnt = cnt[objects]
        sub_off = np.cumsum(sub_cnt) - sub_cnt
        owner, rows = expand_ranges(off[objects], sub_cnt)
        sub = {c: m[c][rows] for c in MEASURE_INPUTS}
        sub["AVE_REF"] = owner
    update_objects(average, secfilt, nsec, objects, sub, sub_off, sub_cnt, photcodes)
    return dataclasses.replace(part, average=average, secfilt=secfilt)


def update_objects(
    average: np.ndarray,
    secfilt: np.ndarray,
    nsec: int,
    objects,
    sub,
    sub_off: np.ndarray,
    sub_cnt: np.ndarray,
    photcodes: Photcodes,
) -> None:
    """Store the averages of ``objects`` (Average rows) computed from their measurements.

    ``sub`` holds the :data:`MEASURE_INPUTS` columns of those objects' measurements, object
    ``k``'s in rows ``sub_off[k] .. sub_off[k] + sub_cnt[k] - 1`` in Measure order, with
    ``AVE_REF`` = ``k``. Both :func:`recompute` and :class:`dvo.builder.PartitionBuilder`
    come here, so a value never depends on which of them computed it.
    """
    terms = _photcode_terms(photcodes, sub["PHOTCODE"])
    _store_positions(average, objects, _positions(sub, sub_off, sub_cnt, terms))
    sf = secfilt.reshape(len(average), nsec)
    for col, values in _magnitudes(sub, sub_off, sub_cnt, nsec, terms).items():
        sf[col][objects] = values


#: Columns a relastro fit owns (the position is at MEAN_EPOCH), kept for fitted objects.
_ASTROMETRY = (
    "RA",
    "DEC",
    "RA_ERR",
    "DEC_ERR",
    "CHISQ_POS",
    "NUMBER_POS",
    "MEAN_EPOCH",
    "TIME_RANGE",
)


def _store_positions(average: np.ndarray, objects, pos: dict[str, np.ndarray]) -> None:
    """Write position columns for ``objects``; relastro-fitted objects keep their astrometry,
    and objects without usable measurements keep their position."""
    flags = average["FLAGS"][objects]
    keep_old = ((flags & np.uint32(ObjFlags.ASTROMETRY_FITTED)) != 0) | (pos["NUMBER_POS"] == 0)
    for col, values in pos.items():
        if col in _ASTROMETRY and keep_old.any():
            values = np.where(keep_old, average[col][objects], values)
        average[col][objects] = values


def _dep_or_ref(key: np.ndarray, is_dep: np.ndarray, usable: np.ndarray, size: int) -> np.ndarray:
    """Use DEP measurements where a group (key) has any usable, else the usable REF ones."""
    has_dep = np.bincount(key[is_dep & usable], minlength=size) > 0
    return usable & (is_dep | ~has_dep[key])


def _photcode_terms(photcodes: Photcodes, codes: np.ndarray) -> dict[str, np.ndarray]:
    """What the averages need from each measurement's photcode, looked up once."""
    rows = photcodes.rows(codes)
    table = photcodes.table
    return {
        "dep": table["TYPE"][rows] == PhotType.DEP,
        "sys_err": table["ASTROM_ERR_SYS"][rows].astype(np.float64),
        "c_lam": table["C_LAM"][rows],
        "k": table["K"][rows],
        "slot": photcodes.sec_slot(codes).astype(np.int64),
    }


def _positions(m, off, cnt, terms: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Mean position, its error, chi-square, count and epoch statistics per object."""
    is_dep, sys_err = terms["dep"], terms["sys_err"]
    cerr = 0.005 * (m["X_CCD_ERR"].astype(np.float64) + m["Y_CCD_ERR"]) * m["PLTSCALE"]
    sigma = np.hypot(np.nan_to_num(cerr), sys_err)
    sigma = np.where(np.isfinite(sigma) & (sigma > 0), sigma, DEFAULT_POS_ERR)
    usable = (m["DB_FLAGS"] & np.uint32(MeasFlags.SKIP_ASTROM)) == 0
    averef = m["AVE_REF"].astype(np.int64)
    n = len(off)
    use = _dep_or_ref(averef, is_dep, usable, n)
    ra, dec = np.full(n, np.nan), np.full(n, np.nan)
    err, chi, npos = np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, np.int64)
    mean_positions(off, cnt, m["RA"], m["DEC"], sigma, use, ra, dec, err, chi, npos)
    t = m["TIME"].astype(np.float64)
    w = use.astype(np.float64)
    nuse = np.bincount(averef, weights=w, minlength=n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_t = np.bincount(averef, weights=w * t, minlength=n) / nuse
    tmin, tmax = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(tmin, averef[use], t[use])
    np.maximum.at(tmax, averef[use], t[use])
    ok = nuse > 0
    return {
        "RA": ra, "DEC": dec, "RA_ERR": err, "DEC_ERR": err, "CHISQ_POS": chi, "NUMBER_POS": npos,
        "MEAN_EPOCH": np.where(ok, np.round(np.nan_to_num(mean_t)), 0).astype(np.int32),
        "TIME_RANGE": np.where(ok, tmax - tmin, 0).astype(np.int32),
    }  # fmt: skip


_MAG_KINDS = (
    ("MAG", "MAG_ERR", "MAG_STDEV", "NUSED", "MAG", "MAG_ERR", "MCAL_PSF"),
    ("MAG_AP", "MAG_AP_ERR", "MAG_AP_STDEV", "NUSED_AP", "M_APER", "M_APER_ERR", "MCAL_APER"),
    ("MAG_KRON", "MAG_KRON_ERR", "MAG_KRON_STDEV", "NUSED_KRON", "M_KRON", "M_KRON_ERR",
     "MCAL_APER"),
)  # fmt: skip


def _magnitudes(m, off, cnt, nsec: int, terms: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """SecFilt columns, each of shape (objects, nsec)."""
    slot, is_dep, c_lam, k = terms["slot"], terms["dep"], terms["c_lam"], terms["k"]
    nobj = len(off)
    averef = m["AVE_REF"].astype(np.int64)
    key = np.where(slot >= 0, averef * nsec + slot, 0)
    usable = (slot >= 0) & ((m["DB_FLAGS"] & np.uint32(MeasFlags.SKIP_PHOTOM)) == 0)
    use = _dep_or_ref(key, is_dep, usable, nobj * nsec)
    out = {"NCODE": np.bincount(key[slot >= 0], minlength=nobj * nsec).reshape(nobj, nsec)}
    for mean_col, err_col, std_col, n_col, src, src_err, mcal in _MAG_KINDS:
        cal = calibrated_mag(m[src], c_lam, k, m["AIRMASS"], m[mcal], m["M_FLAT"])
        err = m[src_err].astype(np.float64)
        res = [np.full((nobj, nsec), np.nan) for _ in range(6)]
        nused = np.zeros((nobj, nsec), np.int64)
        mean_mags(off, cnt, slot, cal, err, use, nsec, MAG_FLOOR, *res, nused)
        mean, merr, std, mmin, mmax, chi = res
        out.update({mean_col: mean, err_col: merr, std_col: std, n_col: nused})
        if mean_col == "MAG":
            out.update({"MAG_MIN": mmin, "MAG_MAX": mmax, "MAG_CHI": chi})
    return out
