"""relphot's Schur-complement accumulation and PCG solve against a dense lstsq oracle."""

from __future__ import annotations

import numpy as np
import pytest
from relphot_reference import dense_relphot

from dvo.errors import CalibrationError
from dvo.photcodes import default_photcodes
from dvo.relphot.accumulate import run_pass
from dvo.relphot.model import Options, build_model
from dvo.relphot.select import prepare
from dvo.relphot.solve import solve_system
from dvo.schema import IMAGE, MEASURE

CHIPS = ("GPC1.r.XY01", "GPC1.r.XY33", "GPC1.r.XY55")


def _images(photcodes, n_exp: int) -> np.ndarray:
    codes = [photcodes.code(c) for c in CHIPS]
    im = IMAGE.empty(n_exp * len(codes))
    im["IMAGE_ID"] = np.arange(1, len(im) + 1)
    im["PHOTCODE"] = np.tile(codes, n_exp)
    im["EXP_ID"] = np.repeat(np.arange(n_exp), len(codes)) + 100
    im["MJD_OBS"] = 57000.0 + 0.01 * np.repeat(np.arange(n_exp), len(codes))
    im["SECZ"], im["NX"], im["NY"] = 1.0, 100, 100
    return im


def _measures(photcodes, images, rng, n_star: int):
    rows = []
    for s in range(n_star):
        on = rng.choice(len(images), size=rng.integers(2, 7), replace=False)
        rows += [(s, j) for j in np.sort(on)]
    star, img = np.array(rows).T
    m = MEASURE.empty(len(star))
    m["AVE_REF"], m["IMAGE_ID"] = star, images["IMAGE_ID"][img]
    m["PHOTCODE"] = images["PHOTCODE"][img]
    m["AIRMASS"] = 1.0
    m["X_CCD"], m["Y_CCD"] = rng.uniform(0, 99, len(m)), rng.uniform(0, 99, len(m))
    m["MAG_ERR"] = rng.uniform(0.005, 0.03, len(m))
    c_lam = photcodes.column("C_LAM", m["PHOTCODE"]).astype(np.float64)
    true = rng.uniform(15, 19, n_star)[star] + rng.normal(0, 0.1, len(images))[img]
    obs = true + rng.normal(0, 1, len(m)) * m["MAG_ERR"]
    m["MAG"] = obs + 25.0 - 0.001 * c_lam
    return m, star, img


@pytest.mark.parametrize("flat", [False, True])
def test_schur_and_pcg_match_dense_lstsq(rng, flat):
    photcodes = default_photcodes()
    images = _images(photcodes, n_exp=6)
    m, star, img = _measures(photcodes, images, rng, n_star=60)
    opts = Options(flat=flat, flat_grid=2, sys_error=0.002)
    model = build_model(images, photcodes, opts)
    prep = prepare(m, photcodes, model, photcodes.nsecfilt)
    theta0 = np.zeros(model.n_params)
    fit = np.ones(model.n_images, bool)
    res = run_pass(lambda: iter([prep]), model, theta0, fit, np.full(model.n_images, -1),
                   robust=False, accumulate=True)  # fmt: skip
    theta, groups, info = solve_system(res.S, res.b, model, theta0, np.zeros(model.n_images, bool))
    assert info.converged and len(groups.sizes) == 1
    ncell = 4 * len(CHIPS) if flat else 0
    chip_of_cell = np.repeat(np.arange(len(CHIPS)), 4) if flat else np.zeros(0, int)
    cells = np.full(len(m), -1)
    if flat:
        cells = prep.fcol[np.argsort(np.argsort(m["AVE_REF"], kind="stable"))] - model.n_zp
    sigma = np.sqrt(m["MAG_ERR"].astype(np.float64) ** 2 + 0.002**2)
    y = m["MAG"] - 25.0 + 0.001 * photcodes.column("C_LAM", m["PHOTCODE"])
    _, zp, fl = dense_relphot(star, img, cells, y, sigma, len(images), chip_of_cell)
    np.testing.assert_allclose(model.image_zp(theta), zp, atol=1e-7)
    np.testing.assert_allclose(theta[model.n_zp :], fl, atol=1e-7)
    assert len(fl) == ncell


def test_bad_options_raise():
    with pytest.raises(CalibrationError, match="iterations"):
        Options(iterations=0)
    with pytest.raises(CalibrationError, match="flat_grid"):
        Options(flat_grid=0)
    with pytest.raises(CalibrationError, match="pin must be one of"):
        Options(pin="nonsense")


def test_no_chip_images_is_an_error():
    with pytest.raises(CalibrationError, match="no chip images"):
        build_model(IMAGE.empty(0), default_photcodes(), Options())
