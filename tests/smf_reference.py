"""An independent smf reader for the tests: fitsio reads every HDU, one chip at a time.

It is the straightforward per-chip form of ``shared/reference/smf-format.md`` (the reader
dvo.smf had before it parsed the FITS structure itself), without the validation: it returns
what a well-formed file holds, for comparison with :func:`dvo.smf.read_smf` array by array.
"""

from __future__ import annotations

import fitsio
import numpy as np
from dvo.skytable import angular_distance

from dvo.photometry import stored_mag
from dvo.schema import IMAGE, LENSING, MEASURE
from dvo.times import mjd_to_time
from dvo.wcs import tan_pixel_to_sky

MAG_PER_FLUX = 2.5 / np.log(10.0)


def reference_smf(path, photcodes) -> dict:
    """images, measure, meas_image, lensing, lens_meas, rejected and exp_id of one smf."""
    with fitsio.FITS(str(path)) as fits:
        phdr = fits[0].read_header()
        names = [hdu.get_extname() for hdu in fits]
        chips = sorted({n[:-4] for n in names if n.endswith(".hdr")})
        exp = {k: phdr[k] for k in ("EXP_ID", "FILTER", "MJD-OBS", "EXPTIME", "AIRMASS")}
        exp["FILTER"] = str(exp["FILTER"]).strip()
        for key in ("MJD-OBS", "EXPTIME", "AIRMASS"):
            exp[key] = float(exp[key])
        exp["LAT"] = float(phdr.get("OBS-LAT", np.nan))
        instrument = str(phdr.get("INSTRUME", "GPC1")).strip()
        parts = []
        for chip in chips:
            lens = fits[f"{chip}.lensing"].read() if f"{chip}.lensing" in names else None
            table = fits[f"{chip}.psf"]
            data = table.read() if table.get_nrows() else np.zeros(0, table.get_rec_dtype()[0])
            code = photcodes.code(f"{instrument}.{exp['FILTER']}.{chip}")
            parts.append((chip, fits[f"{chip}.hdr"].read_header(), code, data, lens))
    images = IMAGE.empty(len(parts) + 1)
    _exposure_row(images[0], path, phdr, exp)
    meas, owner, lens_rows, lens_meas, rejected, offset = [], [], [], [], 0, 0
    for i, (chip, hdr, code, data, lens) in enumerate(parts, start=1):
        _chip_row(images[i], path, exp, chip, hdr, code, len(data), photcodes)
        m, keep = _measures(data, exp, images[i], code)
        rejected += int((~keep).sum())
        meas.append(m[keep])
        owner.append(np.full(int(keep.sum()), i, np.int64))
        if lens is not None and len(lens):
            rows, idx = _lensing(lens, data["IPP_IDET"][keep])
            lens_rows.append(rows)
            lens_meas.append(idx + offset)
        offset += int(keep.sum())
    images["NSTAR"][0] = offset
    return {
        "images": images,
        "measure": np.concatenate(meas) if meas else MEASURE.empty(0),
        "meas_image": np.concatenate(owner) if owner else np.zeros(0, np.int64),
        "lensing": np.concatenate(lens_rows) if lens_rows else LENSING.empty(0),
        "lens_meas": np.concatenate(lens_meas) if lens_meas else np.zeros(0, np.int64),
        "rejected": rejected,
        "exp_id": int(exp["EXP_ID"]),
    }


def _exposure_row(row, path, phdr, exp) -> None:
    ra, dec = float(phdr.get("RA", np.nan)), float(phdr.get("DEC", np.nan))
    row["NAME"] = path.name[:117]
    row["CTYPE"] = b"RA---DIS"
    row["CRVAL1"], row["CRVAL2"] = ra, dec
    row["TZERO"] = mjd_to_time(exp["MJD-OBS"])[0]
    row["MJD_OBS"], row["EXP_ID"] = exp["MJD-OBS"], exp["EXP_ID"]
    row["SECZ"], row["EXPTIME"], row["LAT"] = exp["AIRMASS"], exp["EXPTIME"], exp["LAT"]
    row["RA_CENTER"], row["DEC_CENTER"] = ra, dec
    row["EXTERN_ID"] = np.int32(int(exp["EXP_ID"]) & 0x7FFFFFFF)
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
    pc = [
        [hdr.get("PC1_1", 1.0), hdr.get("PC1_2", 0.0)],
        [hdr.get("PC2_1", 0.0), hdr.get("PC2_2", 1.0)],
    ]
    return np.array(pc, np.float64) * np.array([[c1], [c2]])


def _chip_row(row, path, exp, chip, hdr, code, nstar, photcodes) -> None:
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
    ra, dec = tan_pixel_to_sky(
        np.array([(nx + 1) / 2, 1, nx, 1, nx]),
        np.array([(ny + 1) / 2, 1, 1, ny, ny]),
        (hdr["CRVAL1"], hdr["CRVAL2"]),
        (hdr["CRPIX1"], hdr["CRPIX2"]),
        cd,
    )
    row["RA_CENTER"], row["DEC_CENTER"] = ra[0], dec[0]
    row["RADIUS"] = angular_distance(ra[0], dec[0], ra[1:], dec[1:]).max()
    row["TZERO"] = mjd_to_time(exp["MJD-OBS"])[0]
    row["MJD_OBS"], row["EXP_ID"] = exp["MJD-OBS"], exp["EXP_ID"]
    row["NSTAR"] = nstar
    row["SECZ"], row["EXPTIME"], row["LAT"] = exp["AIRMASS"], exp["EXPTIME"], exp["LAT"]
    row["PHOTCODE"] = code
    row["NAME"] = f"{path.name}[{chip}.hdr]"[:117]
    row["CCDNUM"] = int(chip[2:]) if chip[2:].isdigit() else 0
    row["EXTERN_ID"] = int(hdr.get("IMAGEID", 0))
    pixscale = 3600.0 * float(np.mean(cdelt))
    row["CERROR"] = np.clip(50.0 * float(hdr.get("CERROR", 0.0)), 0, 255)
    row["FWHM_X"] = np.clip(25.0 * float(hdr.get("FWHM_X", 0.0)) * pixscale, 0, 255)
    row["FWHM_Y"] = np.clip(25.0 * float(hdr.get("FWHM_Y", 0.0)) * pixscale, 0, 255)
    c_lam = float(photcodes.column("C_LAM", [code])[0])
    k = float(photcodes.column("K", [code])[0])
    zpt = float(hdr.get("ZPT_OBS", np.nan))
    mcal = 0.001 * c_lam + k * (exp["AIRMASS"] - 1.0) - zpt if np.isfinite(zpt) else 0.0
    row["MCAL_PSF"] = row["MCAL_APER"] = mcal
    row["DMCAL"] = float(hdr.get("ZPT_ERR", 0.0))
    for name in ("APMIFIT", "DAPMIFIT", "XM"):
        row[name] = 0.0


def _col(data, name, fill=np.nan):
    if name in data.dtype.names:
        return data[name].astype(np.float64)
    return np.full(len(data), fill)


def _centi(values):
    return np.clip(np.nan_to_num(values * 100.0), -32767, 32767).astype(np.int16)


def _angle16(values):
    return (np.nan_to_num(values) % 360.0 * 0xFFFF / 360.0).astype(np.uint16).view(np.int16)


def _measures(d, exp, image, code):
    ra, dec = _col(d, "RA_PSF"), _col(d, "DEC_PSF")
    inst = _col(d, "PSF_INST_MAG")
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(inst)
    t = exp["EXPTIME"]
    m = MEASURE.empty(len(d))
    with np.errstate(all="ignore"):
        m["RA"], m["DEC"] = ra % 360.0, dec
        m["MAG"], m["MAG_ERR"] = stored_mag(inst, t), _col(d, "PSF_INST_MAG_SIG")
        m["M_APER"] = stored_mag(_col(d, "AP_MAG"), t)
        ap_flux, ap_err = _col(d, "AP_FLUX"), _col(d, "AP_FLUX_SIG")
        m["M_APER_ERR"] = MAG_PER_FLUX * ap_err / ap_flux
        kron, kron_err = _col(d, "KRON_FLUX"), _col(d, "KRON_FLUX_ERR")
        m["M_KRON"] = stored_mag(-2.5 * np.log10(kron), t)
        m["M_KRON_ERR"] = MAG_PER_FLUX * kron_err / kron
        m["M_TIME"] = 2.5 * np.log10(t)
        m["FLUX_PSF"] = _col(d, "PSF_INST_FLUX") / t
        m["FLUX_PSF_ERR"] = _col(d, "PSF_INST_FLUX_SIG") / t
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
        m["FWHM_MAJOR"] = _centi(_col(d, "PSF_FWHM_MAJ"))
        m["FWHM_MINOR"] = _centi(_col(d, "PSF_FWHM_MIN"))
        m["PSF_THETA"] = _angle16(_col(d, "PSF_THETA", 0.0))
        for src, dst in (("MOMENTS_XX", "MXX"), ("MOMENTS_XY", "MXY"), ("MOMENTS_YY", "MYY")):
            m[dst] = _centi(_col(d, src))
        m["X_CCD_ERR"], m["Y_CCD_ERR"] = _centi(_col(d, "X_PSF_SIG")), _centi(_col(d, "Y_PSF_SIG"))
        m["POSANGLE"] = _angle16(_col(d, "POSANGLE", 0.0))
        scale = _col(d, "PLTSCALE")
        default = 3600.0 * float(image["CDELT1"])
        m["PLTSCALE"] = np.where(np.isfinite(scale) & (scale > 0), scale, default)
        m["PHOTCODE"] = code
        m["PHOT_FLAGS"] = np.nan_to_num(_col(d, "FLAGS", 0)).astype(np.uint32)
        m["PHOT_FLAGS2"] = np.nan_to_num(_col(d, "FLAGS2", 0)).astype(np.uint32)
    return m, keep


def _lensing(lens, det_ids):
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
