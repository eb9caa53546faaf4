"""Fixtures of the relphot tests: the cached simulated surveys and one calibrated copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from relphot_survey import NIGHTS, SURVEY, TWO_FIELDS, TWO_FIELDS_REF, cached, truth_of


@pytest.fixture(scope="session")
def survey_cache(request, tmp_path_factory) -> Path:
    """Where built surveys are kept: pytest's cache, or a session folder without it."""
    cache = getattr(request.config, "cache", None)
    if cache is None:
        return tmp_path_factory.mktemp("relphot-surveys")
    return cache.mkdir("relphot-surveys")


@pytest.fixture(scope="session")
def survey_dir(survey_cache) -> Path:
    """The 200 x 60 survey (smf, truth, database); do not modify."""
    return cached(SURVEY, survey_cache, "survey")


@pytest.fixture(scope="session")
def two_fields_dir(survey_cache) -> Path:
    """Two disconnected fields (smf, truth, database); do not modify."""
    return cached(TWO_FIELDS, survey_cache, "two-fields")


@pytest.fixture(scope="session")
def two_fields_ref_dir(survey_cache) -> Path:
    """The two fields plus a REF.r reference catalogue; do not modify."""
    return cached(TWO_FIELDS_REF, survey_cache, "two-fields-ref")


@pytest.fixture(scope="session")
def nights_dir(survey_cache) -> Path:
    """One field over 3 nights: extinction and clouds only; do not modify."""
    return cached(NIGHTS, survey_cache, "nights")


@pytest.fixture(scope="session")
def calibrated(survey_dir, tmp_path_factory):
    """(database, report, truth) after one default relphot run on a copy of the survey."""
    from dvo.database import open_database
    from dvo.relphot import relphot

    dst = tmp_path_factory.mktemp("relphot") / "db"
    shutil.copytree(survey_dir / "db", dst)
    db = open_database(dst)
    report = relphot(db, report_dir=dst.parent / "report")
    return db, report, truth_of(survey_dir)


@pytest.fixture
def two_fields_db(two_fields_dir, tmp_path):
    """A private copy of the two-field database."""
    from dvo.database import open_database

    dst = tmp_path / "db"
    shutil.copytree(two_fields_dir / "db", dst)
    return open_database(dst)
