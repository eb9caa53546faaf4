"""Smoke test of the survey simulator: files and truth are written and agree."""

import numpy as np

from dvo.tools.simulate import SurveyConfig, Truth, simulate_survey


def test_small_survey_writes_smf_and_truth(tmp_path):
    truth = simulate_survey(SurveyConfig(n_exposures=3, star_density=500.0), tmp_path)
    names = sorted(p.stem for p in tmp_path.glob("*.smf"))
    assert names == sorted(truth.exposures["exp_name"])
    again = Truth.load(tmp_path)
    assert np.array_equal(again.detections, truth.detections)
    assert len(truth.detections) > 100
