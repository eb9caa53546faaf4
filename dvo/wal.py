"""addstar's write-ahead log: every loaded file's changes, durable before the next file starts.

addstar keeps the partitions it changes in memory and writes them at checkpoints (see
:mod:`dvo.ingest`). Between checkpoints each loaded file appends one entry here: a
:class:`Delta` holding its Image rows and, per partition, its new objects and its Measure and
Lensing rows, with every association already decided. An entry is written to a temporary
name, fsynced and renamed, so it is either whole or absent; the log's own thread does that
while addstar applies the file in memory (:meth:`WriteAheadLog.appending`), and the file
counts as loaded once both are done. A checkpoint commits the
partitions together with the number of the last entry they include (``applied.json``, in the
same transaction), then deletes the entries it made redundant. After a crash, the next writer
(or a reader, when no writer runs) replays the entries after ``applied`` and checkpoints,
which leaves the database as it was after the last logged file.

An entry is a short header (magic, length, JSON: each array's name, dtype, length and
CRC-32) followed by each array's bytes as they are in memory, from a multiple of 64 bytes.
Each array can so be read back on its own: between checkpoints the partition builders hold
the :class:`LoggedRows` of their new Measure rows instead of the rows, and read them again
when the partition is written. The log is written once and read once, so both go around the
page cache (:mod:`dvo.codecs.direct`). The arrays are not compressed: writing them whole
takes a sixth of the CPU time zstd at level -3 takes to make them 3.6x smaller, and the
checkpoint uses the rows where they were read, with no copy. Entries of the three earlier
formats (one zstd frame per array; one frame for the whole entry; an np.savez archive) are
still replayed.
"""

from __future__ import annotations

import io
import json
import mmap
import os
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import zstandard
from numpy.lib.format import descr_to_dtype, dtype_to_descr
from zlib_ng.zlib_ng import crc32

from dvo.codecs import direct
from dvo.errors import DatabaseError
from dvo.layout import state_dir
from dvo.transaction import Transaction, fsync_dir

__all__ = ["Delta", "LogEntry", "LoggedRows", "LogReadAhead", "WriteAheadLog"]

FOLDER = "wal"
APPLIED = "applied.json"
SUFFIX = ".wal"
MAGIC = b"DVOWAL3\n"
ALIGN = 64  # each array of an entry starts at a multiple of this: its rows are aligned in place
ZST_SUFFIX = ".wal.zst"  # entries of dvo of 2026-11-21 to 22 (zstd), replayed:
FRAMES_MAGIC = b"DVOWAL2\n"  # one zstd frame per array
ONE_FRAME_MAGIC = b"DVOWAL1\n"  # the whole entry in one frame
OLD_SUFFIX = ".npz.zst"  # entries of dvo before 2026-11-21 (np.savez archives), replayed


@dataclass
class Delta:
    """One file's changes: Image rows and, per partition index, (new Average rows, Measure
    rows, Lensing rows) with AVE_REF numbering the objects after the partition's existing ones."""

    images: np.ndarray
    parts: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = field(default_factory=list)


@dataclass(frozen=True)
class LoggedRows:
    """One array of a log entry, read back when needed (the entry stays until the checkpoint
    that includes it has committed)."""

    path: Path
    offset: int
    size: int  # bytes in the entry
    dtype: np.dtype
    count: int
    crc: int | None = None  # CRC-32 of the rows; None: a zstd frame (entries of 2026-11-21)

    @property
    def nbytes(self) -> int:
        """Bytes read back from the log to get the rows."""
        return self.size

    def read(self, frame: bytes | memoryview | None = None) -> np.ndarray:
        """The rows, from ``frame`` (their bytes, read already: the rows may be a view of it)
        or read now; DatabaseError if the entry is missing or damaged."""
        try:
            if frame is None:
                frame = direct.read_range(self.path, self.offset, self.size)
            return _decode(frame, self.dtype, self.count, self.crc)
        except (OSError, ValueError, zstandard.ZstdError) as exc:
            raise DatabaseError(f"{self.path}: unreadable write-ahead log entry ({exc})") from None


class LogReadAhead:
    """Reads groups of :class:`LoggedRows` (a partition's, at a checkpoint) on a background
    thread, the next group while the rows of this one are used: the disk's time is spent
    waiting there, not here. Each group goes into one of two reused page-aligned buffers,
    read with ``O_DIRECT`` where allowed (:mod:`dvo.codecs.direct`).

    :meth:`read` gives the rows of a LoggedRows of the last two groups prefetched (views of
    the buffer, valid until the next-but-one :meth:`prefetch`), or reads them now; a read
    that failed in the background is done again, to report what is wrong.
    """

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._buffers: list[mmap.mmap | None] = [None, None]
        self._groups: list[Future | None] = [None, None]  # per buffer: {LoggedRows: frame}
        self._slot = 0

    def prefetch(self, rows: list[LoggedRows]) -> None:
        """Start reading ``rows`` (into the buffer the group before last used)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="dvo-log-readahead")
        self._slot = 1 - self._slot  # one thread: the read into it before is done first
        self._groups[self._slot] = self._pool.submit(self._read_group, list(rows), self._slot)

    def read(self, rows: LoggedRows) -> np.ndarray:
        """The rows of ``rows`` (as :meth:`LoggedRows.read`)."""
        for group in (self._groups[self._slot ^ 1], self._groups[self._slot]):
            if group is not None and group.exception() is None and rows in group.result():
                return rows.read(group.result()[rows])
        return rows.read()

    def close(self) -> None:
        """Wait for the background reads, and stop the thread."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._groups = [None, None]

    def __enter__(self) -> LogReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read_group(self, rows: list[LoggedRows], slot: int) -> dict:
        """Each of ``rows``' frames, read into buffer ``slot`` one after another."""
        lengths = [direct.span(r.offset, r.size)[1] for r in rows]
        buf = self._buffers[slot] = direct.grown(self._buffers[slot], sum(lengths))
        view, at, frames = memoryview(buf), 0, {}
        for r, length in zip(rows, lengths, strict=True):
            frames[r] = direct.read_span(r.path, r.offset, r.size, view[at : at + length])
            at += length
        return frames


@dataclass(frozen=True)
class LogEntry:
    """A logged Delta: its number, and where the Measure rows of each of its parts are."""

    seq: int
    measure: list[LoggedRows]


class WriteAheadLog:
    """The log folder ``.dvo/wal/`` of a database: numbered entries and ``applied.json``."""

    def __init__(self, catdir: str | Path) -> None:
        self.catdir = Path(catdir)
        self.folder = state_dir(self.catdir) / FOLDER
        self._last: int | None = None  # number of the last entry, once looked up (the writer)
        self._writer: ThreadPoolExecutor | None = None

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
        found = [
            (p.name.split(".")[0], p)
            for suffix in (SUFFIX, ZST_SUFFIX, OLD_SUFFIX)
            for p in self.folder.glob(f"*{suffix}")
        ]
        return sorted((int(stem), p) for stem, p in found if stem.isdigit())

    def pending(self) -> list[tuple[int, Path]]:
        """(number, path) of the entries the partitions do not include yet, in order."""
        applied = self.applied()
        return [(seq, p) for seq, p in self._entries() if seq > applied]

    def append(self, delta: Delta) -> LogEntry:
        """Write ``delta`` durably as the next entry; returns its number and locations."""
        with self.appending(delta) as entry:
            return entry

    @contextmanager
    def appending(self, delta: Delta) -> Iterator[LogEntry]:
        """Write ``delta`` as the next entry on a background thread while the block runs
        (which must not change its arrays): it is durable once the block is left, and a
        write that failed raises there. Yields the entry's number and locations."""
        if self._last is None:  # the folder is listed once per run, not once per file
            self.folder.mkdir(parents=True, exist_ok=True)
            entries = self._entries()
            self._last = max(self.applied(), entries[-1][0] if entries else 0)
        seq = self._last + 1
        final, tmp = self.folder / f"{seq:010d}{SUFFIX}", self.folder / f".{seq:010d}.tmp"
        parts, where = _entry(delta)
        if self._writer is None:  # one thread, so its write buffer is reused
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="dvo-wal-append")
        written = self._writer.submit(self._write, tmp, final, parts)
        try:
            yield LogEntry(seq, _measure_rows(final, delta, where))
        finally:
            wait([written])  # the block's own error, if any, comes first
        written.result()
        self._last = seq

    def _write(self, tmp: Path, final: Path, parts: list) -> None:
        """Write an entry under a temporary name, then give it its name: whole or absent."""
        direct.write_file(tmp, parts, sync=True)
        os.replace(tmp, final)
        fsync_dir(self.folder)

    def close(self) -> None:
        """Stop the thread that writes entries (after the write under way, if any)."""
        if self._writer is not None:
            self._writer.shutdown()
            self._writer = None

    def read(self, path: Path) -> Delta:
        """The Delta of one entry."""
        return self.read_located(path)[0]

    def read_located(self, path: Path) -> tuple[Delta, list[LoggedRows] | None]:
        """The Delta of one entry and, for entries of the current format, where each of its
        parts' Measure rows is in the entry (as :meth:`append` returns them)."""
        try:
            if path.name.endswith(OLD_SUFFIX):
                return _read_npz_entry(path.read_bytes()), None
            data = path.read_bytes()
            if not data.startswith((MAGIC, FRAMES_MAGIC)):
                return _read_one_frame_entry(data), None
            delta, where = _read_entry(data)
        except (OSError, ValueError, KeyError, TypeError, zstandard.ZstdError) as exc:
            raise DatabaseError(f"{path}: unreadable write-ahead log entry ({exc})") from None
        return delta, _measure_rows(path, delta, where)

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


def _arrays(delta: Delta) -> dict[str, np.ndarray]:
    arrays = {"images": delta.images, "parts": np.array([p[0] for p in delta.parts], "i8")}
    for k, (_, average, measure, lensing) in enumerate(delta.parts):
        arrays.update({f"average{k}": average, f"measure{k}": measure, f"lensing{k}": lensing})
    return {name: np.ascontiguousarray(a) for name, a in arrays.items()}


def _entry(delta: Delta) -> tuple[list, dict[str, tuple[int, int, int]]]:
    """The parts of an entry: MAGIC, header length (8 bytes, little-endian), JSON header,
    then each array's bytes from the next multiple of ALIGN (zeros between); and each
    array's (offset, size, CRC-32) in it."""
    arrays = _arrays(delta)
    raws = {name: a.reshape(-1).view(np.uint8) for name, a in arrays.items()}
    crcs = {name: crc32(raw) for name, raw in raws.items()}
    header = json.dumps(
        [[name, dtype_to_descr(a.dtype), len(a), crcs[name]] for name, a in arrays.items()]
    ).encode()
    head = MAGIC + len(header).to_bytes(8, "little") + header
    parts, offset, where = [head], len(head), {}
    for name, raw in raws.items():
        pad = -offset % ALIGN
        parts += [bytes(pad), raw]
        offset += pad
        where[name] = (offset, raw.nbytes, crcs[name])
        offset += raw.nbytes
    return parts, where


def _measure_rows(path: Path, delta: Delta, where: dict) -> list[LoggedRows]:
    """The LoggedRows of each part's Measure rows, from the arrays' (offset, size, CRC-32)."""
    rows = []
    for k, (_, _, measure, _) in enumerate(delta.parts):
        offset, size, crc = where[f"measure{k}"]
        rows.append(LoggedRows(path, offset, size, measure.dtype, len(measure), crc))
    return rows


def _read_entry(data: bytes) -> tuple[Delta, dict[str, tuple]]:
    """The Delta of an entry of this format or the one before (one zstd frame per array;
    arrays copied: writable) and each array's (offset, size, CRC-32 or None) in it."""
    framed = data.startswith(FRAMES_MAGIC)
    header, end = _header(data, FRAMES_MAGIC if framed else MAGIC)
    view, arrays, where = memoryview(data), {}, {}
    for name, descr, n, check in header:
        dtype = descr_to_dtype(_tuples(descr))
        if framed:  # check is the frame's size
            size, crc = check, None
        else:
            end += -end % ALIGN
            size, crc = n * dtype.itemsize, check
        arrays[name] = _decode(view[end : end + size], dtype, n, crc).copy()  # writable
        where[name] = (end, size, crc)
        end += size
    if end != len(data):
        raise ValueError(f"{len(data) - end} bytes left over")
    return _delta(arrays), where


def _header(buf, magic: bytes) -> tuple[list, int]:
    """An entry's JSON header (after ``magic`` and its 8-byte length) and where it ends."""
    if bytes(buf[: len(magic)]) != magic:
        raise ValueError("not a dvo log entry")
    start = len(magic) + 8
    end = start + int.from_bytes(buf[len(magic) : start], "little")
    return json.loads(bytes(buf[start:end])), end


def _decode(frame, dtype: np.dtype, count: int, crc: int | None) -> np.ndarray:
    """``count`` rows of ``dtype`` stored as they are, with CRC-32 ``crc`` (a view of
    ``frame``), or from one zstd frame (``crc`` None; the frame's checksum checked)."""
    size = count * dtype.itemsize
    if crc is None:
        if zstandard.frame_content_size(frame) != size:
            raise ValueError(f"a frame does not hold {count} rows")
        frame = zstandard.ZstdDecompressor().decompress(frame)
    elif len(frame) != size or crc32(frame) != crc:
        raise ValueError(f"{count} rows of {len(frame)} bytes fail their CRC-32")
    return np.frombuffer(frame, dtype, count=count)


def _read_one_frame_entry(data: bytes) -> Delta:
    """The Delta of an entry of the one-frame format (magic, header, arrays in one frame)."""
    raw = memoryview(zstandard.ZstdDecompressor().decompress(data))
    header, end = _header(raw, ONE_FRAME_MAGIC)
    arrays = {}
    for name, descr, n in header:
        dtype = descr_to_dtype(_tuples(descr))
        arrays[name] = np.frombuffer(raw, dtype, count=n, offset=end).copy()
        end += n * dtype.itemsize
    if end != len(raw):
        raise ValueError(f"{len(raw) - end} bytes left over")
    return _delta(arrays)


def _read_npz_entry(data: bytes) -> Delta:
    with np.load(io.BytesIO(zstandard.ZstdDecompressor().decompress(data))) as z:
        return _delta(z)


def _delta(arrays) -> Delta:
    """The Delta held by a mapping of the arrays :func:`_arrays` names."""
    parts = [
        (int(index), arrays[f"average{k}"], arrays[f"measure{k}"], arrays[f"lensing{k}"])
        for k, index in enumerate(arrays["parts"])
    ]
    return Delta(arrays["images"], parts)


def _tuples(descr):
    """A dtype description back from JSON (lists where numpy wrote tuples): a type string,
    or fields (name, type[, shape])."""
    if isinstance(descr, str):
        return descr
    return [(f[0], _tuples(f[1])) + ((tuple(f[2]),) if len(f) > 2 else ()) for f in descr]
