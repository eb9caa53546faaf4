"""``dvo verify``: check every invariant of a database and report each violation precisely.

Checks: files readable and checksums valid; Images ids unique and below the counter; per
partition: ids and counters, SecFilt size, Measure sorted with offsets and counts matching,
every Measure's object and image exist, photcodes known, objects inside their partition (up
to twice the match radius, the distance an average may drift from where it was created),
averages equal a recomputation, and the statistics index equals the data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dvo import codecs, layout
from dvo.averages import recompute
from dvo.database import Database
from dvo.errors import DvoError
from dvo.partition import Partition, index_ranges
from dvo.stats import partition_stats
from dvo.transaction import JOURNAL

__all__ = ["Violation", "verify", "verify_database", "verify_partition"]


@dataclass(frozen=True)
class Violation:
    """One broken invariant: where, which check, and what was found."""

    where: str
    check: str
    detail: str

    def __str__(self) -> str:
        return f"{self.where}: {self.check}: {self.detail}"


def verify(
    db: Database, *, checksums: bool = True, progress: Callable[[int], None] | None = None
) -> list[Violation]:
    """All violations in ``db`` (empty when the database is sound)."""
    with db.reader():  # rolls forward an interrupted commit first
        out, image_ids = verify_database(db, checksums=checksums)
        stats = db.stats()
        for index in _partitions_on_disk(db, stats):
            try:
                part = db.partition(index)
                out += verify_partition(db, part, image_ids, stats, checksums=checksums)
            except DvoError as exc:
                out.append(Violation(str(db.skytable.name[index]), "readable", str(exc)))
            if progress is not None:
                progress(1)
    return out


def _partitions_on_disk(db: Database, stats: np.ndarray) -> list[int]:
    listed = set(int(i) for i in stats["INDEX"])
    names = {str(n): i for i, n in enumerate(db.skytable.name)}
    on_disk = set()
    for path in db.catdir.rglob("*" + layout.PARTITION_SUFFIXES["average"]):
        rel = path.relative_to(db.catdir).as_posix()[: -len(layout.PARTITION_SUFFIXES["average"])]
        if rel in names:
            on_disk.add(names[rel])
    return sorted(listed | on_disk)


def verify_database(db: Database, *, checksums: bool = True) -> tuple[list[Violation], np.ndarray]:
    """The database-wide checks, for a caller holding ``db.reader()``: no unfinished journal,
    files present and checksummed, image ids unique and below the counter.

    Returns the violations and the sorted image ids (what partition checks link against).
    """
    out = []
    if (layout.state_dir(db.catdir) / JOURNAL).exists():
        out.append(Violation("database", "journal", "an interrupted commit was not rolled forward"))
    image_ids = np.sort(db.images(columns=["IMAGE_ID"])["IMAGE_ID"].astype(np.int64))
    for rel in (layout.SKYTABLE, layout.PHOTCODES, layout.IMAGES, layout.STATS):
        path = db.catdir / rel
        if not path.exists():
            out.append(Violation(rel, "exists", "missing"))
        elif checksums and rel != layout.SKYTABLE:
            try:
                codecs.verify_checksums(path)
            except DvoError as exc:
                out.append(Violation(rel, "checksum", str(exc)))
    if (np.diff(image_ids) == 0).any():
        out.append(Violation(layout.IMAGES, "unique IMAGE_ID", "duplicate image ids"))
    if len(image_ids) and image_ids[-1] >= db.next_image_id():
        out.append(Violation(layout.IMAGES, "IMAGEID counter", "an IMAGE_ID is not below it"))
    return out, image_ids


def verify_partition(
    db: Database,
    part: Partition,
    image_ids: np.ndarray,
    stats: np.ndarray,
    *,
    checksums: bool = True,
) -> list[Violation]:
    """Violations within one partition."""
    where, out = part.name, []

    def bad(check: str, detail: str) -> None:
        out.append(Violation(where, check, detail))

    if checksums:
        for kind, path in layout.partition_files(db.catdir, part.name).items():
            try:
                codecs.verify_checksums(path)
            except DvoError as exc:
                bad(f"{kind} checksum", str(exc))
    ave, m = part.average, part.measure
    nobj = len(ave)
    _check_ids(part, bad)
    if len(part.secfilt) != nobj * part.nsecfilt:
        bad("SecFilt size", f"{len(part.secfilt)} rows for {nobj} objects x {part.nsecfilt}")
        return out
    ref = m["AVE_REF"].astype(np.int64)
    if len(m) and (ref.max() >= nobj):
        bad("AVE_REF", f"{int((ref >= nobj).sum())} measures point past the Average table")
        return out
    if (np.diff(ref) < 0).any():
        bad("Measure sorted", "measures are not grouped by object")
    off, cnt = index_ranges(ref, nobj)
    if not (np.array_equal(ave["OFF_MEASURE"], off) and np.array_equal(ave["NMEASURE"], cnt)):
        bad("offsets", "OFF_MEASURE/NMEASURE disagree with the Measure table")
    if len(m):
        if not np.array_equal(m["OBJ_ID"], ave["OBJ_ID"][ref]):
            bad("Measure OBJ_ID", "differs from its object's OBJ_ID")
        if (m["CAT_ID"] != part.index).any():
            bad("Measure CAT_ID", f"not all equal to {part.index}")
        missing = ~_isin_sorted(m["IMAGE_ID"].astype(np.int64), image_ids)
        if missing.any():
            bad("Measure IMAGE_ID", f"{int(missing.sum())} measures name images not in Images")
        unknown = ~db.photcodes.known(m["PHOTCODE"])
        if unknown.any():
            bad("PHOTCODE", f"{int(unknown.sum())} measures have unknown photcodes")
    _check_inside(db, part, bad)
    if not out:
        _check_averages(db, part, bad)
    _check_stats(part, stats, bad)
    return out


def _isin_sorted(values: np.ndarray, sorted_ref: np.ndarray) -> np.ndarray:
    if len(sorted_ref) == 0:
        return np.zeros(len(values), bool)
    pos = np.clip(np.searchsorted(sorted_ref, values), 0, len(sorted_ref) - 1)
    return sorted_ref[pos] == values


def _check_ids(part: Partition, bad) -> None:
    ave = part.average
    if (ave["CAT_ID"] != part.index).any():
        bad("CAT_ID", f"objects with CAT_ID other than {part.index}")
    if len(np.unique(ave["OBJ_ID"])) != len(ave):
        bad("OBJ_ID", "duplicate object ids")
    if len(ave) and int(ave["OBJ_ID"].max()) >= part.next_objid:
        bad("OBJID counter", f"an OBJ_ID is not below the counter {part.next_objid}")


def _check_inside(db: Database, part: Partition, bad) -> None:
    ave = part.average
    if len(ave) == 0:
        return
    if not (np.isfinite(ave["RA"]).all() and np.isfinite(ave["DEC"]).all()):
        bad("positions", "non-finite object positions")
        return
    inside = db.skytable.contains(np.full(len(ave), part.index), ave["RA"], ave["DEC"])
    if inside.all():
        return
    out_ra, out_dec = ave["RA"][~inside], ave["DEC"][~inside]
    pts, parts = db.skytable.near(out_ra, out_dec, 2 * db.match_radius / 3600.0)
    close = np.zeros(len(out_ra), bool)
    close[pts[parts == part.index]] = True
    if not close.all():
        bad("inside partition", f"{int((~close).sum())} objects lie outside the partition")


_FLOAT_CHECKS = {
    "average": ("RA", "DEC", "RA_ERR", "CHISQ_POS"),
    "secfilt": ("MAG", "MAG_ERR", "MAG_STDEV", "MAG_MIN", "MAG_MAX", "MAG_AP", "MAG_KRON"),
}
_EXACT_CHECKS = {
    "average": ("NUMBER_POS", "NMEASURE", "OFF_MEASURE", "NLENSING", "OFF_LENSING"),
    "secfilt": ("NCODE", "NUSED", "NUSED_AP", "NUSED_KRON"),
}


def _check_averages(db: Database, part: Partition, bad) -> None:
    fresh = recompute(part, db.photcodes)
    for kind in ("average", "secfilt"):
        stored, want = part.table(kind), fresh.table(kind)
        for col in _FLOAT_CHECKS[kind]:
            a, b = stored[col].astype(np.float64), want[col].astype(np.float64)
            tol = 1e-9 if col in ("RA", "DEC") else 2e-5
            same = np.isclose(a, b, rtol=1e-6, atol=tol, equal_nan=True)
            if not same.all():
                bad(f"{kind} {col}", f"{int((~same).sum())} values differ from a recomputation")
        for col in _EXACT_CHECKS[kind]:
            if not np.array_equal(stored[col], want[col]):
                bad(f"{kind} {col}", "differs from a recomputation")


def _check_stats(part: Partition, stats: np.ndarray, bad) -> None:
    row = stats[stats["INDEX"] == part.index]
    want = partition_stats(part)
    if len(row) != 1:
        if len(part.average):
            bad("stats", "no row in the statistics index")
        return
    for col in ("NAVERAGE", "NMEASURE", "NLENSING"):
        if int(row[col][0]) != int(want[col][0]):
            bad("stats", f"{col} is {int(row[col][0])}, the partition has {int(want[col][0])}")
