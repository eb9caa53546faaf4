"""Read smf exposure catalogues into Image and Measure rows.

The layout is fixed by ``shared/reference/smf-format.md``: a primary header with exposure
keywords, then per chip an ``XYnn.hdr`` header HDU and an ``XYnn.psf`` detection table (CMF
PS1_V3 or PS1_V5), and optionally ``XYnn.lensing``. Anything malformed raises IngestError
naming the file and the problem; detections with non-finite position or magnitude are dropped
and counted, as the format says.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo.errors import IngestError, SchemaError
from dvo.photcodes import Photcodes
from dvo.photometry import stored_mag
from dvo.schema import IMAGE, LENSING, MEASURE
from dvo.skytable import angular_distance
from dvo.times import mjd_to_time
from dvo.wcs import tan_pixel_to_sky

__all__ = ["IngestBatch", "read_smf", "EXPOSURE_KEYS", "REQUIRED_COLUMNS"]

EXPOSURE_KEYS = ("EXP_NAME", "EXP_ID", "FILTER", "MJD-OBS", "EXPTIME", "AIRMASS")
REQUIRED_COLUMNS = (
    "IPP_IDET",
    "X_PSF",
    "Y_PSF",
    "RA_PSF",
    "DEC_PSF",
    "PSF_INST_MAG",
    "PSF_INST_MAG_SIG",
)
CHIP_KEYS = ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "IMNAXIS1", "IMNAXIS2")
MAG_PER_FLUX = 2.5 / np.log(10.0)


@dataclass
class IngestBatch:
    """What one input file adds: images, and measurements tied to them by local index.

    ``meas_image[i]`` is the row of ``images`` that measurement ``i`` comes from; IMAGE_ID and
    the object links are filled in by addstar.
    """

    source: str
    images: np.ndarray
    measure: np.ndarray
    meas_image: np.ndarray
    lensing: np.ndarray = field(default_factory=lambda: LENSING.empty(0))
    lens_meas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rejected: int = 0
    exp_id: int = -1

    @property
    def ndetections(self) -> int:
        """Measurements to be added."""
        return len(self.measure)


def read_smf(path: str | Path, photcodes: Photcodes) -> IngestBatch:
    """Read one smf file; raises IngestError naming the file and the problem."""
    import fitsio

    path = Path(path)
    try:
        with fitsio.FITS(str(path)) as fits:
            phdr = fits[0].read_header()
            names = [hdu.get_extname() for hdu in fits]
            chips = _chip_names(names, path)
            exposure = _exposure(phdr, path)
            parts = [_read_chip(fits, chip, names, exposure, photcodes, path) for chip in chips]
    except IngestError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise IngestError(f"unreadable FITS ({_one_line(exc)})", file=str(path)) from None
    return _assemble(path, exposure, parts, photcodes)


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


def _chip_names(names: list[str], path: Path) -> list[str]:
    chips = sorted({n[:-4] for n in names if n.endswith(".hdr")})
    for chip in chips:
        if f"{chip}.psf" not in names:
            raise IngestError(f"chip {chip} has a header but no {chip}.psf table", file=str(path))
    return chips


def _exposure(phdr, path: Path) -> dict:
    missing = [k for k in EXPOSURE_KEYS if k not in phdr]
    if missing:
        raise IngestError(f"primary header lacks {', '.join(missing)}", file=str(path))
    exp = {k: phdr[k] for k in EXPOSURE_KEYS}
    exp["INSTRUME"] = str(phdr.get("INSTRUME", "GPC1")).strip()
    for key in ("MJD-OBS", "EXPTIME", "AIRMASS"):
        try:
            exp[key] = float(exp[key])
        except (TypeError, ValueError):
            raise IngestError(
                f"keyword {key} is not a number: {exp[key]!r}", file=str(path)
            ) from None
        if not np.isfinite(exp[key]):
            raise IngestError(f"keyword {key} is not finite", file=str(path))
    if exp["EXPTIME"] <= 0:
        raise IngestError(f"EXPTIME must be positive, got {exp['EXPTIME']}", file=str(path))
    exp["FILTER"] = str(exp["FILTER"]).strip()
    exp["EXP_NAME"] = str(exp["EXP_NAME"]).strip()
    exp["EXP_ID"] = int(exp["EXP_ID"])
    exp["RA"], exp["DEC"] = float(phdr.get("RA", np.nan)), float(phdr.get("DEC", np.nan))
    exp["LAT"] = float(phdr.get("OBS-LAT", np.nan))
    return exp


def _read_chip(
    fits, chip: str, names: list[str], exp: dict, photcodes: Photcodes, path: Path
) -> dict:
    hdr = fits[f"{chip}.hdr"].read_header()
    missing = [k for k in CHIP_KEYS if k not in hdr]
    if missing:
        raise IngestError(f"{chip}.hdr lacks {', '.join(missing)}", file=str(path))
    pname = f"{exp['INSTRUME']}.{exp['FILTER']}.{chip}"
    try:
        code = photcodes.code(pname)
    except SchemaError:
        raise IngestError(f"unknown photcode {pname}", file=str(path)) from None
    table = fits[f"{chip}.psf"]
    cols = table.get_colnames()
    absent = [c for c in REQUIRED_COLUMNS if c not in cols]
    if absent:
        raise IngestError(f"{chip}.psf lacks columns {', '.join(absent)}", file=str(path))
    data = table.read() if table.get_nrows() else np.zeros(0, _empty_dtype(table))
    lens = fits[f"{chip}.lensing"].read() if f"{chip}.lensing" in names else None
    if lens is not None and len(lens) and "IPP_IDET" not in lens.dtype.names:
        raise IngestError(f"{chip}.lensing lacks column IPP_IDET", file=str(path))
    return {"chip": chip, "hdr": hdr, "code": code, "data": data, "lens": lens}


def _empty_dtype(table) -> np.dtype:
    return table.get_rec_dtype()[0]


def _assemble(path: Path, exp: dict, parts: list[dict], photcodes: Photcodes) -> IngestBatch:
    images = IMAGE.empty(len(parts) + 1)
    _exposure_row(images[0], path, exp, photcodes)
    meas, owner, lens, lens_meas, rejected, offset = [], [], [], [], 0, 0
    for i, part in enumerate(parts, start=1):
        _chip_row(images[i : i + 1], path, exp, part, photcodes)
        m, keep = _measures(part, exp, images[i], path)
        rejected += int((~keep).sum())
        meas.append(m[keep])
        owner.append(np.full(int(keep.sum()), i, np.int64))
        if part["lens"] is not None and len(part["lens"]):
            rows, idx = _lensing(part["lens"], part["data"]["IPP_IDET"][keep], path, part["chip"])
            lens.append(rows)
            lens_meas.append(idx + offset)
        offset += int(keep.sum())
    images["NSTAR"][0] = offset
    return IngestBatch(
        source=str(path),
        images=images,
        measure=np.concatenate(meas) if meas else MEASURE.empty(0),
        meas_image=np.concatenate(owner) if owner else np.zeros(0, np.int64),
        lensing=np.concatenate(lens) if lens else LENSING.empty(0),
        lens_meas=np.concatenate(lens_meas) if lens_meas else np.zeros(0, np.int64),
        rejected=rejected,
        exp_id=exp["EXP_ID"],
    )


def _exposure_row(row, path: Path, exp: dict, photcodes: Photcodes) -> None:
    row["NAME"] = f"{path.name}"[:117]
    row["CTYPE"] = b"RA---DIS"
    row["CRVAL1"], row["CRVAL2"] = exp["RA"], exp["DEC"]
    row["TZERO"] = mjd_to_time(exp["MJD-OBS"])[0]
    row["MJD_OBS"], row["EXP_ID"] = exp["MJD-OBS"], exp["EXP_ID"]
    row["SECZ"], row["EXPTIME"], row["LAT"] = exp["AIRMASS"], exp["EXPTIME"], exp["LAT"]
    row["RA_CENTER"], row["DEC_CENTER"] = exp["RA"], exp["DEC"]
    row["EXTERN_ID"] = np.int32(exp["EXP_ID"] & 0x7FFFFFFF)
    row["MCAL_PSF"] = row["MCAL_APER"] = 0.0
    row["PHOTCODE"] = 0
    for name in ("APMIFIT", "DAPMIFIT", "DMCAL", "XM"):
        row[name] = 0.0


def _cd_matrix(hdr) -> np.ndarray:
    if "CD1_1" in hdr:
        return np.array(
            [[hdr["CD1_1"], hdr.get("CD1_2", 0.0)], [hdr.get("CD2_1", 0.0), hdr["CD2_2"]]],
            np.float64,
        )
    c1, c2 = hdr.get("CDELT1", 1.0), hdr.get("CDELT2", 1.0)
    pc = np.array(
        [
            [hdr.get("PC1_1", 1.0), hdr.get("PC1_2", 0.0)],
            [hdr.get("PC2_1", 0.0), hdr.get("PC2_2", 1.0)],
        ],
        np.float64,
    )
    return pc * np.array([[c1], [c2]])


def _chip_row(rows, path: Path, exp: dict, part: dict, photcodes: Photcodes) -> None:
    hdr, row = part["hdr"], rows[0]
    cd = _cd_matrix(hdr)
    cdelt = np.hypot(cd[:, 0], cd[:, 1])
    row["CRVAL1"], row["CRVAL2"] = hdr["CRVAL1"], hdr["CRVAL2"]
    row["CRPIX1"], row["CRPIX2"] = hdr["CRPIX1"], hdr["CRPIX2"]
    row["CDELT1"], row["CDELT2"] = cdelt
    row["PC1_1"], row["PC1_2"] = cd[0] / cdelt[0]
    row["PC2_1"], row["PC2_2"] = cd[1] / cdelt[1]
    row["POLYTERMS"], row["NPOLYTERMS"] = 0.0, 1
    row["CTYPE"] = str(hdr.get("CTYPE1", "RA---TAN"))[:15]
    nx, ny = int(hdr["IMNAXIS1"]), int(hdr["IMNAXIS2"])
    row["NX"], row["NY"] = nx, ny
    corner_x = np.array([(nx + 1) / 2, 1, nx, 1, nx])
    corner_y = np.array([(ny + 1) / 2, 1, 1, ny, ny])
    ra, dec = tan_pixel_to_sky(
        corner_x, corner_y, (hdr["CRVAL1"], hdr["CRVAL2"]), (hdr["CRPIX1"], hdr["CRPIX2"]), cd
    )
    row["RA_CENTER"], row["DEC_CENTER"] = ra[0], dec[0]
    row["RADIUS"] = angular_distance(ra[0], dec[0], ra[1:], dec[1:]).max()
    row["TZERO"] = mjd_to_time(exp["MJD-OBS"])[0]
    row["MJD_OBS"], row["EXP_ID"] = exp["MJD-OBS"], exp["EXP_ID"]
    row["NSTAR"] = len(part["data"])
    row["SECZ"], row["EXPTIME"], row["LAT"] = exp["AIRMASS"], exp["EXPTIME"], exp["LAT"]
    row["PHOTCODE"] = part["code"]
    row["NAME"] = f"{path.name}[{part['chip']}.hdr]"[:117]
    row["CCDNUM"] = int(part["chip"][2:]) if part["chip"][2:].isdigit() else 0
    row["EXTERN_ID"] = int(hdr.get("IMAGEID", 0))
    pixscale = 3600.0 * float(np.mean(cdelt))
    row["CERROR"] = np.clip(50.0 * float(hdr.get("CERROR", 0.0)), 0, 255)
    row["FWHM_X"] = np.clip(25.0 * float(hdr.get("FWHM_X", 0.0)) * pixscale, 0, 255)
    row["FWHM_Y"] = np.clip(25.0 * float(hdr.get("FWHM_Y", 0.0)) * pixscale, 0, 255)
    c_lam = float(photcodes.column("C_LAM", [part["code"]])[0])
    k = float(photcodes.column("K", [part["code"]])[0])
    zpt = float(hdr.get("ZPT_OBS", np.nan))
    mcal = 0.001 * c_lam + k * (exp["AIRMASS"] - 1.0) - zpt if np.isfinite(zpt) else 0.0
    row["MCAL_PSF"] = row["MCAL_APER"] = mcal
    row["DMCAL"] = float(hdr.get("ZPT_ERR", 0.0))
    for name in ("APMIFIT", "DAPMIFIT", "XM"):
        row[name] = 0.0


def _col(data: np.ndarray, name: str, fill: float = np.nan) -> np.ndarray:
    if name in data.dtype.names:
        return data[name].astype(np.float64)
    return np.full(len(data), fill)


def _centi(values: np.ndarray) -> np.ndarray:
    return np.clip(np.nan_to_num(values * 100.0), -32767, 32767).astype(np.int16)


def _measures(part: dict, exp: dict, image, path: Path) -> tuple[np.ndarray, np.ndarray]:
    d, n = part["data"], len(part["data"])
    ra, dec = _col(d, "RA_PSF"), _col(d, "DEC_PSF")
    inst, inst_err = _col(d, "PSF_INST_MAG"), _col(d, "PSF_INST_MAG_SIG")
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(inst)
    if ((np.abs(dec[keep]) > 90) | (ra[keep] < -360) | (ra[keep] > 720)).any():
        raise IngestError(f"{part['chip']}.psf has coordinates out of range", file=str(path))
    t = exp["EXPTIME"]
    m = MEASURE.empty(n)
    m["RA"], m["DEC"] = ra % 360.0, dec
    m["MAG"], m["MAG_ERR"] = stored_mag(inst, t), inst_err
    m["M_APER"] = stored_mag(_col(d, "AP_MAG"), t)
    ap_flux, ap_err = _col(d, "AP_FLUX"), _col(d, "AP_FLUX_SIG")
    m["M_APER_ERR"] = MAG_PER_FLUX * ap_err / ap_flux
    kron, kron_err = _col(d, "KRON_FLUX"), _col(d, "KRON_FLUX_ERR")
    with np.errstate(all="ignore"):
        m["M_KRON"] = stored_mag(-2.5 * np.log10(kron), t)
        m["M_KRON_ERR"] = MAG_PER_FLUX * kron_err / kron
    m["M_TIME"] = 2.5 * np.log10(t)
    m["FLUX_PSF"], m["FLUX_PSF_ERR"] = (
        _col(d, "PSF_INST_FLUX") / t,
        _col(d, "PSF_INST_FLUX_SIG") / t,
    )
    m["FLUX_KRON"], m["FLUX_KRON_ERR"] = kron / t, kron_err / t
    m["FLUX_AP"], m["FLUX_AP_ERR"] = ap_flux / t, ap_err / t
    m["AIRMASS"] = exp["AIRMASS"]
    m["X_CCD"], m["Y_CCD"] = _col(d, "X_PSF"), _col(d, "Y_PSF")
    m["X_FIX"], m["Y_FIX"] = m["X_CCD"], m["Y_CCD"]
    for name in ("X_OFF_KH", "Y_OFF_KH", "X_OFF_DCR", "Y_OFF_DCR", "X_OFF_CAM", "Y_OFF_CAM"):
        m[name] = 0.0
    m["M_FLAT"] = 0.0
    m["MCAL_PSF"] = m["MCAL_APER"] = image["MCAL_PSF"]
    m["MAG_CAL_ERR"] = image["DMCAL"]
    m["SKY_FLUX"], m["SKY_FLUX_ERR"] = _col(d, "SKY") / t, _col(d, "SKY_SIGMA") / t
    m["TIME"], m["TIME_MSEC"] = mjd_to_time(exp["MJD-OBS"])
    m["DET_ID"] = d["IPP_IDET"].astype(np.uint32)
    m["PSF_QF"], m["PSF_QF_PEFECT"] = _col(d, "PSF_QF"), _col(d, "PSF_QF_PERFECT")
    m["PSF_CHISQ"], m["EXT_NSIGMA"] = _col(d, "PSF_CHISQ"), _col(d, "EXT_NSIGMA")
    m["PSF_NDOF"] = np.nan_to_num(_col(d, "PSF_NDOF", 0)).astype(np.int32)
    m["PSF_NPIX"] = np.nan_to_num(_col(d, "PSF_NPIX", 0)).astype(np.int32)
    m["FWHM_MAJOR"], m["FWHM_MINOR"] = (
        _centi(_col(d, "PSF_FWHM_MAJ")),
        _centi(_col(d, "PSF_FWHM_MIN")),
    )
    theta = np.nan_to_num(_col(d, "PSF_THETA", 0.0)) % 360.0
    m["PSF_THETA"] = (theta * 0xFFFF / 360.0).astype(np.uint16).view(np.int16)
    for src, dst in (("MOMENTS_XX", "MXX"), ("MOMENTS_XY", "MXY"), ("MOMENTS_YY", "MYY")):
        m[dst] = _centi(_col(d, src))
    m["X_CCD_ERR"], m["Y_CCD_ERR"] = _centi(_col(d, "X_PSF_SIG")), _centi(_col(d, "Y_PSF_SIG"))
    posangle = np.nan_to_num(_col(d, "POSANGLE", 0.0)) % 360.0
    m["POSANGLE"] = (posangle * 0xFFFF / 360.0).astype(np.uint16).view(np.int16)
    pltscale = _col(d, "PLTSCALE")
    default_scale = 3600.0 * float(image["CDELT1"])
    m["PLTSCALE"] = np.where(np.isfinite(pltscale) & (pltscale > 0), pltscale, default_scale)
    m["PHOTCODE"] = part["code"]
    m["PHOT_FLAGS"] = np.nan_to_num(_col(d, "FLAGS", 0)).astype(np.uint32)
    m["PHOT_FLAGS2"] = np.nan_to_num(_col(d, "FLAGS2", 0)).astype(np.uint32)
    return m, keep


def _lensing(lens: np.ndarray, det_ids: np.ndarray, path: Path, chip: str):
    """Lensing rows whose IPP_IDET matches a kept detection, and that detection's index."""
    if len(det_ids) == 0:
        return LENSING.empty(0), np.zeros(0, np.int64)
    order = np.argsort(det_ids, kind="stable")
    pos = np.clip(np.searchsorted(det_ids[order], lens["IPP_IDET"]), 0, len(order) - 1)
    ok = det_ids[order][pos] == lens["IPP_IDET"]
    rows = LENSING.empty(int(ok.sum()))
    for name in LENSING.names:
        if name in lens.dtype.names:
            rows[name] = lens[name][ok]
    rows["DET_ID"] = lens["IPP_IDET"][ok]
    return rows, order[pos[ok]]
