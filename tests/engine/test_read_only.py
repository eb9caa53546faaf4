"""A database that cannot be written here (a read-only archive) can still be queried and
verified; writing it fails clearly and changes nothing."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from dvo.errors import ReadOnlyError
from dvo.ingest import addstar

COLUMNS = ["obj_id", "ra", "dec", "g"]


def _deny_writes(monkeypatch) -> None:
    """Lock files cannot be created or opened for writing (EROFS), as on a read-only mount
    (tests run as root, which file permissions would not stop)."""
    real = os.open

    def fake_open(path, flags, *args):
        if str(path).endswith(".lock") and flags & (os.O_RDWR | os.O_WRONLY | os.O_CREAT):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return real(path, flags, *args)

    monkeypatch.setattr("dvo.transaction.os.open", fake_open)


def _centre(db) -> tuple[float, float]:
    stats = db.stats()
    return float(stats["RA_MIN"][0]), float(stats["DEC_MIN"][0])


@pytest.mark.parametrize("locks_exist", [True, False])
def test_queries_and_verify_work_read_only(tiny_db, helpers, monkeypatch, locks_exist):
    ra, dec = _centre(tiny_db)
    want = tiny_db.cone(ra, dec, 0.2, columns=COLUMNS, output="numpy")
    if not locks_exist:  # a copy no writer ever opened
        for lock in (tiny_db.catdir / ".dvo").glob("*.lock"):
            lock.unlink()
    _deny_writes(monkeypatch)
    got = tiny_db.cone(ra, dec, 0.2, columns=COLUMNS, output="numpy")
    assert len(got) > 10 and got.tobytes() == want.tobytes()
    helpers.assert_db_valid(tiny_db)
    assert np.array_equal(tiny_db.populated(), np.sort(tiny_db.stats()["INDEX"]))


def test_writing_fails_clearly(tiny_db, tiny_survey, helpers, monkeypatch):
    before = helpers.snapshot(tiny_db)
    _deny_writes(monkeypatch)
    with pytest.raises(ReadOnlyError, match="cannot be written here"):
        addstar(tiny_db, tiny_survey[0][:1])
    assert helpers.snapshot(tiny_db) == before
