"""Atomic multi-file changes to a database, and the locks that order readers and writers.

A change (one smf file's worth of partition, image and statistics updates) is staged as new
files under ``.dvo/staging/<txid>/`` (the same filesystem, so renames are atomic), fsynced,
then a journal listing the renames is written atomically. Renames are applied under the
exclusive commit lock and the journal is removed. A crash before the journal exists leaves
the old state (staged files are swept up by the next writer); a crash after it leaves a
journal that the next opener rolls forward. Readers hold the commit lock shared, so they see
the old or the new state, never a mix.

There is one writer at a time (``writer.lock``); a second writer waits or fails with LockError.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dvo.errors import DatabaseError, LockError, ReadOnlyError
from dvo.layout import state_dir

__all__ = ["Transaction", "writer_lock", "reader_lock", "recover", "fsync_dir"]

JOURNAL = "journal.json"
STAGING = "staging"


def fsync_dir(path: Path) -> None:
    """Make a rename or creation in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_READ_ONLY = (errno.EACCES, errno.EPERM, errno.EROFS)


def _lockfile(catdir: Path, name: str, *, shared: bool) -> int | None:
    """The lock file's descriptor. A shared lock on a database we may not write (a read-only
    archive) uses the file read-only, or no lock when no writer ever made it: no writer can
    run there. Returns None in that last case."""
    folder = state_dir(catdir)
    if not folder.is_dir():
        raise DatabaseError(f"{catdir}: not a dvo database (no {folder.name}/)")
    try:
        return os.open(folder / name, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        if exc.errno not in _READ_ONLY:
            raise DatabaseError(f"{catdir}: cannot open {folder.name}/{name} ({exc})") from None
        if not shared:
            raise ReadOnlyError(f"{catdir}: cannot be written here ({exc.strerror})") from None
    try:
        return os.open(folder / name, os.O_RDONLY)
    except FileNotFoundError:
        return None


@contextmanager
def _flock(
    catdir: Path, name: str, mode: int, *, timeout: float | None, what: str
) -> Iterator[None]:
    fd = _lockfile(catdir, name, shared=mode == fcntl.LOCK_SH)
    if fd is None:
        yield
        return
    try:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockError(f"{catdir}: {what} (another process holds it)") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)


@contextmanager
def writer_lock(catdir: str | Path, *, timeout: float | None = None) -> Iterator[None]:
    """Hold the single-writer lock; ``timeout=0`` fails at once if another writer runs."""
    catdir = Path(catdir)
    with _flock(
        catdir,
        "writer.lock",
        fcntl.LOCK_EX,
        timeout=timeout,
        what="database is locked by another writer",
    ):
        recover(catdir)
        yield


@contextmanager
def reader_lock(catdir: str | Path) -> Iterator[None]:
    """Hold the commit lock shared, rolling forward an interrupted commit first if needed."""
    catdir = Path(catdir)
    while (state_dir(catdir) / JOURNAL).exists():
        try:
            with _flock(catdir, "writer.lock", fcntl.LOCK_EX, timeout=None, what="recovery"):
                recover(catdir)
        except ReadOnlyError:
            raise ReadOnlyError(
                f"{catdir}: an interrupted commit must be rolled forward; open the database "
                "once where it can be written"
            ) from None
    with _flock(catdir, "commit.lock", fcntl.LOCK_SH, timeout=None, what="commit lock"):
        yield


def recover(catdir: str | Path) -> bool:
    """Finish an interrupted commit (journal present) and sweep staged files; caller holds the
    writer lock. Returns whether a journal was rolled forward."""
    catdir = Path(catdir)
    journal = state_dir(catdir) / JOURNAL
    rolled = False
    if journal.exists():
        with _flock(catdir, "commit.lock", fcntl.LOCK_EX, timeout=None, what="commit lock"):
            _apply(catdir, json.loads(journal.read_text()))
            journal.unlink()
            fsync_dir(journal.parent)
        rolled = True
    staging = state_dir(catdir) / STAGING
    if staging.exists():
        shutil.rmtree(staging)
    return rolled


def _apply(catdir: Path, entries: list[list[str]]) -> None:
    dirs = set()
    for staged, target in entries:
        src, dst = catdir / staged, catdir / target
        if src.exists():
            os.replace(src, dst)
        dirs.add(dst.parent)
    for d in dirs:
        fsync_dir(d)


class Transaction:
    """Stage files, then commit them all at once.

    Examples
    --------
    ``with Transaction(catdir) as tx: path = tx.stage("Images.fits"); write(path, ...)``
    writes to a staged file; leaving the block without error commits every staged file.
    """

    def __init__(self, catdir: str | Path) -> None:
        self.catdir = Path(catdir)
        self.txid = uuid.uuid4().hex[:12]
        self.staged: dict[str, Path] = {}

    def stage(self, relpath: str | Path) -> Path:
        """A path to write the new version of ``relpath`` (relative to the database) to."""
        rel = Path(relpath)
        if rel.is_absolute() or ".." in rel.parts:
            raise DatabaseError(f"refusing to stage {relpath!r} outside the database")
        (self.catdir / rel).parent.mkdir(parents=True, exist_ok=True)
        path = state_dir(self.catdir) / STAGING / self.txid / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        self.staged[rel.as_posix()] = path
        return path

    def commit(self) -> None:
        """Make every staged file durable, then swap them in atomically (journal + renames)."""
        entries = []
        for rel, path in self.staged.items():
            if not path.exists():
                raise DatabaseError(f"staged file for {rel} was not written")
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            entries.append([str(path.relative_to(self.catdir)), rel])
        for d in {p.parent for p in self.staged.values()}:
            fsync_dir(d)
        folder = state_dir(self.catdir)
        tmp = folder / f"{JOURNAL}.tmp-{self.txid}"
        tmp.write_text(json.dumps(entries))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        with _flock(self.catdir, "commit.lock", fcntl.LOCK_EX, timeout=None, what="commit lock"):
            os.replace(tmp, folder / JOURNAL)
            fsync_dir(folder)
            _apply(self.catdir, entries)
            (folder / JOURNAL).unlink()
            fsync_dir(folder)
        shutil.rmtree(folder / STAGING / self.txid, ignore_errors=True)
        self.staged.clear()

    def abort(self) -> None:
        """Remove every staged file; the database is unchanged."""
        shutil.rmtree(state_dir(self.catdir) / STAGING / self.txid, ignore_errors=True)
        self.staged.clear()

    def __enter__(self) -> Transaction:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()
