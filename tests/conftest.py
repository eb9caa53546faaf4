"""Shared fixtures: seeded random generators, and a tiny simulated database built from tools/.

The tiny survey straddles RA = 0 and the n0000/n0730 band edge at dec 7.5, so association
across partition edges and the RA wrap is exercised by every test that uses it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator per test (never a global seed)."""
    return np.random.default_rng(20261121)


TINY = dict(
    seed=7,
    ra=0.0,
    dec=7.5,
    field_size=0.6,
    n_exposures=8,
    filters="gr",
    star_density=1500.0,
    pm_sigma=3.0,
    spurious_rate=3.0,
    with_lensing=True,
)


@pytest.fixture(scope="session")
def tiny_survey(tmp_path_factory):
    """(smf paths, Truth) of a small simulated survey."""
    from dvo.tools.simulate import SurveyConfig, simulate_survey

    out = tmp_path_factory.mktemp("tiny_survey")
    truth = simulate_survey(SurveyConfig(**TINY), out)
    return sorted(Path(out).glob("*.smf")), truth


@pytest.fixture(scope="session")
def tiny_db_master(tiny_survey, tmp_path_factory):
    """A database with the tiny survey ingested (do not modify: use ``tiny_db``)."""
    from dvo.database import create_database
    from dvo.ingest import addstar

    path = tmp_path_factory.mktemp("dbs") / "tiny"
    db = create_database(path)
    report = addstar(db, tiny_survey[0])
    assert not report.failed, report.failed
    return path


@pytest.fixture
def tiny_db(tiny_db_master, tmp_path):
    """A private copy of the tiny database, free to modify."""
    from dvo.database import open_database

    dst = tmp_path / "db"
    shutil.copytree(tiny_db_master, dst)
    return open_database(dst)


class Helpers:
    """Invariant checks to run after every mutating test (lsdb's ``helpers`` habit)."""

    @staticmethod
    def assert_db_valid(db) -> None:
        from dvo.verify import verify

        problems = verify(db)
        assert problems == [], "\n".join(map(str, problems))

    @staticmethod
    def snapshot(db) -> dict[str, bytes]:
        """Every file of a database (excluding locks), for exact before/after comparisons."""
        root = Path(db.catdir if hasattr(db, "catdir") else db)
        return {
            p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*"))
            if p.is_file() and ".dvo" not in p.relative_to(root).parts
        }

    @staticmethod
    def kill_after(proc, delay: float) -> bool:
        """SIGKILL ``proc`` ``delay`` seconds from now unless it has ended; wait for it.
        Returns whether it was killed."""
        import signal
        import time

        time.sleep(delay)
        alive = proc.poll() is None
        if alive:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        return alive

    @staticmethod
    def kill_times(start: float, end: float, trials: int, rng) -> list[float]:
        """Seconds after launch at which to kill a process whose work runs from ``start`` to
        ``end`` (measured on a warm run): one jittered time in each of ``trials`` equal slices,
        so that kills land throughout the work, whatever the machine's speed."""
        width = max(end - start, 0.05)
        return [start + width * (k + float(rng.uniform(0.1, 0.9))) / trials for k in range(trials)]


@pytest.fixture
def helpers() -> Helpers:
    """Invariant checks and snapshots."""
    return Helpers()


@pytest.fixture
def no_o_direct(monkeypatch) -> None:
    """Opening with O_DIRECT fails as it does on tmpfs (dvo.codecs.direct then falls back)."""
    import errno
    import os

    from dvo.codecs import direct

    real_open = os.open

    def refuse(path, flags, *args):
        if flags & direct.O_DIRECT:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_open(path, flags, *args)

    monkeypatch.setattr(direct, "O_DIRECT", getattr(os, "O_DIRECT", 0o40000))
    monkeypatch.setattr(os, "open", refuse)


@pytest.fixture
def o_direct(tmp_path) -> None:
    """Skip unless ``tmp_path``'s filesystem accepts O_DIRECT (so the direct path is tested)."""
    import os

    from dvo.codecs import direct

    if not direct.O_DIRECT:
        pytest.skip("no O_DIRECT on this system")
    probe = tmp_path / ".o_direct_probe"
    probe.write_bytes(b"")
    try:
        os.close(os.open(probe, os.O_RDONLY | direct.O_DIRECT))
    except OSError:
        pytest.skip("this filesystem refuses O_DIRECT")
    finally:
        probe.unlink()
