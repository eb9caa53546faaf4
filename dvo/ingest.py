"""addstar: ingest exposure catalogues (smf) and reference catalogues into a database.

Files are processed in the order given; a bad file is reported and skipped, the others still
load. Re-ingesting a file already loaded (same EXP_ID, or same name for a reference catalogue)
changes nothing unless ``replace=True``, which removes the old measurements first.

Each file is associated against the partitions as they stand after the previous file. Its
changes (a :class:`dvo.wal.Delta`) are logged durably in the write-ahead log, then applied in
memory (:class:`dvo.builder.PartitionBuilder`): the cost of a file follows its own size, not
the size of the partitions it touches. The builders keep where the log holds a file's Measure
rows rather than the rows, and read them back when they write the partition. Changed
partitions are written at a checkpoint (the end of the run, every ``checkpoint`` files, or
when they hold more than MAX_PENDING_BYTES): one transaction writes them with the Images and
Stats tables. Readers see the last checkpoint. A crash leaves the database as it was after
the last logged file once the log is replayed, which the next writer does (or a reader, when
no writer runs): :func:`replay`. A ``--replace`` file is its own transaction, since it also
removes rows.

Partitions pushed to partition hosts are updated where they live
(:mod:`dvo.ingest_remote`): association reads a mirror of their positions, each file's rows
go to their hosts, and a checkpoint writes them there in two phases with the local
transaction as the commit point. The result is that of a local run.
"""

from __future__ import annotations

import os
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from itertools import chain, pairwise
from pathlib import Path

import numpy as np

from dvo import codecs, layout
from dvo.associate import Matcher, associate_batch
from dvo.builder import PartitionBuilder
from dvo.catalog_input import CATALOG_SUFFIXES, read_catalog
from dvo.database import Database
from dvo.errors import DvoError, HostError, IngestError
from dvo.ingest_edit import remove_images
from dvo.partition import Partition, write_partition
from dvo.readahead import ReadAhead
from dvo.schema import IMAGE
from dvo.smf import IngestBatch, read_smf
from dvo.stats import merge_stats, partition_stats
from dvo.transaction import Transaction
from dvo.wal import Delta, LogReadAhead, WriteAheadLog

__all__ = ["AddstarReport", "addstar", "replay", "PartitionCache"]


def _memory_share(fraction: float, floor: int = 1 << 30) -> int:
    """A share of the machine's physical memory (at least ``floor`` bytes)."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError):
        total = 0
    return max(int(total * fraction), floor)


#: Changed partitions are checkpointed once they hold this much memory; a checkpoint rewrites
#: them whole, so fewer, larger checkpoints cost less.
MAX_PENDING_BYTES = _memory_share(0.25)
#: Unchanged partitions kept in memory for association, least recently used dropped.
CACHE_BYTES = _memory_share(0.15)


@dataclass
class AddstarReport:
    """What an addstar run did."""

    files: int = 0
    loaded: int = 0
    skipped: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    detections: int = 0
    new_objects: int = 0
    matched: int = 0
    blends: int = 0
    rejected: int = 0
    seconds: float = 0.0

    def summary(self) -> str:
        """A few lines for the terminal."""
        rate = self.detections / self.seconds if self.seconds > 0 else 0.0
        lines = [
            f"files {self.files}: loaded {self.loaded}, already loaded {len(self.skipped)}, "
            f"failed {len(self.failed)}",
            f"detections {self.detections}: matched {self.matched}, new objects "
            f"{self.new_objects}, blends {self.blends}, rejected {self.rejected}",
            f"{self.seconds:.1f} s ({rate:,.0f} detections/s)",
        ]
        lines += [f"already loaded: {name}" for name in self.skipped]
        lines += [f"failed: {msg}" for _, msg in self.failed]
        return "\n".join(lines)


class PartitionCache:
    """Partitions read during one addstar run, least recently used dropped past a budget."""

    def __init__(self, db: Database, budget_bytes: int = CACHE_BYTES) -> None:
        self.db, self.budget = db, budget_bytes
        self._parts: OrderedDict[int, Partition] = OrderedDict()

    def get(self, index: int) -> Partition:
        """The partition, read from disk on first use."""
        if index in self._parts:
            self._parts.move_to_end(index)
            return self._parts[index]
        part = self.db.partition(index)
        self.put(part)
        return part

    def put(self, part: Partition) -> None:
        """Remember the current (committed) state of a partition."""
        self._parts[part.index] = part
        self._parts.move_to_end(part.index)
        while len(self._parts) > 1 and self._nbytes() > self.budget:
            self._parts.popitem(last=False)

    def _nbytes(self) -> int:
        return sum(
            p.average.nbytes + p.secfilt.nbytes + p.measure.nbytes + p.lensing.nbytes
            for p in self._parts.values()
        )


class _Loader:
    """The state of a run: partitions changed since the last checkpoint (builders), clean
    partitions (cache), and the Images and Stats tables as of the last logged file."""

    def __init__(self, db: Database, wal: WriteAheadLog, hosts=None) -> None:
        self.db, self.wal = db, wal
        self.hosts = hosts  # dvo.ingest_remote.HostPartitions: pushed partitions, or None
        self.cache = PartitionCache(db)
        self.dirty: dict[int, PartitionBuilder] = {}
        self.next_id, self.stats = db.next_image_id(), db.stats()
        self.images = db.images()
        self.seq = wal.applied()  # last log entry the in-memory state includes
        self.files = 0  # loaded since the last checkpoint

    @property
    def images(self) -> np.ndarray:
        """The Images table as of the last applied file (new rows are concatenated when
        asked for, not once per file: that copy would grow with the table)."""
        if len(self._images) > 1:
            self._images = [np.concatenate(self._images)]
        return self._images[0]

    @images.setter
    def images(self, table: np.ndarray) -> None:
        self._images = [table]
        self._exposures = set(table["EXP_ID"][table["EXP_ID"] >= 0].tolist())
        self._catalogues = set(table["NAME"][table["EXP_ID"] < 0].tolist())

    def loaded(self, batch: IngestBatch) -> np.ndarray | None:
        """The Images rows of an earlier load of the batch's file (a mask), None if it was
        never loaded: a set lookup, so checking a file does not scan the Images table."""
        if batch.exp_id >= 0:
            if batch.exp_id not in self._exposures:
                return None
            return self.images["EXP_ID"] == batch.exp_id
        name = batch.images["NAME"][0]
        if name not in self._catalogues:
            return None
        return (self.images["NAME"] == name) & (self.images["EXP_ID"] < 0)

    def get(self, index: int) -> PartitionBuilder | Partition:
        """A partition's current state (changed or clean), for association."""
        if self.hosts is not None and index in self.hosts:
            return self.hosts.get(index)
        return self.dirty[index] if index in self.dirty else self.cache.get(index)

    def prefetch(self, indices: np.ndarray) -> None:
        """Fetch at once what association will read of the pushed partitions among these."""
        if self.hosts is not None:
            self.hosts.fetch(indices)

    def apply(self, delta: Delta, seq: int | None = None, logged: list | None = None) -> None:
        """Add one file's changes to the partitions in memory (pushed ones: on their hosts).
        ``logged``: where the log holds each part's Measure rows (the builders keep that
        instead of the rows)."""
        parts = delta.parts
        where = dict(zip([p[0] for p in parts], logged, strict=True)) if logged else {}
        if self.hosts is not None:
            on_hosts = [p for p in parts if p[0] in self.hosts]
            if on_hosts:
                self.hosts.apply(on_hosts)
            parts = [p for p in parts if p[0] not in self.hosts]
        for index, average, measure, lensing in parts:
            if index not in self.dirty:
                self.dirty[index] = PartitionBuilder(self.cache.get(index))
            self.dirty[index].add(average, measure, lensing, self.db.photcodes, where.get(index))
        self._images.append(delta.images)
        ids = delta.images["EXP_ID"]
        self._exposures.update(ids[ids >= 0].tolist())
        self._catalogues.update(delta.images["NAME"][ids < 0].tolist())
        if len(delta.images):
            self.next_id = max(self.next_id, int(delta.images["IMAGE_ID"].max()) + 1)
        if seq is not None:
            self.seq = seq
        self.files += 1

    @property
    def pending_bytes(self) -> int:
        held = 0 if self.hosts is None else self.hosts.nbytes
        return held + sum(b.nbytes for b in self.dirty.values())

    def checkpoint(self, *, final: bool = False) -> None:
        """Write the changed partitions, Images and Stats in one transaction (with the
        partitions changed on hosts, the second phase of their two-phase write). Partitions
        are finished and written one at a time, so memory holds one finished partition at
        once; unless ``final`` (nothing reads them afterwards) they stay in the cache."""
        if self.files == 0:
            return
        db = self.db
        write, host_rows = None, []
        if self.hosts is not None and self.hosts.dirty:
            from dvo.hosts.twophase import HostWrite

            write = HostWrite(db, self.hosts.cfg, op="addstar", sessions=self.hosts.clients)
            host_rows.append(self.hosts.prepare(write))  # phase 1; aborted everywhere on failure
        try:
            self._commit(host_rows, write, keep=not final)
        except BaseException:
            if write is not None:
                write.abort()
            raise
        self.dirty, self.files = {}, 0
        if write is not None:
            try:
                write.commit()  # phase 2 on the hosts; one that does not confirm stays pending
            except HostError:
                self.hosts.refresh_database_files(best_effort=True)  # the hosts that did
                raise
            self.hosts.refresh_database_files()
        self.wal.prune()

    def _commit(self, host_rows: list[np.ndarray], write, keep: bool) -> None:
        """The local transaction (the commit point of a host write). A failure leaves the
        builders half consumed: the run stops, and the log still holds its files."""
        db, sky = self.db, self.db.skytable
        compression, tile_rows = db.settings["compression"], int(db.settings["tile_rows"])
        rows, order = [], list(self.dirty)
        with Transaction(db.catdir) as tx, LogReadAhead() as log:
            if order:
                log.prefetch(self.dirty[order[0]].logged)
            for index, ahead in pairwise([*order, None]):
                if ahead is not None:  # its logged rows are read while this one is written
                    log.prefetch(self.dirty[ahead].logged)
                part = self.dirty.pop(index).finish(log.read)
                rows.append(partition_stats(part))
                i = part.index
                bounds = (sky.r_min[i], sky.r_max[i], sky.d_min[i], sky.d_max[i])
                write_partition(
                    part, tx.stage, compression=compression, tile_rows=tile_rows, bounds=bounds
                )
                if keep:
                    self.cache.put(part)
            rows += host_rows
            stats = merge_stats(self.stats, np.concatenate(rows)) if rows else self.stats
            codecs.write_table(
                tx.stage(layout.IMAGES),
                IMAGE.conform(self.images),
                compression=compression,
                tile_rows=tile_rows,
                extname=IMAGE.name,
                units=IMAGE.units,
                header={"IMAGEID": self.next_id},
            )
            codecs.write_table(
                tx.stage(layout.STATS), stats, compression="none", extname="DVO_STATS"
            )
            self.wal.stage_applied(tx, self.seq)
            if write is not None:
                write.stage_decision(tx)
        self.stats = stats

    def close(self) -> None:
        """Stop the log's writing thread; end the worker sessions of the run, if any."""
        self.wal.close()
        if self.hosts is not None:
            self.hosts.close()


def replay(db: Database, *, reader: bool = False) -> int:
    """Apply the logged files that the last checkpoint does not include, and checkpoint; the
    caller holds the writer lock. Returns the number of files replayed.

    With partitions on hosts the replay runs there; a ``reader`` then leaves it to the next
    writer (it sees the last checkpoint), so that reading never depends on the hosts' state.
    """
    from dvo.ingest_remote import has_pushed, host_partitions

    wal = WriteAheadLog(db.catdir)
    entries = wal.pending()
    if entries:
        if reader and has_pushed(db):
            return 0
        loader = _Loader(db, wal, host_partitions(db))
        try:
            for seq, path in entries:
                delta, logged = wal.read_located(path)
                loader.apply(delta, seq, logged)
            loader.checkpoint(final=True)
        finally:
            loader.close()
    wal.prune()
    return len(entries)


def read_input(
    path: str | Path, db: Database, photcode: str | None, files: ReadAhead | None = None
) -> IngestBatch:
    """Read one input file: smf (through ``files``), or a plain catalogue under a REF
    photcode."""
    path = Path(path)
    if not path.is_file():
        raise IngestError("no such file", file=str(path))
    if _is_catalog(path):
        if photcode is None:
            raise IngestError("a plain catalogue needs --photcode (a REF photcode)", file=str(path))
        return read_catalog(path, db.photcodes, photcode)
    return read_smf(path, db.photcodes, files)


def _is_catalog(path: Path) -> bool:
    """Whether ``path`` is read as a plain catalogue (else as an smf)."""
    return path.name.lower().endswith(CATALOG_SUFFIXES) and not _is_smf(path)


def _is_smf(path: Path) -> bool:
    """An smf is a FITS file whose primary header has EXP_NAME (a FIFO or a folder is not:
    opening a FIFO would wait for a writer)."""
    if not path.is_file():
        return False
    try:
        with open(path, "rb") as fh:
            head = fh.read(2880 * 4)
    except OSError:
        return False
    return head.startswith(b"SIMPLE") and b"EXP_NAME" in head


def addstar(
    db: Database,
    paths: Iterable[str | Path],
    *,
    radius: float | None = None,
    replace: bool = False,
    photcode: str | None = None,
    checkpoint: int | None = None,
    progress: Callable[[AddstarReport], None] | None = None,
    lock_timeout: float | None = None,
) -> AddstarReport:
    """Ingest files into ``db``; see the module docstring for the guarantees.

    Parameters
    ----------
    radius : match radius in arcsec (default: the database's, 1 arcsec).
    replace : swap the measurements of already loaded files for the new ones.
    photcode : REF photcode name for plain catalogues.
    checkpoint : write the changed partitions at least every this many files (default: at
        the end of the run, or when they hold MAX_PENDING_BYTES), so that readers see them.
    progress : called after each file with the report so far.
    """
    if checkpoint is not None and checkpoint < 1:
        raise IngestError(f"checkpoint must be at least 1 file, got {checkpoint}")
    report, start = AddstarReport(), time.perf_counter()
    matcher = Matcher(db.match_radius if radius is None else float(radius))
    with db.writer(timeout=lock_timeout):
        from dvo.ingest_remote import host_partitions

        loader = _Loader(db, WriteAheadLog(db.catdir), host_partitions(db))
        files = ReadAhead()
        try:
            for path, upcoming in pairwise(chain(paths, [None])):
                report.files += 1
                _load_file(loader, path, photcode, matcher, replace, report, files, upcoming)
                if (checkpoint is not None and loader.files >= checkpoint) or (
                    loader.pending_bytes > MAX_PENDING_BYTES
                ):
                    loader.checkpoint()
                if progress is not None:
                    progress(report)
            loader.checkpoint(final=True)
        finally:
            files.close()
            loader.close()
    report.seconds = time.perf_counter() - start
    return report


def _load_file(
    loader: _Loader, path, photcode, matcher, replace, report, files: ReadAhead, upcoming
) -> None:
    """Read, associate and log one file, then apply it; a bad file changes nothing. The
    ``upcoming`` file (an smf) is read ahead meanwhile."""
    db = loader.db
    try:
        batch = read_input(path, db, photcode, files)
        if upcoming is not None and not _is_catalog(Path(upcoming)):
            files.prefetch(upcoming)
        old = loader.loaded(batch)
        if old is not None and not replace:
            report.skipped.append(batch.source)
            return
        if old is not None and loader.hosts is not None:
            raise IngestError("--replace cannot change partitions on hosts yet; run dvo hosts "
                              "pull first", file=str(path))  # fmt: skip
        if old is not None:
            loader.checkpoint()  # a replacement removes rows: its own transaction
            changed, images = remove_images(db, loader.cache, loader.images, old)
            builders = {i: PartitionBuilder(p) for i, p in changed.items()}
        else:
            builders, images = {}, loader.images

        def source(index: int):
            return builders[index] if index in builders else loader.get(index)

        ids = loader.next_id + np.arange(len(batch.images), dtype=np.int64)
        delta, counts = associate_batch(db, source, batch, ids, matcher, loader.prefetch)
    except HostError:
        raise  # a host failure stops the run: it is not this file's fault
    except IngestError as exc:
        report.failed.append((str(path), str(exc)))
        return
    except DvoError as exc:
        report.failed.append((str(path), f"{path}: {exc}"))
        return
    if old is not None:
        loader.dirty.update(builders)
        loader.images = images
        loader.apply(delta)
        loader.checkpoint()
    else:
        with loader.wal.appending(delta) as entry:  # written while it is applied
            loader.apply(delta, entry.seq, entry.measure)
    report.loaded += 1
    report.detections += batch.ndetections
    report.rejected += batch.rejected
    report.new_objects += counts["new"]
    report.matched += counts["matched"]
    report.blends += counts["blends"]
