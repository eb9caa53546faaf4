"""Which measurements relphot uses, and their per-measurement arrays for the kernels.

Quality cuts (per measurement): finite magnitude and error, ``MAG_ERR <= max_error`` (S/N),
no psphot flag of the photcode's PHOTOM_POOR/PHOTOM_BAD masks, no SKIP_PHOTOM or blend bit in
DB_FLAGS, a photcode that feeds an average filter, and either a chip image known to the model or
(when pinning by REF) a reference photcode. Per-star cuts (chi2, scatter: variables) and
clipping happen in the kernels, because they depend on the current solution.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dvo.flags import MeasFlags
from dvo.photcodes import Photcodes, PhotType
from dvo.photometry import calibrated_mag

from .model import MAP_GRID, Model, Pin

__all__ = ["Prepared", "prepare", "MEASURE_COLUMNS", "flat_cell"]

MEASURE_COLUMNS = [
    "MAG",
    "MAG_ERR",
    "PHOTCODE",
    "AIRMASS",
    "IMAGE_ID",
    "AVE_REF",
    "X_CCD",
    "Y_CCD",
    "DB_FLAGS",
    "PHOT_FLAGS",
    "MCAL_PSF",
    "M_FLAT",
]
_SKIP = np.uint32(MeasFlags.SKIP_PHOTOM | MeasFlags.BLEND_OBJ | MeasFlags.BLEND_MEAS)


@dataclass
class Prepared:
    """Kernel inputs of one partition, sorted by (object, average filter)."""

    starts: np.ndarray  # run boundaries, one run per (object, filter)
    y: np.ndarray  # PhotCat magnitude
    var: np.ndarray  # MAG_ERR^2 + sys_error^2
    img: np.ndarray  # model image index, -1 for reference measurements
    fcol: np.ndarray  # flat column, -1 none
    mcol: np.ndarray  # residual-map cell, -1 none
    zst: np.ndarray  # stored MCAL_PSF + M_FLAT (the calibration before relphot)
    isref: np.ndarray  # reference measurement

    @property
    def nmeasures(self) -> int:
        """Number of measurements kept."""
        return len(self.y)


def flat_cell(model: Model, j: np.ndarray, x: np.ndarray, y: np.ndarray, grid: int) -> np.ndarray:
    """Cell index ``iy * grid + ix`` of chip pixels (x, y) on images j (as the simulator's flat)."""
    ix = np.floor((np.asarray(x, np.float64) + 0.5) * grid / model.nx[j])
    iy = np.floor((np.asarray(y, np.float64) + 0.5) * grid / model.ny[j])
    ix = np.clip(np.nan_to_num(ix), 0, grid - 1).astype(np.int64)
    iy = np.clip(np.nan_to_num(iy), 0, grid - 1).astype(np.int64)
    return iy * grid + ix


def _usable(m: np.ndarray, photcodes: Photcodes, model: Model, j: np.ndarray) -> np.ndarray:
    opts = model.options
    codes = m["PHOTCODE"]
    known = photcodes.known(codes)
    ok = known & (photcodes.sec_slot(codes) >= 0)
    err = m["MAG_ERR"].astype(np.float64)
    ok &= np.isfinite(m["MAG"]) & np.isfinite(err) & (err > 0) & (err <= opts.max_error)
    mask = np.zeros(len(m), np.uint32)
    mask[known] = photcodes.column("PHOTOM_POOR_MASK", codes[known]).astype(
        np.uint32
    ) | photcodes.column("PHOTOM_BAD_MASK", codes[known]).astype(np.uint32)
    ok &= (m["PHOT_FLAGS"].astype(np.uint32) & mask) == 0
    ok &= (m["DB_FLAGS"].astype(np.uint32) & _SKIP) == 0
    isref = np.zeros(len(m), bool)
    isref[known] = photcodes.column("TYPE", codes[known]) == PhotType.REF
    use_ref = opts.pin is Pin.REF
    return ok & ((j >= 0) | (isref & use_ref))


def prepare(m: np.ndarray, photcodes: Photcodes, model: Model, nsec: int) -> Prepared:
    """Select and sort one partition's measurements (``m`` has :data:`MEASURE_COLUMNS`)."""
    j_all = model.image_index(m["IMAGE_ID"])
    keep = np.flatnonzero(_usable(m, photcodes, model, j_all))
    codes = m["PHOTCODE"][keep]
    key = m["AVE_REF"][keep].astype(np.int64) * nsec + photcodes.sec_slot(codes)
    order = np.argsort(key, kind="stable")
    keep, key, codes = keep[order], key[order], codes[order]
    mm = m[keep]
    j = j_all[keep]
    y = calibrated_mag(
        mm["MAG"],
        photcodes.column("C_LAM", codes),
        photcodes.column("K", codes),
        mm["AIRMASS"],
        np.zeros(len(mm)),
        np.zeros(len(mm)),
    )
    err = mm["MAG_ERR"].astype(np.float64)
    var = err * err + model.options.sys_error**2
    jj = np.maximum(j, 0)
    onchip = j >= 0
    fcol = np.full(len(mm), -1, np.int64)
    mcol = np.full(len(mm), -1, np.int64)
    if model.n_images and onchip.any():
        g = model.options.flat_grid
        if model.options.flat:
            cell = flat_cell(model, jj, mm["X_CCD"], mm["Y_CCD"], g)
            fcol = np.where(onchip, model.fbase[jj] + cell, -1)
        cell = flat_cell(model, jj, mm["X_CCD"], mm["Y_CCD"], MAP_GRID)
        mcol = np.where(onchip, model.mbase[jj] + cell, -1)
    zst = np.nan_to_num(mm["MCAL_PSF"].astype(np.float64)) + np.nan_to_num(
        mm["M_FLAT"].astype(np.float64)
    )
    starts = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1, [len(key)]]).astype(np.int64)
    if len(key) == 0:
        starts = np.zeros(1, np.int64)
    return Prepared(starts, y, var, j.astype(np.int64), fcol, mcol, zst, ~onchip)
