"""One partition's tables in memory: Average, SecFilt, Measure and Lensing.

A partition is the unit of storage, locking-free reads and parallel work. On disk it is four
compressed FITS tables (``.cpt .cps .cpm .cpx``); the ``.cpt`` primary header carries the
counters (``OBJID`` = next free objID, ``CATID``) and names its sibling files as DVO does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo import codecs, layout
from dvo.errors import CodecError, DatabaseError
from dvo.schema import AVERAGE, LENSING, MEASURE, SECFILT, Schema

__all__ = [
    "Partition",
    "read_partition",
    "write_partition",
    "index_ranges",
    "expand_ranges",
    "SCHEMAS",
]

SCHEMAS: dict[str, Schema] = {
    "average": AVERAGE,
    "secfilt": SECFILT,
    "measure": MEASURE,
    "lensing": LENSING,
}


@dataclass
class Partition:
    """The tables of one partition.

    ``secfilt`` has ``nsecfilt`` rows per Average row (row ``i * nsecfilt + k``); Measure and
    Lensing rows of object ``i`` are contiguous from ``OFF_MEASURE``/``OFF_LENSING``.
    """

    index: int
    name: str
    nsecfilt: int
    average: np.ndarray = field(default_factory=lambda: AVERAGE.empty(0))
    secfilt: np.ndarray = field(default_factory=lambda: SECFILT.empty(0))
    measure: np.ndarray = field(default_factory=lambda: MEASURE.empty(0))
    lensing: np.ndarray = field(default_factory=lambda: LENSING.empty(0))
    next_objid: int = 0

    @property
    def nobjects(self) -> int:
        """Number of Average rows."""
        return len(self.average)

    def table(self, kind: str) -> np.ndarray:
        """The table of one kind (``average``, ``secfilt``, ``measure``, ``lensing``)."""
        return getattr(self, kind)


def index_ranges(averef: np.ndarray, nobj: int) -> tuple[np.ndarray, np.ndarray]:
    """(offset, count) of each object's rows in a table sorted by AVE_REF."""
    cnt = np.bincount(averef.astype(np.int64), minlength=nobj)[:nobj]
    off = np.zeros(nobj, np.int64)
    np.cumsum(cnt[:-1], out=off[1:])
    return off, cnt


def expand_ranges(off: np.ndarray, cnt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(owner, row) for every row of the ranges ``off[i] .. off[i] + cnt[i] - 1``.

    Examples
    --------
    >>> owner, row = expand_ranges(np.array([5, 0]), np.array([2, 1]))
    >>> owner.tolist(), row.tolist()
    ([0, 0, 1], [5, 6, 0])
    """
    cnt = np.asarray(cnt, np.int64)
    owner = np.repeat(np.arange(len(cnt)), cnt)
    starts = np.cumsum(cnt) - cnt
    return owner, np.arange(int(cnt.sum())) - starts[owner] + np.asarray(off, np.int64)[owner]


def read_partition(
    catdir: Path,
    index: int,
    name: str,
    nsecfilt: int,
    *,
    kinds: tuple[str, ...] = tuple(SCHEMAS),
    columns: dict[str, list[str]] | None = None,
) -> Partition:
    """Read a partition (an absent partition reads as empty).

    ``columns`` restricts the columns read per kind; the result then holds arrays with just
    those fields.
    """
    part = Partition(index, name, nsecfilt)
    files = layout.partition_files(catdir, name)
    if not files["average"].exists():
        return part
    try:
        if "average" in kinds:  # the objID counter only matters with the objects
            part.next_objid = _next_objid(files["average"])
        for kind in kinds:
            path = files[kind]
            cols = None if columns is None else columns.get(kind)
            if not path.exists():
                if kind == "average":
                    raise DatabaseError(f"{path}: missing")
                continue
            setattr(part, kind, codecs.read_table(path, columns=cols))
    except (CodecError, OSError) as exc:
        raise DatabaseError(f"partition {name}: {exc}") from exc
    return part


def _next_objid(path: Path) -> int:
    """The next free objID, kept in the ``.cpt`` primary header."""
    return int(codecs.read_header(path, ext=0).get("OBJID", 0))


def write_partition(
    part: Partition,
    stage,
    *,
    compression: str | dict = "default",
    tile_rows: int = 10000,
    bounds: tuple[float, float, float, float] | None = None,
) -> None:
    """Write every table of a partition to staged paths (``stage(relpath) -> Path``)."""
    for kind, schema in SCHEMAS.items():
        rel = layout.partition_path("", part.name, kind)
        data = schema.conform(part.table(kind), what=f"partition {part.name} {kind}")
        primary = _primary_header(part, bounds) if kind == "average" else None
        codecs.write_table(
            stage(rel),
            data,
            compression=compression,
            tile_rows=tile_rows,
            extname=schema.name,
            units=schema.units,
            primary_header=primary,
            header={"NSECFILT": part.nsecfilt} if kind == "secfilt" else None,
        )


def _primary_header(part: Partition, bounds) -> list[tuple]:
    stem = Path(part.name).name
    cards = [
        ("NSTARS", len(part.average), "number of objects"),
        ("NMEAS", len(part.measure), "number of measurements"),
        ("NMISS", 0, "number of missing entries"),
        ("NSECFILT", part.nsecfilt, "average filters per object"),
        ("NLENSING", len(part.lensing), "number of lensing rows"),
        ("OBJID", int(part.next_objid), "next free objID in this partition"),
        ("CATID", int(part.index), "SkyTable index of this partition"),
        ("MEASURE", stem + layout.PARTITION_SUFFIXES["measure"], ""),
        ("SECFILT", stem + layout.PARTITION_SUFFIXES["secfilt"], ""),
        ("LENSING", stem + layout.PARTITION_SUFFIXES["lensing"], ""),
    ]
    if bounds is not None:
        cards += [
            (k, float(v), "") for k, v in zip(("RA0", "RA1", "DEC0", "DEC1"), bounds, strict=True)
        ]
    return cards
