"""addstar's write-ahead log: every loaded file's changes, durable before the next file starts.

addstar keeps the partitions it changes in memory and writes them at checkpoints (see
:mod:`dvo.ingest`). Between checkpoints each loaded file appends one entry here: a
:class:`Delta` holding its Image rows and, per partition, its new objects and its Measure and
Lensing rows, with every association already decided. An entry (an np.savez archive
compressed with zstd) is written to a temporary name, fsynced and renamed, so it is either
whole or absent. A checkpoint commits the partitions together with the number of the last
entry they include (``applied.json``, in the same transaction), then deletes the entries it
made redundant. After a crash, the next writer (or a reader, when no writer runs) replays the
entries after ``applied`` and checkpoints, which leaves the database as it was after the last
logged file.
"""

from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zstandard

from dvo.errors import DatabaseError
from dvo.layout import state_dir
from dvo.transaction import Transaction, fsync_dir

__all__ = ["Delta", "WriteAheadLog"]

FOLDER = "wal"
APPLIED = "applied.json"
SUFFIX = ".npz.zst"  # an np.savez archive, compressed with zstd level 1 (4x, 24 ms a file)


@dataclass
class Delta:
    """One file's changes: Image rows and, per partition index, (new Average rows, Measure
    rows, Lensing rows) with AVE_REF numbering the objects after the partition's existing ones."""

    images: np.ndarray
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


class WriteAheadLog:
    """The log folder ``.dvo/wal/`` of a database: numbered entries and ``applied.json``."""

    def __init__(self, catdir: str | Path) -> None:
        self.catdir = Path(catdir)
        self.folder = state_dir(self.catdir) / FOLDER
        self._last: int | None = None  # number of the last entry, once looked up (the writer)

    def applied(self) -> int:
        """Number of the last entry that the partitions on disk include (0: none)."""
        path = self.folder / APPLIED
        if not path.exists():
            return 0
        try:
            return int(json.loads(path.read_text())["applied"])
        except (ValueError, KeyError, TypeError) as exc:
            raise DatabaseError(f"{path}: unreadable ({exc})") from None

    def _entries(self) -> list[tuple[int, Path]]:
        if not self.folder.is_dir():
            return []
        found = [(p.name[: -len(SUFFIX)], p) for p in self.folder.glob(f"*{SUFFIX}")]
        return sorted((int(stem), p) for stem, p in found if stem.isdigit())

    def pending(self) -> list[tuple[int, Path]]:
        """(number, path) of the entries the partitions do not include yet, in order."""
        applied = self.applied()
        return [(seq, p) for seq, p in self._entries() if seq > applied]

    def append(self, delta: Delta) -> int:
        """Write ``delta`` durably as the next entry and return its number."""
        if self._last is None:  # the folder is listed once per run, not once per file
            self.folder.mkdir(parents=True, exist_ok=True)
            entries = self._entries()
            self._last = max(self.applied(), entries[-1][0] if entries else 0)
        seq = self._last + 1
        arrays = {"images": delta.images, "parts": np.array([p[0] for p in delta.parts], "i8")}
        for k, (_, average, measure, lensing) in enumerate(delta.parts):
            arrays.update({f"average{k}": average, f"measure{k}": measure, f"lensing{k}": lensing})
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        final = self.folder / f"{seq:010d}{SUFFIX}"
        tmp = self.folder / f".{seq:010d}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(zstandard.ZstdCompressor(level=1).compress(buffer.getbuffer()))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, final)
        fsync_dir(self.folder)
        self._last = seq
        return seq

    def read(self, path: Path) -> Delta:
        """The Delta of one entry."""
        try:
            data = zstandard.ZstdDecompressor().decompress(path.read_bytes())
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                parts = [
                    (int(index), z[f"average{k}"], z[f"measure{k}"], z[f"lensing{k}"])
                    for k, index in enumerate(z["parts"])
                ]
                return Delta(z["images"], parts)
        except (OSError, ValueError, KeyError, zstandard.ZstdError) as exc:
            raise DatabaseError(f"{path}: unreadable write-ahead log entry ({exc})") from None

    def stage_applied(self, tx: Transaction, seq: int) -> None:
        """Record in ``tx`` that the partitions it writes include every entry up to ``seq``."""
        rel = (self.folder / APPLIED).relative_to(self.catdir)
        tx.stage(rel).write_text(json.dumps({"applied": int(seq)}) + "\n")

    def prune(self) -> None:
        """Delete the entries the partitions include and any half-written entry."""
        applied = self.applied()
        for seq, path in self._entries():
            if seq <= applied:
                path.unlink()
        if self.folder.is_dir():
            for tmp in self.folder.glob(".*.tmp"):
                tmp.unlink()
