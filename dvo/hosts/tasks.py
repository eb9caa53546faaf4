"""Partition tasks that run the same way here and on a partition host, returning small summaries.

A task is a picklable callable ``task(catdir, index)`` (the :mod:`dvo.query.execute`
convention) with an ``op`` name and JSON-able ``params()``: :class:`HostExecutor` runs it here
for local partitions, and sends ``{"op": task.op, **task.params()}`` to ``python -m dvo.remote``
for partitions on hosts, which calls the very same function on its copy. Only the summaries
(violations, checksums) cross the network.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from dvo import layout
from dvo.errors import DvoError

__all__ = ["VerifyTask", "ChecksumTask", "verify_summary", "file_checksums", "sha256_file"]


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_checksums(root: str | Path, name: str) -> dict[str, list]:
    """``{relative path: [size, sha256 hex]}`` of the files of one partition that exist."""
    root = Path(root)
    out = {}
    for path in layout.partition_files(root, name).values():
        if path.is_file():
            out[path.relative_to(root).as_posix()] = [path.stat().st_size, sha256_file(path)]
    return out


@lru_cache(maxsize=4)
def _verify_context(catdir: str, stamp: tuple) -> tuple:
    from dvo.database import open_database

    db = open_database(catdir)
    image_ids = np.sort(db.images(columns=["IMAGE_ID"])["IMAGE_ID"].astype(np.int64))
    return db, image_ids, db.stats()


def _stamp(catdir: str) -> tuple:
    return tuple(
        (p.stat().st_mtime_ns, p.stat().st_size)
        for p in (Path(catdir) / layout.IMAGES, Path(catdir) / layout.STATS)
    )


def verify_summary(catdir: str, index: int, *, checksums: bool = True) -> list[list[str]]:
    """Violations of one partition as ``[where, check, detail]`` lists (JSON-able)."""
    from dvo.verify import verify_partition

    db, image_ids, stats = _verify_context(str(catdir), _stamp(catdir))
    name = str(db.skytable.name[index])
    try:
        found = verify_partition(db, db.partition(index), image_ids, stats, checksums=checksums)
    except DvoError as exc:
        return [[name, "readable", str(exc)]]
    return [[v.where, v.check, v.detail] for v in found]


@dataclass(frozen=True)
class VerifyTask:
    """``dvo verify`` of one partition, wherever it lives."""

    checksums: bool = True
    op = "verify"

    def params(self) -> dict:
        return {"checksums": self.checksums}

    def __call__(self, catdir: str, index: int) -> list[list[str]]:
        return verify_summary(catdir, index, checksums=self.checksums)


@dataclass(frozen=True)
class ChecksumTask:
    """Sizes and SHA-256 of the files of one partition."""

    op = "checksums"

    def params(self) -> dict:
        return {}

    def __call__(self, catdir: str, index: int) -> dict[str, list]:
        name = layout.check_partition_name(str(_names(str(catdir))[index]))
        return file_checksums(catdir, name)


def _names(catdir: str) -> np.ndarray:
    from dvo.skytable import SkyTable

    return SkyTable.read(Path(catdir) / layout.SKYTABLE).name
