"""kill -9 during addstar leaves a database that verifies and equals the state before or after
a file; rerunning the command gives exactly the uninterrupted result."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time

import pytest

from dvo.database import create_database, open_database
from dvo.ingest import addstar

pytestmark = pytest.mark.slow


def _run_addstar(catdir, files) -> subprocess.Popen:
    code = (
        "import sys; from dvo.database import open_database; from dvo.ingest import addstar;"
        "r = addstar(open_database(sys.argv[1]), sys.argv[2:]); sys.exit(len(r.failed))"
    )
    return subprocess.Popen([sys.executable, "-c", code, str(catdir), *map(str, files)])


def _timed_run(catdir, files) -> float:
    start = time.monotonic()
    assert _run_addstar(catdir, files).wait() == 0
    return time.monotonic() - start


def test_kill_at_random_points(tiny_survey, tmp_path, helpers, rng):
    files = tiny_survey[0]
    empty = tmp_path / "empty"
    create_database(empty)
    # the states after each prefix of files, from an uninterrupted run
    ref = tmp_path / "ref"
    shutil.copytree(empty, ref)
    states = [helpers.snapshot(ref)]
    for path in files:
        addstar(open_database(ref), [path])
        states.append(helpers.snapshot(ref))
    # when does the work happen in a subprocess? between start-up and the end of a full run
    kills, trial, delays = 0, 0, []
    while trial < 6 or (kills == 0 and trial < 12):
        if not delays:  # (again if no kill landed: the machine's load changed since timing)
            startup = _timed_run(tmp_path / "ref", [])
            timing = tmp_path / f"timing{trial}"
            shutil.copytree(empty, timing)
            total = _timed_run(timing, files)
            delays = helpers.kill_times(startup * 0.9, total, 6 if trial == 0 else 3, rng)
        db = tmp_path / f"trial{trial}"
        shutil.copytree(empty, db)
        kills += helpers.kill_after(_run_addstar(db, files), delays.pop(0))
        reopened = open_database(db)
        helpers.assert_db_valid(reopened)  # rolls forward an interrupted commit if any
        assert helpers.snapshot(reopened) in states
        assert _run_addstar(db, files).wait() == 0
        assert helpers.snapshot(open_database(db)) == states[-1]
        trial += 1
    assert kills >= 1, "no run was interrupted; the test did not test anything"
