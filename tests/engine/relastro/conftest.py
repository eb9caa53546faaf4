"""A simulated astrometric survey (the ``relastro`` preset) built once per session.

24 epochs over 3 years on a 3 x 3 chip camera, per-chip distortions up to 0.5 arcsec,
centroid noise from S/N, proper motions up to 100 mas/yr and parallaxes up to 50 mas, and a
Gaia-like reference catalogue (r <= 19) loaded under the GAIA photcode.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SURVEY = dict(field_size=0.3, seed=11)


@pytest.fixture(scope="session")
def astro_survey(tmp_path_factory):
    """(smf paths, reference path, Truth)."""
    from dvo.tools.simulate import preset, simulate_survey
    from dvo.tools.simulate.reference import reference_path

    out = tmp_path_factory.mktemp("astro_survey")
    config = preset("relastro", **SURVEY)
    truth = simulate_survey(config, out)
    return sorted(Path(out).glob("*.smf")), reference_path(out, config.reference_format), truth


@pytest.fixture(scope="session")
def astro_master(astro_survey, tmp_path_factory):
    """The survey ingested with its reference catalogue (do not modify)."""
    from dvo.database import create_database
    from dvo.ingest import addstar

    smf, ref, _ = astro_survey
    path = tmp_path_factory.mktemp("astro_dbs") / "raw"
    db = create_database(path)
    assert not addstar(db, smf).failed
    assert not addstar(db, [ref], photcode="GAIA").failed
    return path


@pytest.fixture(scope="session")
def solved(astro_master, tmp_path_factory):
    """(path of a copy calibrated by relastro with a report, RelastroReport) (do not modify)."""
    from dvo.database import open_database
    from dvo.relastro import relastro

    path = tmp_path_factory.mktemp("astro_dbs") / "solved"
    shutil.copytree(astro_master, path)
    report = relastro(open_database(path), report_dir=path.parent / "report")
    return path, report


def _copy(src: Path, dst: Path):
    from dvo.database import open_database

    shutil.copytree(src, dst)
    return open_database(dst)


@pytest.fixture
def astro_db(astro_master, tmp_path):
    """A private copy of the uncalibrated database."""
    return _copy(astro_master, tmp_path / "db")


@pytest.fixture
def solved_db(solved, tmp_path):
    """A private copy of the calibrated database."""
    return _copy(solved[0], tmp_path / "db")
