"""Write a relastro solution: every partition, Images, the statistics index and RelAstro.fits,
all in one :class:`dvo.transaction.Transaction` (a run interrupted at any point leaves the
database as it was, or fully updated).

What is written
---------------
- Measure RA/DEC of every detector measure on a chip image: chip WCS of (X_CCD, Y_CCD) plus
  the chip correction (raw pixel columns untouched). DB_FLAGS: USED_OBJ (kept by its object's
  fit), USED_CHIP (used in its chip's fit), POOR_ASTROM (clipped).
- Average of every fitted object: RA/DEC at MEAN_EPOCH, RA_ERR/DEC_ERR, U_RA/U_DEC,
  V_RA_ERR/V_DEC_ERR, PAR/PAR_ERR (arcsec, arcsec/yr; 0 with NaN error when not fitted),
  CHISQ_POS/CHISQ_PM/CHISQ_PLX (reduced chi-square of each model), NUMBER_POS, and FLAGS
  ASTROMETRY_FITTED plus one of FIT_AVE/FIT_PM/FIT_PAR.
- Images (chips): N_FIT_ASTROM, XPIX_SYS_ERR/YPIX_SYS_ERR (residual RMS in pixels), FLAGS
  ASTROM_FEW for chips without a fit.
- RelAstro.fits: per chip IMAGE_ID, ORDER, NSTAR and COEFF (2 x 10 arcsec, east then north),
  the corrections a re-run starts from.
"""

from __future__ import annotations

import numpy as np

from dvo import codecs, layout
from dvo.averages import recompute
from dvo.flags import ImageFlags, MeasFlags, ObjFlags
from dvo.partition import Partition, write_partition
from dvo.schema import IMAGE

from ._kernels import chip_correction
from .chips import ChipAccumulator, ChipSolution
from .model import chip_uv, offsets_to_sky
from .objects import ObjectFit
from .workset import ChipTable

__all__ = [
    "correct_measures",
    "update_partition",
    "write_partition_staged",
    "write_images",
    "write_stats",
    "read_corrections",
]

_MEAS_BITS = np.uint32(MeasFlags.USED_OBJ | MeasFlags.USED_CHIP | MeasFlags.POOR_ASTROM)
_OBJ_BITS = np.uint32(ObjFlags.FIT_AVE | ObjFlags.FIT_PM | ObjFlags.FIT_PAR)
_IMG_BITS = np.uint32(ImageFlags.ASTROM_FEW | ImageFlags.ASTROM_FAIL | ImageFlags.ASTROM_POOR)
_MODEL_FLAG = {2: ObjFlags.FIT_AVE, 4: ObjFlags.FIT_PM, 5: ObjFlags.FIT_PAR}


def correct_measures(m: np.ndarray, chips: ChipTable, coeff: np.ndarray) -> None:
    """Set RA/DEC of measures on chip images to chip WCS + correction (in place)."""
    chip = chips.lookup(m["IMAGE_ID"])
    rows = np.flatnonzero((chip >= 0) & np.isfinite(m["X_CCD"]) & np.isfinite(m["Y_CCD"]))
    if len(rows) == 0:
        return
    c = chip[rows]
    x, y = m["X_CCD"][rows].astype(np.float64), m["Y_CCD"][rows].astype(np.float64)
    ra, dec = chips.raw_sky(c, x, y)
    u, v = chip_uv(x, y, chips.nx[c], chips.ny[c])
    cx, cy = np.empty(len(rows)), np.empty(len(rows))
    chip_correction(c, u, v, coeff, cx, cy)
    m["RA"][rows], m["DEC"][rows] = offsets_to_sky(cx, cy, ra, dec)


def _set_flags(m: np.ndarray, ws: dict, fit: ObjectFit, chip_used: np.ndarray) -> None:
    rows = ws["row"].astype(np.int64)
    flags = m["DB_FLAGS"][rows] & ~_MEAS_BITS
    flags |= np.where(fit.used, np.uint32(MeasFlags.USED_OBJ), np.uint32(MeasFlags.POOR_ASTROM))
    flags |= np.where(chip_used, np.uint32(MeasFlags.USED_CHIP), np.uint32(0))
    m["DB_FLAGS"][rows] = flags


def _reduced(chi2: np.ndarray, nfit: np.ndarray, npar: int) -> np.ndarray:
    dof = 2 * nfit - npar
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(dof > 0, chi2 / dof, np.nan)


def _set_averages(ave: np.ndarray, ws: dict, fit: ObjectFit, chi2s: dict) -> int:
    ok = (fit.nfit > 0) & np.isfinite(fit.params[:, 0])
    rows = ws["ave_row"][ok]
    p, var, npar = fit.params[ok], fit.var[ok], fit.npar[ok]
    ra, dec = offsets_to_sky(p[:, 0], p[:, 1], ws["ra0"][ok], ws["dec0"][ok])
    err = np.sqrt(var)
    ave["RA"][rows], ave["DEC"][rows] = ra, dec
    ave["RA_ERR"][rows], ave["DEC_ERR"][rows] = err[:, 0], err[:, 1]
    for j, (val, sig) in enumerate(
        (("U_RA", "V_RA_ERR"), ("U_DEC", "V_DEC_ERR"), ("PAR", "PAR_ERR")), start=2
    ):
        fitted = npar > j
        ave[val][rows] = np.where(fitted, p[:, j], 0.0)
        ave[sig][rows] = np.where(fitted, err[:, j], np.nan)
    for col, k in (("CHISQ_POS", 2), ("CHISQ_PM", 4), ("CHISQ_PLX", 5)):
        c2, nf = chi2s[k]
        ave[col][rows] = np.where(npar >= k, _reduced(c2[ok], nf[ok], k), np.nan)
    ave["NUMBER_POS"][rows] = np.minimum(fit.nfit[ok], 65535)
    model = np.zeros(len(rows), np.uint32)
    for k, flag in _MODEL_FLAG.items():
        model[npar == k] = np.uint32(flag)
    ave["FLAGS"][rows] = (ave["FLAGS"][rows] & ~_OBJ_BITS) | model
    ave["FLAGS"][rows] |= np.uint32(ObjFlags.ASTROMETRY_FITTED)
    return len(rows)


def update_partition(
    part: Partition, ws: dict | None, fit: ObjectFit | None, chi2s: dict, chip_used, chips,
    coeff, photcodes,
) -> Partition:  # fmt: skip
    """The partition with corrected measures and fitted averages, averages recomputed."""
    m, ave = part.measure.copy(), part.average.copy()
    correct_measures(m, chips, coeff)
    if ws is not None:
        _set_flags(m, ws, fit, chip_used)
        _set_averages(ave, ws, fit, chi2s)
    part = Partition(
        part.index, part.name, part.nsecfilt, ave, part.secfilt, m, part.lensing, part.next_objid
    )
    return recompute(part, photcodes)


def write_partition_staged(db, tx, part: Partition) -> None:
    """Stage one partition's files in the transaction."""
    sky, i = db.skytable, part.index
    bounds = (sky.r_min[i], sky.r_max[i], sky.d_min[i], sky.d_max[i])
    write_partition(
        part, tx.stage, compression=db.settings["compression"],
        tile_rows=int(db.settings["tile_rows"]), bounds=bounds,
    )  # fmt: skip


def write_images(db, tx, images, chips: ChipTable, sol: ChipSolution, acc: ChipAccumulator):
    """Stage Images (per-chip astrometric scatter, star counts, flags) and RelAstro.fits."""
    images = images.copy()
    rows = chips.row
    pix = 3600.0 * np.abs(chips.cd[:, 0, 0] + 1j * chips.cd[:, 1, 0])
    rms = acc.rms()
    images["N_FIT_ASTROM"][rows] = np.minimum(acc.nstar, 32767)
    images["XPIX_SYS_ERR"][rows] = np.where(acc.nres > 0, rms[:, 0] / pix, np.nan)
    images["YPIX_SYS_ERR"][rows] = np.where(acc.nres > 0, rms[:, 1] / pix, np.nan)
    flags = images["FLAGS"][rows] & ~_IMG_BITS
    images["FLAGS"][rows] = flags | np.where(
        sol.order < 0, np.uint32(ImageFlags.ASTROM_FEW), np.uint32(0)
    )
    opts = {"compression": db.settings["compression"], "tile_rows": int(db.settings["tile_rows"])}
    codecs.write_table(
        tx.stage(layout.IMAGES), IMAGE.conform(images), extname=IMAGE.name, units=IMAGE.units,
        header={"IMAGEID": db.next_image_id()}, **opts,
    )  # fmt: skip
    table = {
        "IMAGE_ID": chips.image_id.astype(np.int32),
        "ORDER": sol.order.astype(np.int16),
        "NSTAR": sol.nstar.astype(np.int32),
        "COEFF": sol.coeff.reshape(len(chips), -1),
    }
    codecs.write_table(tx.stage(layout.RELASTRO), table, compression="none", extname="RELASTRO")


def read_corrections(db, chips: ChipTable) -> np.ndarray:
    """Chip corrections (n, 2, 10) of a previous run, zero where there are none."""
    coeff = np.zeros((len(chips), 2, 10))
    path = db.catdir / layout.RELASTRO
    if not path.exists():
        return coeff
    prev = codecs.read_table(path)
    idx = chips.lookup(prev["IMAGE_ID"])
    ok = idx >= 0
    coeff[idx[ok]] = np.asarray(prev["COEFF"], np.float64)[ok].reshape(-1, 2, 10)
    return coeff


def write_stats(tx, stats: np.ndarray) -> None:
    """Stage the statistics index."""
    codecs.write_table(tx.stage(layout.STATS), stats, compression="none", extname="DVO_STATS")
