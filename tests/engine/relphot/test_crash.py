"""kill -9 during relphot leaves the database as it was or fully updated, and it verifies."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from dvo.database import open_database

pytestmark = pytest.mark.slow


def _run_relphot(catdir) -> subprocess.Popen:
    code = (
        "import sys; from dvo.database import open_database; from dvo.relphot import relphot;"
        "relphot(open_database(sys.argv[1]))"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(catdir)])


def test_kill_at_random_points(two_fields_dir, tmp_path, helpers, rng):
    before_dir = two_fields_dir / "db"
    before = helpers.snapshot(before_dir)
    ref = tmp_path / "ref"
    shutil.copytree(before_dir, ref)
    assert _run_relphot(ref).wait() == 0  # also warms the kernel cache
    after = helpers.snapshot(ref)
    assert after != before
    shutil.copytree(before_dir, tmp_path / "timing")
    start = time.monotonic()
    assert _run_relphot(tmp_path / "timing").wait() == 0
    full = time.monotonic() - start  # a warm run, like the trials below
    kills = 0
    for trial, delay in enumerate(helpers.kill_times(0.3 * full, full, 4, rng)):
        db = tmp_path / f"trial{trial}"
        shutil.copytree(before_dir, db)
        kills += helpers.kill_after(_run_relphot(db), delay)
        reopened = open_database(db)
        helpers.assert_db_valid(reopened)  # rolls forward an interrupted commit if any
        assert helpers.snapshot(reopened) in (before, after)
    assert kills >= 1, "no run was interrupted; the test did not test anything"
