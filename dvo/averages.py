"""Keep a partition's Average and SecFilt rows equal to what its measurements say.

:func:`update_positions` and :func:`update_magnitudes` are the one definition of an object's
averages: :func:`recompute` (relphot after writing new zero points, ``dvo verify`` comparing
stored values) and addstar's builder (positions after every file, magnitudes when a
partition is written) both call them.

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

from dvo._average_kernels import store_mags, store_positions
from dvo.flags import MeasFlags, ObjFlags
from dvo.partition import Partition, expand_ranges, index_ranges
from dvo.photcodes import Photcodes, PhotType

__all__ = [
    "recompute",
    "update_positions",
    "update_magnitudes",
    "MAGNITUDE_INPUTS",
    "POSITION_INPUTS",
]

MAG_FLOOR = 0.001  # mag
DEFAULT_POS_ERR = 0.1  # arcsec, for measurements without a centroid error


#: The Measure columns positions come from.
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
    photcodes.rows(m["PHOTCODE"])  # SchemaError for an unknown code
    if objects is None:
        objects, rows, ends = np.arange(nobj), np.arange(len(m)), np.append(off, len(m))
    else:
        objects = np.asarray(objects, np.int64)
        sub_cnt = cnt[objects]
        _, rows = expand_ranges(off[objects], sub_cnt)
        ends = np.concatenate([[0], np.cumsum(sub_cnt)])
    update_positions(average, objects, ends, rows, m, m, photcodes)
    update_magnitudes(secfilt, nsec, objects, ends, rows, m, photcodes)
    return dataclasses.replace(part, average=average, secfilt=secfilt)


def update_positions(
    average: np.ndarray,
    objects: np.ndarray,
    off: np.ndarray,
    rows: np.ndarray,
    a,
    b,
    photcodes: Photcodes,
) -> None:
    """Store the positions of Average rows ``objects``, object ``k``'s measurements being
    ``rows[off[k]:off[k + 1]]`` in Measure order: row ``r`` of ``a`` (a table with the
    :data:`POSITION_INPUTS` columns) for ``r < len(a)``, else row ``r - len(a)`` of ``b``
    (so that a partition's sorted rows and rows appended since can be read in place).
    Relastro-fitted objects, and objects without usable measurements, keep their position.
    """
    split = len(a["RA"])
    store_positions(
        np.asarray(objects, np.int64),
        np.asarray(off, np.int64),
        np.asarray(rows, np.int64),
        split,
        tuple(a[c] for c in POSITION_INPUTS),
        tuple(b[c] for c in POSITION_INPUTS),
        photcodes.by_code("TYPE") == PhotType.DEP,
        photcodes.by_code("ASTROM_ERR_SYS").astype(np.float64),
        np.uint32(MeasFlags.SKIP_ASTROM),
        np.uint32(ObjFlags.ASTROMETRY_FITTED),
        DEFAULT_POS_ERR,
        tuple(average[c] for c in _ASTROMETRY) + (average["FLAGS"],),
    )


def update_magnitudes(
    secfilt: np.ndarray,
    nsec: int,
    objects: np.ndarray,
    off: np.ndarray,
    rows: np.ndarray,
    m,
    photcodes: Photcodes,
) -> None:
    """Store the magnitudes (SecFilt rows) of Average rows ``objects``, object ``k``'s
    measurements being rows ``rows[off[k]:off[k + 1]]`` of ``m`` (a table with the
    :data:`MAGNITUDE_INPUTS` columns) in Measure order."""
    nobj = len(secfilt) // nsec
    sf = secfilt.reshape(nobj, nsec)
    store_mags(
        np.asarray(objects, np.int64),
        np.asarray(off, np.int64),
        np.asarray(rows, np.int64),
        tuple(m[c] for c in MAGNITUDE_INPUTS),
        photcodes.slot_by_code,
        photcodes.by_code("TYPE") == PhotType.DEP,
        photcodes.by_code("C_LAM"),
        photcodes.by_code("K"),
        np.uint32(MeasFlags.SKIP_PHOTOM),
        MAG_FLOOR,
        sf["NCODE"],
        tuple(tuple(sf[c] for c in cols) for cols in _MAG_COLUMNS),
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


#: The Measure columns magnitudes come from (in the order the kernel takes them).
MAGNITUDE_INPUTS = (
    "PHOTCODE", "DB_FLAGS", "AIRMASS", "M_FLAT", "MCAL_PSF", "MCAL_APER", "MAG", "MAG_ERR",
    "M_APER", "M_APER_ERR", "M_KRON", "M_KRON_ERR",
)  # fmt: skip
#: The SecFilt mean, error, stdev and count columns of the PSF, aperture and Kron kinds.
_MAG_COLUMNS = (
    ("MAG", "MAG_ERR", "MAG_STDEV", "NUSED"),
    ("MAG_AP", "MAG_AP_ERR", "MAG_AP_STDEV", "NUSED_AP"),
    ("MAG_KRON", "MAG_KRON_ERR", "MAG_KRON_STDEV", "NUSED_KRON"),
)
