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

from dvo._average_kernels import mean_positions, store_mags
from dvo.flags import MeasFlags, ObjFlags
from dvo.partition import Partition, expand_ranges, index_ranges
from dvo.photcodes import Photcodes, PhotType
from dvo.photometry import calibrated_mag

__all__ = [
    "recompute",
    "update_objects",
    "update_positions",
    "update_magnitudes",
    "MEASURE_INPUTS",
    "POSITION_INPUTS",
]

MAG_FLOOR = 0.001  # mag
DEFAULT_POS_ERR = 0.1  # arcsec, for measurements without a centroid error


MEASURE_INPUTS = (
    "RA", "DEC", "X_CCD_ERR", "Y_CCD_ERR", "PLTSCALE", "PHOTCODE", "DB_FLAGS", "TIME", "MAG",
    "MAG_ERR", "M_APER", "M_APER_ERR", "M_KRON", "M_KRON_ERR", "MCAL_PSF", "MCAL_APER",
    "AIRMASS", "M_FLAT",
)  # fmt: skip
#: The Measure columns positions come from (a subset of MEASURE_INPUTS).
POSITION_INPUTS = (
    "RA", "DEC", "X_CCD_ERR", "Y_CCD_ERR", "PLTSCALE", "PHOTCODE", "DB_FLAGS", "TIME",
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
    ``AVE_REF`` = ``k``. :func:`recompute` and :class:`dvo.builder.PartitionBuilder` (which
    calls the two halves at different times) come here, so a value never depends on which of
    them computed it.
    """
    update_positions(average, objects, sub, sub_off, sub_cnt, photcodes)
    update_magnitudes(secfilt, nsec, objects, sub, sub_off, sub_cnt, photcodes)


def update_positions(average, objects, sub, sub_off, sub_cnt, photcodes: Photcodes) -> None:
    """The position half of :func:`update_objects` (needs only :data:`POSITION_INPUTS`)."""
    rows = photcodes.rows(sub["PHOTCODE"])
    table = photcodes.table
    is_dep = table["TYPE"][rows] == PhotType.DEP
    sys_err = table["ASTROM_ERR_SYS"][rows].astype(np.float64)
    _store_positions(average, objects, _positions(sub, sub_off, sub_cnt, is_dep, sys_err))


def update_magnitudes(secfilt, nsec, objects, sub, sub_off, sub_cnt, photcodes: Photcodes) -> None:
    """The magnitude half of :func:`update_objects`: SecFilt rows of ``objects`` (Average
    rows; a slice for all), written in one pass by a numba kernel."""
    nobj = len(secfilt) // nsec
    objs = np.arange(nobj)[objects].astype(np.int64)
    if len(objs) == 0:
        return
    codes = sub["PHOTCODE"]
    rows = photcodes.rows(codes)
    table = photcodes.table
    is_dep = table["TYPE"][rows] == PhotType.DEP
    c_lam, k = table["C_LAM"][rows], table["K"][rows]
    slot = photcodes.sec_slot(codes).astype(np.int64)
    key = np.where(slot >= 0, sub["AVE_REF"].astype(np.int64) * nsec + slot, 0)
    usable = (slot >= 0) & ((sub["DB_FLAGS"] & np.uint32(MeasFlags.SKIP_PHOTOM)) == 0)
    use = _dep_or_ref(key, is_dep, usable, len(objs) * nsec)
    cal = np.empty((3, len(codes)))
    err = np.empty((3, len(codes)))
    for q, (src, src_err, mcal) in enumerate(_MAG_KINDS):
        cal[q] = calibrated_mag(sub[src], c_lam, k, sub["AIRMASS"], sub[mcal], sub["M_FLAT"])
        err[q] = sub[src_err]
    sf = secfilt.reshape(nobj, nsec)
    kinds = [(sf[c[0]], sf[c[1]], sf[c[2]], sf[c[3]]) for c in _MAG_COLUMNS]
    mean, merr, std, nused = (tuple(k[i] for k in kinds) for i in range(4))
    store_mags(
        objs,
        np.asarray(sub_off, np.int64),
        np.asarray(sub_cnt, np.int64),
        slot,
        cal,
        err,
        use,
        MAG_FLOOR,
        sf["NCODE"],
        mean,
        merr,
        std,
        nused,
        (sf["MAG_MIN"], sf["MAG_MAX"], sf["MAG_CHI"]),
    )


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


def _positions(m, off, cnt, is_dep, sys_err) -> dict[str, np.ndarray]:
    """Mean position, its error, chi-square, count and epoch statistics per object."""
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


#: Per kind (PSF, aperture, Kron): the Measure magnitude, its error and calibration column,
_MAG_KINDS = (
    ("MAG", "MAG_ERR", "MCAL_PSF"),
    ("M_APER", "M_APER_ERR", "MCAL_APER"),
    ("M_KRON", "M_KRON_ERR", "MCAL_APER"),
)
#: and the SecFilt mean, error, stdev and count columns.
_MAG_COLUMNS = (
    ("MAG", "MAG_ERR", "MAG_STDEV", "NUSED"),
    ("MAG_AP", "MAG_AP_ERR", "MAG_AP_STDEV", "NUSED_AP"),
    ("MAG_KRON", "MAG_KRON_ERR", "MAG_KRON_STDEV", "NUSED_KRON"),
)
