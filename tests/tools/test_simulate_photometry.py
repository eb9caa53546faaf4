"""Magnitudes follow the smf-format.md convention with the documented, exactly known noise."""

import fitsio
import numpy as np
from dvo.tools.simulate import SurveyConfig, simulate_survey

from dvo.gpc1 import FILTERS


def _expected(truth):
    """Noise-free PSF_INST_MAG of every real detection, from the truth alone."""
    det = truth.detections[truth.detections["star_id"] >= 0]
    img = truth.images[det["exp_index"] * len(truth.chips) + det["chip_index"]]
    assert np.array_equal(img["imageid"], det["imageid"])
    stars = truth.stars[det["star_id"]]
    m_true = np.choose(
        [" grizyw".index(f) - 1 for f in img["filter"]], [stars[f"mag_{f}"] for f in "grizyw"]
    )
    zp = np.array([FILTERS[f].zero_point for f in img["filter"]])
    k = np.array([FILTERS[f].k for f in img["filter"]])
    flat = truth.flat(det["chip_index"], det["x"], det["y"])
    mag = (
        m_true - zp - k * (img["airmass"] - 1) + img["dzp"] + flat - 2.5 * np.log10(img["exptime"])
    )
    return det, img, mag


def test_truth_mag_true_is_the_convention(survey):
    _, truth = survey
    det, _, mag = _expected(truth)
    assert np.abs(det["mag_true"] - mag).max() < 1e-9


def test_written_magnitudes_have_documented_noise(tmp_path):
    config = SurveyConfig(
        seed=11,
        n_exposures=8,
        star_density=6000.0,
        zp_scatter=0.1,
        cloudy_fraction=0.25,
        extinction_scatter=0.05,
        flat_amplitude=0.02,
        flat_smooth_amplitude=0.01,
        phot_floor=0.005,
    )
    truth = simulate_survey(config, tmp_path)
    det, img, mag = _expected(truth)
    written = []
    for exp in truth.exposures:
        with fitsio.FITS(str(tmp_path / f"{exp['exp_name']}.smf")) as f:
            for hdu in f[1:]:
                if hdu.get_extname().endswith(".psf"):
                    written.append(hdu.read(columns=["PSF_INST_MAG", "PSF_INST_MAG_SIG"]))
    written = np.concatenate(written)
    real = truth.detections["star_id"] >= 0
    written = written[real]
    sig = written["PSF_INST_MAG_SIG"].astype(float)
    bright = 1.0857 / np.sqrt(np.maximum(sig**2 - 0.005**2, 1e-12)) > 20  # S/N > 20: no Malmquist
    pull = (written["PSF_INST_MAG"] - mag)[bright] / sig[bright]
    assert bright.sum() > 3000
    assert abs(pull.mean()) < 0.05
    assert abs(np.mean(pull**2) - 1) < 0.06
    # sign of dZP: cloudy exposures are fainter (larger instrumental magnitudes)
    e = truth.exposures
    assert e["cloudy"].any() and np.all(e["dzp_cloud"][e["cloudy"]] >= config.cloud_min)
    parts = e["dzp_random"] + e["dzp_cloud"] + e["dzp_drift"] + e["dzp_extinction"]
    assert np.allclose(e["dzp_exposure"], parts)
    assert np.allclose(e["dzp_extinction"], -e["k_night"] * (e["airmass"] - 1))
    cloudy = img["cloudy"]
    resid = written["PSF_INST_MAG"] - (mag - img["dzp"])
    assert np.median(resid[cloudy]) > np.median(resid[~cloudy]) + 0.1


def test_flat_and_sigma_model(survey):
    _, truth = survey
    cells = truth.config.flat_cells
    assert truth.flat_grid.shape == (len(truth.chips), cells, cells)
    assert np.abs(truth.flat(0, np.array([0.0, 4845.0]), np.array([0.0, 4867.0]))).max() <= 0.03
    det = truth.detections
    assert np.all(det["mag_sig"] >= truth.config.phot_floor * 0.999)
