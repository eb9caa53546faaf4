"""Shared simulated surveys for the simulator tests (small: 3x3 central chips)."""

import pytest
from dvo.tools.simulate import SurveyConfig, simulate_survey


@pytest.fixture(scope="session")
def survey(tmp_path_factory):
    """A small survey with every effect switched on; returns (outdir, truth)."""
    out = tmp_path_factory.mktemp("survey")
    config = SurveyConfig(
        seed=7,
        n_exposures=6,
        filters="gr",
        star_density=2500.0,
        distortion=0.4,
        distortion_exposure=0.05,
        dead_chip_fraction=0.1,
        spurious_rate=3.0,
        zp_scatter=0.05,
        zp_chip_scatter=0.01,
        cloudy_fraction=0.3,
        extinction_scatter=0.03,
        flat_amplitude=0.02,
        flat_smooth_amplitude=0.01,
        phot_floor=0.003,
        pm_sigma=30.0,
        parallax_scale=5.0,
        posangle_jitter=2.0,
        with_lensing=True,
        reference=True,
        span_days=400.0,
    )
    return out, simulate_survey(config, out)
