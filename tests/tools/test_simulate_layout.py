"""The smf files follow shared/reference/smf-format.md, read back with astropy and fitsio."""

import warnings

import fitsio
import numpy as np
import pytest
from astropy.io import fits
from dvo.tools.simulate import SurveyConfig, simulate_survey

# CMF_PS1_V5 of dvo-facts.md section 1l, in FITS order, typed out independently of the code.
V5 = [
    "IPP_IDET",
    "J",
    "X_PSF",
    "E",
    "Y_PSF",
    "E",
    "X_PSF_SIG",
    "E",
    "Y_PSF_SIG",
    "E",
    "POSANGLE",
    "E",
    "PLTSCALE",
    "E",
    "PSF_INST_MAG",
    "E",
    "PSF_INST_MAG_SIG",
    "E",
    "PSF_INST_FLUX",
    "E",
    "PSF_INST_FLUX_SIG",
    "E",
    "AP_MAG",
    "E",
    "AP_MAG_RAW",
    "E",
    "AP_MAG_RADIUS",
    "E",
    "AP_FLUX",
    "E",
    "AP_FLUX_SIG",
    "E",
    "AP_NPIX",
    "J",
    "CAL_PSF_MAG",
    "E",
    "CAL_PSF_MAG_SIG",
    "E",
    "RA_PSF",
    "D",
    "DEC_PSF",
    "D",
    "PEAK_FLUX_AS_MAG",
    "E",
    "SKY",
    "E",
    "SKY_SIGMA",
    "E",
    "PSF_CHISQ",
    "E",
    "CR_NSIGMA",
    "E",
    "EXT_NSIGMA",
    "E",
    "PSF_MAJOR",
    "E",
    "PSF_MINOR",
    "E",
    "PSF_THETA",
    "E",
    "PSF_CORE",
    "E",
    "PSF_FWHM_MAJ",
    "E",
    "PSF_FWHM_MIN",
    "E",
    "PSF_QF",
    "E",
    "PSF_QF_PERFECT",
    "E",
    "PSF_NDOF",
    "J",
    "PSF_NPIX",
    "J",
    "MOMENTS_XX",
    "E",
    "MOMENTS_XY",
    "E",
    "MOMENTS_YY",
    "E",
    "MOMENTS_M3C",
    "E",
    "MOMENTS_M3S",
    "E",
    "MOMENTS_M4C",
    "E",
    "MOMENTS_M4S",
    "E",
    "MOMENTS_R1",
    "E",
    "MOMENTS_RH",
    "E",
    "KRON_FLUX",
    "E",
    "KRON_FLUX_ERR",
    "E",
    "KRON_FLUX_INNER",
    "E",
    "KRON_FLUX_OUTER",
    "E",
    "SKY_LIMIT_RAD",
    "E",
    "SKY_LIMIT_FLUX",
    "E",
    "SKY_LIMIT_SLOPE",
    "E",
    "FLAGS",
    "J",
    "FLAGS2",
    "J",
    "N_FRAMES",
    "I",
    "PADDING",
    "I",
]
V5_COLUMNS = list(zip(V5[::2], V5[1::2], strict=True))
PRIMARY_KEYS = [
    "TELESCOP",
    "INSTRUME",
    "EXP_NAME",
    "EXP_ID",
    "FILTER",
    "MJD-OBS",
    "EXPTIME",
    "AIRMASS",
    "RA",
    "DEC",
    "POSANGLE",
    "OBS-LAT",
    "OBS-LONG",
    "OBS-ELEV",
]
CHIP_KEYS = [
    "IMNAXIS1",
    "IMNAXIS2",
    "CTYPE1",
    "CTYPE2",
    "CRVAL1",
    "CRVAL2",
    "CRPIX1",
    "CRPIX2",
    "CD1_1",
    "CD1_2",
    "CD2_1",
    "CD2_2",
    "ZPT_OBS",
    "ZPT_ERR",
    "CERROR",
    "NASTRO",
    "FWHM_X",
    "FWHM_Y",
    "NSTARS",
    "IMAGEID",
]


def _smf(out, exp_name):
    return out / f"{exp_name}.smf"


def test_hdu_order_and_dead_chips(survey):
    out, truth = survey
    assert truth.images["dead"].any(), "the fixture should have a dead chip"
    for exp in truth.exposures:
        imgs = truth.images[truth.images["exp_index"] == exp["exp_index"]]
        expected = ["PRIMARY"]
        for img in imgs[~imgs["dead"]]:
            expected += [f"{img['chip']}.hdr", f"{img['chip']}.psf", f"{img['chip']}.lensing"]
        with fits.open(_smf(out, exp["exp_name"])) as hdul:
            assert [h.header.get("EXTNAME", "PRIMARY") for h in hdul] == expected
            assert hdul[0].header["NAXIS"] == 0


def test_primary_and_chip_keywords(survey):
    out, truth = survey
    exp = truth.exposures[0]
    with fits.open(_smf(out, exp["exp_name"])) as hdul:
        head = hdul[0].header
        assert all(k in head for k in PRIMARY_KEYS)
        assert head["EXP_NAME"] == exp["exp_name"] and head["EXP_ID"] == exp["exp_id"]
        assert head["FILTER"] == exp["filter"] and head["AIRMASS"] == exp["airmass"]
        imgs = truth.images[(truth.images["exp_index"] == 0) & ~truth.images["dead"]]
        for img in imgs:
            hdr = hdul[f"{img['chip']}.hdr"].header
            assert hdr["NAXIS"] == 0 and hdr["XTENSION"] == "IMAGE"
            assert all(k in hdr for k in CHIP_KEYS)
            assert hdr["IMAGEID"] == img["imageid"]
            assert hdr["NSTARS"] == img["n_det"] == hdul[f"{img['chip']}.psf"].header["NAXIS2"]
            assert (hdr["IMNAXIS1"], hdr["IMNAXIS2"]) == (4846, 4868)


def test_v5_columns_names_types_and_width(survey):
    out, truth = survey
    exp = truth.exposures[0]
    with fitsio.FITS(str(_smf(out, exp["exp_name"]))) as f:
        hdu = f[2]
        head = hdu.read_header()
        assert head["EXTTYPE"] == "PS1_V5" and head["NAXIS1"] == 232
        names = [head[f"TTYPE{k}"] for k in range(1, head["TFIELDS"] + 1)]
        forms = [head[f"TFORM{k}"].strip().lstrip("1") for k in range(1, head["TFIELDS"] + 1)]
        assert list(zip(names, forms, strict=True)) == V5_COLUMNS
        data = hdu.read()
        assert data["IPP_IDET"].tolist() == list(range(len(data)))
        assert np.isfinite(data["RA_PSF"]).all() and np.isfinite(data["PSF_INST_MAG"]).all()


def test_v3_format_and_empty_chips(tmp_path):
    config = SurveyConfig(n_exposures=1, star_density=0.0, smf_format="PS1_V3")
    truth = simulate_survey(config, tmp_path)
    assert len(truth.detections) == 0
    with fits.open(tmp_path / f"{truth.exposures[0]['exp_name']}.smf") as hdul:
        table = hdul[2]
        assert table.header["EXTTYPE"] == "PS1_V3" and table.header["NAXIS1"] == 224
        assert table.header["NAXIS2"] == 0 and len(hdul) == 1 + 2 * 9


def test_lensing_rows_follow_detections(survey):
    out, truth = survey
    exp = truth.exposures[1]
    img = truth.images[(truth.images["exp_index"] == 1) & ~truth.images["dead"]][0]
    with fitsio.FITS(str(_smf(out, exp["exp_name"]))) as f:
        psf = f[f"{img['chip']}.psf"].read()
        lens = f[f"{img['chip']}.lensing"].read()
    assert np.array_equal(lens["IPP_IDET"], psf["IPP_IDET"])
    assert len(lens.dtype.names) == 35 and "FLUX_AP_R7" in lens.dtype.names


def test_truth_matches_files(survey):
    out, truth = survey
    det = truth.detections
    for exp in truth.exposures[:2]:
        with warnings.catch_warnings(), fits.open(_smf(out, exp["exp_name"])) as hdul:
            for hdu in hdul[1:]:
                name = hdu.header["EXTNAME"]
                if not name.endswith(".psf"):
                    continue
                imageid = hdul[name.replace(".psf", ".hdr")].header["IMAGEID"]
                mine = det[det["imageid"] == imageid]
                assert np.array_equal(mine["ipp_idet"], hdu.data["IPP_IDET"])
                assert np.array_equal(mine["x"], hdu.data["X_PSF"])
                assert np.array_equal(mine["mag"], hdu.data["PSF_INST_MAG"])
    assert (det["star_id"] == -1).any() and (det["star_id"] >= 0).mean() > 0.9


def test_config_errors():
    from dvo.tools.simulate import SimulateConfigError

    from dvo.errors import DvoError

    with pytest.raises(SimulateConfigError, match="unknown filter"):
        SurveyConfig(filters="q")
    with pytest.raises(DvoError, match="unknown chip"):
        SurveyConfig(chips=("XY00",))
    with pytest.raises(ValueError, match="smf_format"):
        SurveyConfig(smf_format="PS1_V9")
    with pytest.raises(SimulateConfigError, match="chips must be distinct"):
        SurveyConfig(chips=("XY33", "XY33"))
    with pytest.raises(SimulateConfigError, match="pointing dec"):
        SurveyConfig(pointings=((10.0, 95.0),))
