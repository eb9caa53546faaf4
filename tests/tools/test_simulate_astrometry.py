"""Positions: RA_PSF/DEC_PSF against astropy's WCS, the distortion + noise model, motions."""

import warnings

import astropy.units as u
import fitsio
import numpy as np
from astropy.coordinates import GCRS, ICRS, SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS, FITSFixedWarning


def _wcs(header):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FITSFixedWarning)
        return WCS(header)


def _chips(out, exp_name):
    """(header, table) per chip of an smf file."""
    with fits.open(out / f"{exp_name}.smf") as hdul:
        heads = {h.header["EXTNAME"]: h.header for h in hdul[1:]}
    with fitsio.FITS(str(out / f"{exp_name}.smf")) as f:
        for name, head in heads.items():
            if name.endswith(".hdr"):
                yield head, f[name.replace(".hdr", ".psf")].read()


def test_radec_is_astropy_wcs_of_one_based_pixel(survey):
    out, truth = survey
    worst = 0.0
    for exp in truth.exposures[:3]:
        for head, t in _chips(out, exp["exp_name"]):
            x, y = t["X_PSF"].astype(float), t["Y_PSF"].astype(float)
            wcs = _wcs(head)
            ra, dec = wcs.all_pix2world(x + 1, y + 1, 1)  # FITS (one-based) pixel X_PSF + 1
            written = SkyCoord(t["RA_PSF"] * u.deg, t["DEC_PSF"] * u.deg)
            sep = SkyCoord(ra * u.deg, dec * u.deg).separation(written)
            worst = max(worst, sep.to_value(u.mas).max(initial=0.0))
            # the same through astropy's zero-based high-level API
            sep = wcs.pixel_to_world(x, y).separation(written)
            worst = max(worst, sep.to_value(u.mas).max(initial=0.0))
    assert worst < 1.0


def test_offsets_are_distortion_plus_documented_noise(survey):
    """(WCS(X_PSF) - truth) in the tangent plane = D(u, v) + N(0, pos_sig) per axis."""
    out, truth = survey
    det = truth.detections
    nchips = len(truth.chips)
    pulls = []
    for exp in truth.exposures:
        for head, t in _chips(out, exp["exp_name"]):
            mine = det[det["imageid"] == head["IMAGEID"]]
            real = mine["star_id"] >= 0
            mine, t = mine[real], t[real]
            wcs = _wcs(head)
            xt, yt = wcs.all_world2pix(mine["ra_true"], mine["dec_true"], 1)
            cd = np.array([[head["CD1_1"], head["CD1_2"]], [head["CD2_1"], head["CD2_2"]]])
            dpix = np.stack([t["X_PSF"] + 1 - xt, t["Y_PSF"] + 1 - yt])
            dxi, deta = cd @ dpix * 3600.0
            row = mine["exp_index"] * nchips + mine["chip_index"]
            Dx, Dy = truth.distortion(row, t["X_PSF"], t["Y_PSF"])
            pulls.append(np.stack([dxi - Dx, deta - Dy]) / t["X_PSF_SIG"] / 0.258)
    pulls = np.concatenate(pulls, axis=1)
    assert pulls.shape[1] > 2000
    assert np.all(np.abs(pulls.mean(axis=1)) < 0.05)
    assert np.all(np.abs(pulls.std(axis=1) - 1) < 0.03)
    assert np.abs(truth.images["dist"]).sum(axis=-1).max() <= 0.45 + 1e-9


def test_proper_motion_matches_astropy(survey):
    _, truth = survey
    det = truth.detections
    pick = det[det["star_id"] >= 0][:400]
    s = truth.stars[pick["star_id"]]
    mjd = truth.exposures["mjd"][pick["exp_index"]]
    ref = SkyCoord(
        ra=s["ra"] * u.deg,
        dec=s["dec"] * u.deg,
        pm_ra_cosdec=s["pm_ra_cosdec"] * u.mas / u.yr,
        pm_dec=s["pm_dec"] * u.mas / u.yr,
        distance=(1000.0 / s["parallax"]) * u.pc,
        obstime=Time(truth.config.ref_epoch, format="jyear"),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        moved = ref.apply_space_motion(new_obstime=Time(mjd, format="mjd"))
    # astropy's motion is barycentric: add the geocentric parallax shift computed by astropy as
    # GCRS(star at its distance) - GCRS(same direction at 1 Gpc).
    t = Time(mjd, format="mjd")
    near = moved.transform_to(GCRS(obstime=t))
    far_c = SkyCoord(ICRS(ra=moved.ra, dec=moved.dec, distance=1e9 * u.pc))
    far = far_c.transform_to(GCRS(obstime=t))
    dra = (near.ra - far.ra).wrap_at(180 * u.deg)
    expect_ra = moved.ra + dra
    expect_dec = moved.dec + (near.dec - far.dec)
    got = SkyCoord(pick["ra_true"] * u.deg, pick["dec_true"] * u.deg)
    sep = got.separation(SkyCoord(expect_ra, expect_dec)).to_value(u.mas)
    assert s["parallax"].max() > 5 and np.hypot(s["pm_ra_cosdec"], s["pm_dec"]).max() > 30
    assert sep.max() < 0.5


def test_reference_catalogue_errors(survey):
    out, truth = survey
    from astropy.table import Table

    ref = Table.read(out / "reference.fits")
    assert len(ref) == len(truth.reference) > 50
    s = truth.stars[ref["source_id"]]
    pull = (ref["dec"] - s["dec"]) * 3.6e6 / ref["dec_error"]
    assert abs(np.std(pull) - 1) < 0.25
    assert np.all(ref["ref_epoch"] == truth.config.ref_epoch)
    pull = (ref["parallax"] - s["parallax"]) / ref["parallax_error"]
    assert abs(np.std(pull) - 1) < 0.25


def test_apparent_helper_matches_truth(survey):
    """stars.apparent (the documented numpy model) gives the truth positions of the kernel."""
    from dvo.tools.simulate.sky import radec_to_vec, vec_to_radec
    from dvo.tools.simulate.stars import StarIndex, apparent, ref_mjd

    _, truth = survey
    index = StarIndex(truth.stars)
    det = truth.detections[truth.detections["star_id"] >= 0]
    for exp in truth.exposures[:3]:
        d = det[det["exp_index"] == exp["exp_index"]]
        earth = np.array([exp["earth_x"], exp["earth_y"], exp["earth_z"]])
        vec = apparent(index, d["star_id"], exp["mjd"], earth, ref_mjd(truth.config.ref_epoch))
        got = radec_to_vec(d["ra_true"], d["dec_true"])
        assert np.degrees(np.abs(vec - got).max()) * 3.6e6 < 0.01
        assert vec_to_radec(vec)[0].min() >= 0
