"""The working set of relastro: image-level chip arrays, and per partition the compact
per-measure arrays the iterations need, kept in a scratch folder between passes.

Starting point (every run, so a re-run never compounds corrections): each detector measure's
raw position is the chip WCS in Images (TAN: CRVAL, CRPIX, CDELT x PC, as addstar stored it
from the chip header) applied to (X_CCD + 1, Y_CCD + 1); the chip corrections of a previous
run (``RelAstro.fits``) only seed the first iteration. Measures used: DEP photcodes on chip
images, not flagged SKIP_ASTROM, with finite pixel coordinates.

Per-measure error per axis: ``hypot(X_CCD_ERR/100 * PLTSCALE, ASTROM_ERR_SYS(photcode))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dvo.averages import DEFAULT_POS_ERR
from dvo.flags import MeasFlags
from dvo.partition import Partition
from dvo.photcodes import Photcodes, PhotType

from .model import chip_uv, pixel_to_sky, sky_to_offsets
from .parallax import earth_positions, parallax_factors

__all__ = ["ChipTable", "MEASURE_COLUMNS", "AVERAGE_COLUMNS", "build", "save", "load", "YEAR"]

YEAR = 365.25 * 86400.0  # seconds per Julian year
MAS = 0.001  # arcsec
MEASURE_COLUMNS = [
    "RA", "DEC", "MAG", "X_CCD", "Y_CCD", "X_CCD_ERR", "Y_CCD_ERR", "PLTSCALE", "TIME",
    "TIME_MSEC", "IMAGE_ID", "PHOTCODE", "AVE_REF", "DB_FLAGS", "X_FIX", "Y_FIX",
    "X_OFF_KH", "Y_OFF_KH", "X_OFF_DCR", "Y_OFF_DCR",
]  # fmt: skip
AVERAGE_COLUMNS = ["RA", "DEC"]


@dataclass
class ChipTable:
    """Image-level arrays of the chip images (sorted by IMAGE_ID), with Earth positions."""

    image_id: np.ndarray
    row: np.ndarray  # row in Images
    photcode: np.ndarray
    crval: np.ndarray  # (n, 2)
    crpix: np.ndarray  # (n, 2)
    cd: np.ndarray  # (n, 2, 2) deg/pixel
    nx: np.ndarray
    ny: np.ndarray
    earth: np.ndarray  # (n, 3) au
    center: np.ndarray  # (n, 2) deg, RA_CENTER/DEC_CENTER

    @classmethod
    def from_images(cls, images: np.ndarray, photcodes: Photcodes) -> ChipTable:
        """The chip images: DEP photcodes with a real exposure and a size."""
        codes = images["PHOTCODE"]
        dep = photcodes.known(codes) & (images["PHOTCODE"] > 0)
        dep[dep] = photcodes.column("TYPE", codes[dep]) == PhotType.DEP
        keep = dep & (images["EXP_ID"] >= 0) & (images["NX"] > 1) & (images["NY"] > 1)
        rows = np.flatnonzero(keep)
        rows = rows[np.argsort(images["IMAGE_ID"][rows], kind="stable")]
        im = images[rows]
        cdelt = np.stack([im["CDELT1"], im["CDELT2"]], axis=1).astype(np.float64)
        pc = np.stack(
            [np.stack([im["PC1_1"], im["PC1_2"]], 1), np.stack([im["PC2_1"], im["PC2_2"]], 1)], 1
        ).astype(np.float64)
        return cls(
            image_id=im["IMAGE_ID"].astype(np.int64),
            row=rows,
            photcode=im["PHOTCODE"].astype(np.int64),
            crval=np.stack([im["CRVAL1"], im["CRVAL2"]], 1).astype(np.float64),
            crpix=np.stack([im["CRPIX1"], im["CRPIX2"]], 1).astype(np.float64),
            cd=pc * cdelt[:, :, None],
            nx=im["NX"].astype(np.float64),
            ny=im["NY"].astype(np.float64),
            earth=earth_positions(im["MJD_OBS"].astype(np.float64)),
            center=np.stack([im["RA_CENTER"], im["DEC_CENTER"]], 1).astype(np.float64),
        )

    def __len__(self) -> int:
        return len(self.image_id)

    def lookup(self, image_id: np.ndarray) -> np.ndarray:
        """Chip index of each IMAGE_ID (-1 when it is not a chip image)."""
        ids = np.asarray(image_id, np.int64)
        pos = np.clip(np.searchsorted(self.image_id, ids), 0, max(len(self) - 1, 0))
        hit = (self.image_id[pos] == ids) if len(self) else np.zeros(len(ids), bool)
        return np.where(hit, pos, -1)

    def raw_sky(self, chip: np.ndarray, x: np.ndarray, y: np.ndarray):
        """RA/Dec (deg) of zero-based pixels through the stored chip WCS."""
        return pixel_to_sky(
            x, y, self.crval[chip, 0], self.crval[chip, 1], self.crpix[chip, 0],
            self.crpix[chip, 1], self.cd[chip],
        )  # fmt: skip


def dep_measures(m: np.ndarray, chips: ChipTable, photcodes: Photcodes):
    """(mask, chip index) of the measures relastro fits (see the module docstring)."""
    chip = chips.lookup(m["IMAGE_ID"])
    ok = (chip >= 0) & ((m["DB_FLAGS"] & np.uint32(MeasFlags.SKIP_ASTROM)) == 0)
    ok &= np.isfinite(m["X_CCD"]) & np.isfinite(m["Y_CCD"])
    return ok, chip


def mean_epoch(m: np.ndarray, nobj: int, photcodes: Photcodes) -> np.ndarray:
    """Each object's MEAN_EPOCH as ``dvo.averages.recompute`` defines it (unix seconds)."""
    is_dep = photcodes.column("TYPE", m["PHOTCODE"]) == PhotType.DEP
    usable = is_dep & ((m["DB_FLAGS"] & np.uint32(MeasFlags.SKIP_ASTROM)) == 0)
    averef = m["AVE_REF"].astype(np.int64)
    n = np.bincount(averef[usable], minlength=nobj)[:nobj]
    s = np.bincount(averef[usable], m["TIME"][usable].astype(np.float64), minlength=nobj)[:nobj]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.round(s / n)


def _errors(m: np.ndarray, photcodes: Photcodes):
    sys_err = photcodes.column("ASTROM_ERR_SYS", m["PHOTCODE"]).astype(np.float64)
    out = []
    for col in ("X_CCD_ERR", "Y_CCD_ERR"):
        s = np.hypot(0.01 * m[col].astype(np.float64) * m["PLTSCALE"], sys_err)
        out.append(np.where(np.isfinite(s) & (s > 0), s, DEFAULT_POS_ERR))
    return out


def _reference(m, obj_of_row, anchor, t0, ref_codes) -> np.ndarray:
    """Per compact object: (tau, xi, eta, sigma, pm_a, pm_d, s_pm_a, s_pm_d, plx, s_plx)."""
    nobj = len(t0)
    ref = np.full((nobj, 10), np.nan)
    rows = np.flatnonzero(np.isin(m["PHOTCODE"], ref_codes) & (obj_of_row >= 0))
    if len(rows) == 0:
        return ref
    r, k = m[rows], obj_of_row[rows]
    t = r["TIME"].astype(np.float64) + r["TIME_MSEC"] / 1000.0
    xi, eta = sky_to_offsets(r["RA"], r["DEC"], anchor[0][k], anchor[1][k])
    sig = 0.005 * (r["X_CCD_ERR"].astype(np.float64) + r["Y_CCD_ERR"]) * r["PLTSCALE"]
    vals = [(t - t0[k]) / YEAR, xi, eta, sig]
    for col in ("X_FIX", "Y_FIX", "X_OFF_KH", "Y_OFF_KH", "X_OFF_DCR", "Y_OFF_DCR"):
        vals.append(r[col].astype(np.float64) * MAS)
    ref[k] = np.stack(vals, axis=1)
    for c in (3, 6, 7, 9):
        bad = ~(ref[:, c] > 0)
        ref[bad, c] = np.nan
    return ref


def build(part: Partition, chips: ChipTable, photcodes: Photcodes, ref_codes) -> dict:
    """The working set of one partition (arrays, see the module docstring); None if empty."""
    m, ave = part.measure, part.average
    ok, chip = dep_measures(m, chips, photcodes)
    rows = np.flatnonzero(ok)
    if len(rows) == 0:
        return None
    averef = m["AVE_REF"][rows].astype(np.int64)
    ave_rows, k = np.unique(averef, return_inverse=True)
    lut = np.full(len(ave), -1, np.int64)
    lut[ave_rows] = np.arange(len(ave_rows))
    obj_of_row = lut[m["AVE_REF"].astype(np.int64)]
    anchor = (ave["RA"][ave_rows].astype(np.float64), ave["DEC"][ave_rows].astype(np.float64))
    t0 = mean_epoch(m, len(ave), photcodes)[ave_rows]
    d, c = m[rows], chip[rows]
    ra, dec = chips.raw_sky(c, d["X_CCD"], d["Y_CCD"])
    xi, eta = sky_to_offsets(ra, dec, anchor[0][k], anchor[1][k])
    u, v = chip_uv(d["X_CCD"].astype(np.float64), d["Y_CCD"], chips.nx[c], chips.ny[c])
    pa, pd = parallax_factors(anchor[0][k], anchor[1][k], chips.earth[c])
    sx, sy = _errors(d, photcodes)
    t = d["TIME"].astype(np.float64) + d["TIME_MSEC"] / 1000.0
    f4 = np.float32
    return {
        "row": rows.astype(np.int32), "obj": k.astype(np.int32), "chip": c.astype(np.int32),
        "u": u.astype(f4), "v": v.astype(f4), "xi": xi.astype(f4), "eta": eta.astype(f4),
        "sx": sx.astype(f4), "sy": sy.astype(f4), "tau": ((t - t0[k]) / YEAR).astype(f4),
        "pa": pa.astype(f4), "pd": pd.astype(f4), "mag": d["MAG"].astype(f4),
        "ave_row": ave_rows.astype(np.int64), "ra0": anchor[0], "dec0": anchor[1],
        "ref": _reference(m, obj_of_row, anchor, t0, ref_codes),
    }  # fmt: skip


def save(ws: dict, path: Path) -> None:
    """Write a working set (uncompressed: it is read back once per iteration)."""
    with open(path, "wb") as fh:
        np.savez(fh, **ws)


def load(path: Path) -> dict:
    """Read a working set, with float32 columns widened to float64 for the kernels."""
    with np.load(path) as z:
        return {
            k: z[k].astype(np.float64) if z[k].dtype == np.float32 and k != "mag" else z[k]
            for k in z.files
        }
