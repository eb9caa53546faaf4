"""Turn one simulated exposure into an smf file: headers, detection rows, optional lensing rows.

Column values that the simulation does not model are filled with plain, self-consistent
numbers: AP_MAG = AP_MAG_RAW = PSF_INST_MAG, KRON_FLUX = PSF_INST_FLUX, a circular Gaussian PSF
of the exposure's FWHM for the shape and moment columns, FLAGS = 1 (PSFMODEL), FLAGS2 = 0,
N_FRAMES = 1. CAL_PSF_MAG = PSF_INST_MAG + 2.5 log10(EXPTIME) + ZPT_OBS of the chip.

Chip header values: ZPT_OBS = 0.001*C_LAM + K*(AIRMASS - 1) - dZP_image + N(0, ZPT_ERR) with
ZPT_ERR = 0.01 (the camera stage's estimate; truth images.zpt_obs), CERROR = hypot(distortion
+ distortion_exposure, 0.02) arcsec, NASTRO = NSTARS = rows in the chip's table, FWHM_X =
FWHM_Y = seeing in pixels. The WCS is the pure TAN model of camera.py (no SIP terms): the
distortion lives only in the truth.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dvo.gpc1 import CHIP_NX, CHIP_NY, PIXEL_SCALE

from .camera import cd_matrix, chip_crpix
from .exposure import FWHM_TO_SIGMA, ChipSet
from .smf import (
    COLUMNS,
    LENSING,
    dtype_of,
    empty_image_hdu,
    pack_records,
    primary_hdu,
    table_hdu,
    write_atomic,
)

__all__ = ["write_smf", "smf_bytes", "RowBuffers", "OBSERVATORY"]

#: Haleakala (deg, deg, m).
OBSERVATORY = (20.7071, -156.2571, 3055.0)


def _primary_cards(exp: np.void) -> list[tuple]:
    lat, lon, elev = OBSERVATORY
    return [
        ("TELESCOP", "PS1"),
        ("INSTRUME", "GPC1"),
        ("EXP_NAME", str(exp["exp_name"])),
        ("EXP_ID", int(exp["exp_id"])),
        ("FILTER", str(exp["filter"])),
        ("MJD-OBS", float(exp["mjd"])),
        ("EXPTIME", float(exp["exptime"])),
        ("AIRMASS", float(exp["airmass"])),
        ("RA", float(exp["ra"]), "boresight (deg)"),
        ("DEC", float(exp["dec"]), "boresight (deg)"),
        ("POSANGLE", float(exp["posangle"])),
        ("OBS-LAT", lat),
        ("OBS-LONG", lon),
        ("OBS-ELEV", elev),
    ]


def _chip_cards(exp: np.void, name: str, image: np.void, nstars: int) -> list[tuple]:
    cx, cy = int(name[2]), int(name[3])
    crpix1, crpix2 = chip_crpix(cx, cy)
    cd = cd_matrix(float(exp["posangle"]))
    fwhm_px = float(exp["fwhm"]) / PIXEL_SCALE
    return [
        ("IMNAXIS1", CHIP_NX),
        ("IMNAXIS2", CHIP_NY),
        ("WCSAXES", 2),
        ("CTYPE1", "RA---TAN"),
        ("CTYPE2", "DEC--TAN"),
        ("CUNIT1", "deg"),
        ("CUNIT2", "deg"),
        ("RADESYS", "ICRS"),
        ("CRVAL1", float(exp["ra"])),
        ("CRVAL2", float(exp["dec"])),
        ("CRPIX1", float(crpix1)),
        ("CRPIX2", float(crpix2)),
        ("CD1_1", float(cd[0, 0])),
        ("CD1_2", float(cd[0, 1])),
        ("CD2_1", float(cd[1, 0])),
        ("CD2_2", float(cd[1, 1])),
        ("ZPT_OBS", float(image["zpt_obs"])),
        ("ZPT_ERR", float(image["zpt_err"])),
        ("CERROR", float(image["cerror"])),
        ("NASTRO", nstars),
        ("FWHM_X", fwhm_px),
        ("FWHM_Y", fwhm_px),
        ("NSTARS", nstars),
        ("IMAGEID", int(image["imageid"])),
    ]


class RowBuffers:
    """Two reusable word buffers for detection records, alternated between exposures.

    The rows of exposure k live in buffer k % 2 until its file is written; a writer that
    finishes exposure k before exposure k + 2 is packed may reuse them safely.
    """

    def __init__(self) -> None:
        self._buffers = [np.empty(0, np.uint32), np.empty(0, np.uint32)]

    def get(self, slot: int, n_words: int) -> np.ndarray:
        """A uint32 buffer of at least ``n_words`` words for slot 0 or 1."""
        if len(self._buffers[slot]) < n_words:
            self._buffers[slot] = np.empty(int(n_words * 1.2) + 1024, np.uint32)
        return self._buffers[slot]


def _fill_rows(
    fmt: str, exp: np.void, det: dict, images: np.ndarray, out: np.ndarray | None = None
) -> np.ndarray:
    """Detection records (dtype of the format) of all detections of an exposure."""
    s = float(exp["fwhm"]) / PIXEL_SCALE * FWHM_TO_SIGMA
    t = float(exp["exptime"])
    r_ap = 2.0 * s / FWHM_TO_SIGMA
    values = {
        "IPP_IDET": det["ipp_idet"],
        "X_PSF": det["x"],
        "Y_PSF": det["y"],
        "X_PSF_SIG": det["pos_sig"] / PIXEL_SCALE,
        "Y_PSF_SIG": det["pos_sig"] / PIXEL_SCALE,
        "POSANGLE": float(exp["posangle"]),
        "PLTSCALE": PIXEL_SCALE,
        "PSF_INST_MAG": det["mag"],
        "PSF_INST_MAG_SIG": det["mag_sig"],
        "PSF_INST_FLUX": det["flux"],
        "PSF_INST_FLUX_SIG": det["flux_sig"],
        "AP_MAG": det["mag"],
        "AP_MAG_RAW": det["mag"],
        "AP_MAG_RADIUS": r_ap,
        "AP_FLUX": det["flux"],
        "AP_FLUX_SIG": det["flux_sig"],
        "AP_NPIX": int(np.pi * r_ap * r_ap),
        "CAL_PSF_MAG": det["mag"] + 2.5 * np.log10(t) + images["zpt_obs"][det["chip"]],
        "CAL_PSF_MAG_SIG": images["zpt_err"][det["chip"]],
        "RA_PSF": det["ra"],
        "DEC_PSF": det["dec"],
        "PEAK_FLUX_AS_MAG": det["mag"] + 2.5 * np.log10(2 * np.pi * s * s),
        "SKY": float(exp["sky"]) / t,
        "SKY_SIGMA": np.sqrt(float(exp["sky"])) / t,
        "PSF_CHISQ": 1.0,
        "PSF_MAJOR": s,
        "PSF_MINOR": s,
        "PSF_FWHM_MAJ": s / FWHM_TO_SIGMA,
        "PSF_FWHM_MIN": s / FWHM_TO_SIGMA,
        "PSF_QF": 0.99,
        "PSF_QF_PERFECT": 0.99,
        "PSF_NDOF": int(np.pi * r_ap * r_ap) - 3,
        "PSF_NPIX": int(np.pi * r_ap * r_ap),
        "MOMENTS_XX": s * s,
        "MOMENTS_YY": s * s,
        "MOMENTS_R1": s * np.sqrt(np.pi / 2),
        "MOMENTS_RH": np.sqrt(s * np.sqrt(2 * np.log(2))),
        "KRON_FLUX": det["flux"],
        "KRON_FLUX_ERR": det["flux_sig"],
        "KRON_FLUX_INNER": 0.9 * det["flux"],
        "KRON_FLUX_OUTER": 0.05 * det["flux"],
        "SKY_LIMIT_RAD": 4.0 * s / FWHM_TO_SIGMA,
        "FLAGS": 1,
        "N_FRAMES": 1,
    }
    return pack_records(COLUMNS[fmt], len(det["x"]), values, out)


def _lensing_rows(exp: np.void, det: dict) -> np.ndarray:
    """Lensing records: a round Gaussian PSF's smear/shear terms and aperture fluxes."""
    rows = np.zeros(len(det["x"]), dtype_of(LENSING))
    s2 = (float(exp["fwhm"]) / PIXEL_SCALE * FWHM_TO_SIGMA) ** 2
    rows["IPP_IDET"] = det["ipp_idet"]
    for kind in ("SM_OBJ", "SH_OBJ", "SM_PSF", "SH_PSF"):
        rows[f"X11_{kind}"] = s2
        rows[f"X22_{kind}"] = s2
    for r, frac in (("R5", 0.85), ("R6", 0.92), ("R7", 0.96)):
        rows[f"FLUX_AP_{r}"] = frac * det["flux"]
        rows[f"FLUX_ERR_AP_{r}"] = det["flux_sig"]
        rows[f"FLUX_STD_AP_{r}"] = det["flux_sig"]
        rows[f"FLUX_FIL_AP_{r}"] = 1.0
    return rows


def write_smf(
    path: Path, fmt: str, exp: np.void, chips: ChipSet, images: np.ndarray, det: dict, lensing: bool
) -> None:
    """Write one exposure's smf file (see :func:`smf_bytes` for the parameters)."""
    write_atomic(path, smf_bytes(fmt, exp, chips, images, det, lensing))


def smf_bytes(
    fmt: str,
    exp: np.void,
    chips: ChipSet,
    images: np.ndarray,
    det: dict,
    lensing: bool,
    buffers: RowBuffers | None = None,
    slot: int = 0,
) -> list[bytes | memoryview]:
    """The bytes of one exposure's smf file, as a list of buffers in file order.

    Parameters
    ----------
    fmt : str
        ``'PS1_V5'`` or ``'PS1_V3'``.
    exp : numpy.void
        The exposure row.
    chips : ChipSet
        Chips in use; ``images`` has one row per chip in this order.
    images : ndarray
        Image rows of this exposure (``imageid``, ``dead``, ``zpt_obs``, ``zpt_err``, ``cerror``).
    det : dict of ndarray
        Detections sorted by chip (from ``simulate_exposure``).
    lensing : bool
        Also write ``XYnn.lensing`` tables.
    buffers, slot : RowBuffers, int
        Optional reusable memory for the detection records (the result refers to it).
    """
    words = len(det["x"]) * dtype_of(COLUMNS[fmt]).itemsize // 4
    rows = _fill_rows(fmt, exp, det, images, None if buffers is None else buffers.get(slot, words))
    lens = _lensing_rows(exp, det) if lensing else None
    bounds = np.searchsorted(det["chip"], np.arange(len(chips.names) + 1))
    chunks = [primary_hdu(_primary_cards(exp))]
    for k, name in enumerate(chips.names):
        if images["dead"][k]:
            continue
        lo, hi = bounds[k], bounds[k + 1]
        chunks.append(empty_image_hdu(f"{name}.hdr", _chip_cards(exp, name, images[k], hi - lo)))
        chunks += table_hdu(f"{name}.psf", COLUMNS[fmt], rows[lo:hi], [("EXTTYPE", fmt)])
        if lens is not None:
            chunks += table_hdu(f"{name}.lensing", LENSING, lens[lo:hi])
    return chunks
