"""addstar: ingest exposure catalogues (smf) and reference catalogues into a database.

Each input file is one transaction: its images, the partitions it touches and the statistics
index are staged and swapped in together (:mod:`dvo.transaction`), so a crash leaves the
database as it was before or after that file. Files are processed in the order given; a bad
file is reported and skipped, the others still load. Re-ingesting a file already loaded (same
EXP_ID, or same name for a reference catalogue) changes nothing unless ``replace=True``, which
removes the old measurements first.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo import codecs, layout
from dvo.associate import Matcher, one_per_image
from dvo.averages import attach
from dvo.catalog_input import CATALOG_SUFFIXES, read_catalog
from dvo.database import Database
from dvo.errors import DvoError, IngestError
from dvo.flags import MeasFlags
from dvo.ingest_edit import remove_images
from dvo.partition import Partition, expand_ranges, write_partition
from dvo.schema import AVERAGE, IMAGE
from dvo.smf import IngestBatch, read_smf
from dvo.stats import merge_stats, partition_stats
from dvo.transaction import Transaction

__all__ = ["AddstarReport", "addstar", "PartitionCache"]

#: A batch is committed early once its changed partitions hold this much memory.
MAX_PENDING_BYTES = 2 << 30


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

    def __init__(self, db: Database, budget_bytes: int = 4 << 30) -> None:
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
        return _nbytes(self._parts.values())


def _nbytes(parts: Iterable[Partition]) -> int:
    """Memory held by partitions' tables."""
    return sum(
        p.average.nbytes + p.secfilt.nbytes + p.measure.nbytes + p.lensing.nbytes for p in parts
    )


@dataclass
class _Pending:
    """Loaded but not yet committed: changed partitions, the Images and Stats tables."""

    images: np.ndarray
    next_id: int
    stats: np.ndarray
    parts: dict[int, Partition] = field(default_factory=dict)
    files: int = 0


def read_input(path: str | Path, db: Database, photcode: str | None) -> IngestBatch:
    """Read one input file: smf, or a plain catalogue under a REF photcode."""
    path = Path(path)
    if not path.is_file():
        raise IngestError("no such file", file=str(path))
    if path.name.lower().endswith(CATALOG_SUFFIXES) and not _is_smf(path):
        if photcode is None:
            raise IngestError("a plain catalogue needs --photcode (a REF photcode)", file=str(path))
        return read_catalog(path, db.photcodes, photcode)
    return read_smf(path, db.photcodes)


def _is_smf(path: Path) -> bool:
    """An smf is a FITS file whose primary header has EXP_NAME."""
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
    batch: int = 1,
    progress: Callable[[int], None] | None = None,
    lock_timeout: float | None = None,
) -> AddstarReport:
    """Ingest files into ``db``; see the module docstring for the guarantees.

    Parameters
    ----------
    radius : match radius in arcsec (default: the database's, 1 arcsec).
    replace : swap the measurements of already loaded files for the new ones.
    photcode : REF photcode name for plain catalogues.
    batch : files per transaction. 1 (the default) commits after every file; a bulk load may
        group files for speed, and a crash then returns to the state after the last committed
        file, from which rerunning the same command completes the load.
    progress : called with 1 after each file.
    """
    if batch < 1:
        raise IngestError(f"batch must be at least 1, got {batch}")
    report, start = AddstarReport(), time.perf_counter()
    matcher = Matcher(db.match_radius if radius is None else float(radius))
    with db.writer(timeout=lock_timeout):
        cache = PartitionCache(db)
        pending = _Pending(db.images(), db.next_image_id(), db.stats())
        for path in paths:
            report.files += 1
            try:
                _load(db, cache, pending, read_input(path, db, photcode), matcher, replace, report)
            except IngestError as exc:
                report.failed.append((str(path), str(exc)))
            except DvoError as exc:
                report.failed.append((str(path), f"{path}: {exc}"))
            if pending.files >= batch or _nbytes(pending.parts.values()) > MAX_PENDING_BYTES:
                _commit(db, cache, pending)
            if progress is not None:
                progress(1)
        _commit(db, cache, pending)
    report.seconds = time.perf_counter() - start
    return report


def _already_loaded(images: np.ndarray, batch: IngestBatch) -> np.ndarray:
    if batch.exp_id >= 0:
        return images["EXP_ID"] == batch.exp_id
    return (images["NAME"] == batch.images["NAME"][0]) & (images["EXP_ID"] < 0)


def _load(db, cache, pending: _Pending, batch, matcher, replace, report) -> None:
    """Associate one file and add its changes to ``pending`` (untouched if anything fails)."""
    old = _already_loaded(pending.images, batch)
    changed: dict[int, Partition] = {}
    images = pending.images
    if old.any():
        if not replace:
            report.skipped.append(batch.source)
            return
        changed, images = remove_images(db, _Overlay(cache, pending.parts), images, old)
    ids = pending.next_id + np.arange(len(batch.images), dtype=np.int64)
    batch.images["IMAGE_ID"] = ids
    source = _Overlay(cache, {**pending.parts, **changed})
    new_parts, counts = associate_batch(db, source, batch, ids, matcher)
    changed.update(new_parts)
    pending.parts.update(changed)
    pending.images = np.concatenate([images, batch.images])
    pending.next_id = int(ids[-1]) + 1
    if changed:
        rows = np.concatenate([partition_stats(p) for p in changed.values()])
        pending.stats = merge_stats(pending.stats, rows)
    pending.files += 1
    report.loaded += 1
    report.detections += batch.ndetections
    report.rejected += batch.rejected
    report.new_objects += counts["new"]
    report.matched += counts["matched"]
    report.blends += counts["blends"]


class _Overlay:
    """Partitions changed in this batch, else the committed ones from the cache."""

    def __init__(self, cache: PartitionCache, parts: dict[int, Partition]) -> None:
        self.cache, self.parts = cache, parts

    def get(self, index: int) -> Partition:
        return self.parts[index] if index in self.parts else self.cache.get(index)


def _commit(db: Database, cache: PartitionCache, pending: _Pending) -> None:
    """Write everything pending in one transaction, then remember it as committed."""
    if pending.files == 0:
        return
    compression, tile_rows = db.settings["compression"], int(db.settings["tile_rows"])
    sky = db.skytable
    with Transaction(db.catdir) as tx:
        for index, part in pending.parts.items():
            bounds = (sky.r_min[index], sky.r_max[index], sky.d_min[index], sky.d_max[index])
            write_partition(
                part, tx.stage, compression=compression, tile_rows=tile_rows, bounds=bounds
            )
        codecs.write_table(
            tx.stage(layout.IMAGES),
            IMAGE.conform(pending.images),
            compression=compression,
            tile_rows=tile_rows,
            extname=IMAGE.name,
            units=IMAGE.units,
            header={"IMAGEID": pending.next_id},
        )
        codecs.write_table(
            tx.stage(layout.STATS), pending.stats, compression="none", extname="DVO_STATS"
        )
    for part in pending.parts.values():
        cache.put(part)
    pending.parts, pending.files = {}, 0


def associate_batch(db, source, batch, ids, matcher) -> tuple[dict, dict]:
    """Match a batch's detections to objects and return the updated partitions and counts."""
    m = batch.measure.copy()
    counts = {"new": 0, "matched": 0, "blends": 0}
    if len(m) == 0:
        return {}, counts
    m["IMAGE_ID"] = ids[batch.meas_image]
    sky = db.skytable
    home = sky.lookup(m["RA"], m["DEC"])
    _, near = sky.near(m["RA"], m["DEC"], 2 * matcher.radius / 3600.0)
    touched = np.union1d(near, home).astype(np.int64)
    parts = {int(i): source.get(int(i)) for i in touched}
    sizes = np.array([p.nobjects for p in parts.values()], np.int64)
    owner, obj_row = expand_ranges(np.zeros_like(sizes), sizes)
    obj_part = touched[owner]
    obj_ra = np.concatenate([p.average["RA"] for p in parts.values()])
    obj_dec = np.concatenate([p.average["DEC"] for p in parts.values()])
    idx, sep = matcher.match(m["RA"], m["DEC"], obj_ra, obj_dec)
    loser = one_per_image(idx, m["IMAGE_ID"], sep)
    m["DB_FLAGS"][loser] |= np.uint32(MeasFlags.BLEND_OBJ)
    idx[loser] = -1
    matched = idx >= 0
    # a sentinel at the end: idx = -1 (no match) picks it
    target = np.where(matched, np.append(obj_part, -1)[idx], home)
    row = np.append(obj_row, -1)[idx]
    counts.update(new=int((~matched).sum()), matched=int(matched.sum()), blends=int(loser.sum()))
    return _apply_groups(db, parts, m, batch, target, row), counts


def _apply_groups(db, parts, m, batch, target, row) -> dict[int, Partition]:
    """Per target partition: new objects for unmatched detections, then attach everything.

    ``target``/``row`` give each detection's partition and Average row (-1: a new object).
    """
    order = np.argsort(target, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(target[order])) + 1)
    averef = np.empty(len(m), np.int64)
    lens_target = target[batch.lens_meas]
    result = {}
    for sel in groups:
        p = int(target[sel[0]])
        part = parts[p]
        refs = row[sel].copy()
        new = refs < 0
        n_new = int(new.sum())
        refs[new] = part.nobjects + np.arange(n_new)
        averef[sel] = refs
        new_avg = AVERAGE.empty(n_new)
        new_avg["RA"], new_avg["DEC"] = m["RA"][sel][new], m["DEC"][sel][new]
        new_avg["OBJ_ID"] = part.next_objid + np.arange(n_new)
        new_avg["CAT_ID"] = p
        obj_ids = np.concatenate([part.average["OBJ_ID"], new_avg["OBJ_ID"]])
        mm = m[sel]
        mm["AVE_REF"], mm["CAT_ID"], mm["OBJ_ID"] = refs, p, obj_ids[refs]
        in_p = lens_target == p  # a lensing row goes where its detection went
        lsel = batch.lens_meas[in_p]
        ll = batch.lensing[in_p].copy()
        ll["AVE_REF"], ll["CAT_ID"], ll["IMAGE_ID"] = averef[lsel], p, m["IMAGE_ID"][lsel]
        ll["OBJ_ID"] = obj_ids[averef[lsel]]
        result[p] = attach(part, new_avg, mm, ll, db.photcodes)
    return result
