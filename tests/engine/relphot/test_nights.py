"""The night model: photometric exposures share a_n + k_n (AIRMASS - 1), cloudy ones are freed."""

from __future__ import annotations

import shutil

import numpy as np
from relphot_survey import image_truth, truth_of

from dvo.database import open_database
from dvo.relphot import relphot


def test_night_extinction_recovered_and_clouds_freed(nights_dir, tmp_path, helpers):
    shutil.copytree(nights_dir / "db", tmp_path / "db")
    db = open_database(tmp_path / "db")
    report = relphot(db, zeropoints="exposure", nights=True, flat=False)
    sol = report.solution
    model = sol.model
    truth = truth_of(nights_dir)
    pos = image_truth(db.images()[model.row], truth)
    assert model.n_nights == 3 and sol.calibrated.all()
    cloudy = truth.images["cloudy"][pos]
    # exposures with clouds are taken off their night model, clear ones stay on it
    assert not model.on_night[cloudy].any()
    assert model.on_night[~cloudy].mean() > 0.9
    # airmass slope per night: dzp_extinction = -k_night (X - 1), so k_n = -k_night
    k_fit = sol.theta[model.kcol[0] - model.night[0] + np.arange(3)]
    k_true = -np.array([truth.images["k_night"][pos][model.night == n][0] for n in range(3)])
    np.testing.assert_allclose(k_fit, k_true, atol=0.005)
    err = sol.mcal - truth.images["dzp"][pos]
    assert float(np.std(err)) < 0.005
    helpers.assert_db_valid(db)
