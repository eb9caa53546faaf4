"""The database on disk: create, open, and read its tables.

Writes go through :class:`dvo.transaction.Transaction` (see :mod:`dvo.ingest` for addstar);
this module only creates empty databases and reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np

from dvo import codecs, layout
from dvo.errors import CodecError, DatabaseError, LockError, ReadOnlyError
from dvo.partition import Partition, read_partition
from dvo.photcodes import SEC_NAMES, Photcodes, default_photcodes, read_photcode_text
from dvo.query.api import QueryMixin
from dvo.schema import IMAGE, PHOTCODE
from dvo.skytable import Scheme, SkyTable
from dvo.stats import STATS_VERSION, empty_stats
from dvo.transaction import Transaction, reader_lock, writer_lock
from dvo.wal import WriteAheadLog

__all__ = ["Database", "open_database", "create_database", "FORMAT"]

FORMAT = "dvo-1"

DEFAULT_SETTINGS = {
    "format": FORMAT,
    "compression": "default",
    "tile_rows": 10000,
    "match_radius_arcsec": 1.0,
}


class Database(QueryMixin):
    """An open dvo database (CATDIR).

    Use :func:`open_database` or :func:`create_database`, or ``dvo.open(path)``.
    """

    def __init__(self, catdir: str | Path) -> None:
        self.catdir = Path(catdir).resolve()
        settings_path = self.catdir / layout.SETTINGS
        if not settings_path.is_file():
            raise DatabaseError(f"{catdir}: not a dvo database (no {layout.SETTINGS})")
        try:
            self.settings = json.loads(settings_path.read_text())
        except ValueError as exc:
            raise DatabaseError(f"{settings_path}: unreadable settings ({exc})") from None
        if self.settings.get("format") != FORMAT:
            raise DatabaseError(f"{catdir}: unknown database format {self.settings.get('format')}")

    def __repr__(self) -> str:
        return f"Database({str(self.catdir)!r})"

    @cached_property
    def skytable(self) -> SkyTable:
        """The sky partition."""
        return SkyTable.read(self.catdir / layout.SKYTABLE)

    @cached_property
    def photcodes(self) -> Photcodes:
        """The photcode table."""
        return Photcodes(self._read(layout.PHOTCODES))

    @property
    def nsecfilt(self) -> int:
        """Average filters per object."""
        return self.photcodes.nsecfilt

    @property
    def match_radius(self) -> float:
        """Default association radius, arcsec."""
        return float(self.settings["match_radius_arcsec"])

    def images(self, columns: list[str] | None = None) -> np.ndarray:
        """The Images table (one row per chip and one per exposure)."""
        return self._read(layout.IMAGES, columns=columns)

    def next_image_id(self) -> int:
        """The next free IMAGE_ID (kept in the Images header as DVO does)."""
        return int(codecs.read_header(self.catdir / layout.IMAGES).get("IMAGEID", 1))

    def stats(self) -> np.ndarray:
        """Per-partition statistics (row counts, object bounds, magnitude ranges)."""
        return self._read(layout.STATS)

    def populated(self) -> np.ndarray:
        """SkyTable indices of the partitions that hold objects, sorted."""
        stats = self.stats()
        return np.sort(stats["INDEX"][stats["NAVERAGE"] > 0].astype(np.int64))

    def partition(
        self,
        index: int,
        *,
        kinds: tuple[str, ...] = ("average", "secfilt", "measure", "lensing"),
        columns: dict[str, list[str]] | None = None,
    ) -> Partition:
        """Read one partition by SkyTable index."""
        name = layout.check_partition_name(str(self.skytable.name[index]))
        return read_partition(
            self.catdir, int(index), name, self.nsecfilt, kinds=kinds, columns=columns
        )

    @contextmanager
    def writer(self, *, timeout: float | None = None) -> Iterator[None]:
        """Hold the single-writer lock, after finishing what a crashed writer left: an
        interrupted commit (rolled forward) and addstar's logged files (replayed)."""
        with writer_lock(self.catdir, timeout=timeout):
            self._replay_log()
            yield

    @contextmanager
    def reader(self) -> Iterator[None]:
        """Hold the shared commit lock: a consistent snapshot. A crashed addstar's logged files
        are replayed first; a running addstar's are not, readers see its last checkpoint."""
        if WriteAheadLog(self.catdir).pending():
            try:
                with writer_lock(self.catdir, timeout=0):
                    self._replay_log(reader=True)
            except LockError:
                pass  # a writer is running
            except ReadOnlyError:
                pass  # a read-only copy of what a crashed addstar left: its last checkpoint
        with reader_lock(self.catdir):
            yield

    def _replay_log(self, *, reader: bool = False) -> None:
        from dvo.ingest import replay  # addstar is built on this module

        replay(self, reader=reader)

    def _read(self, relpath: str, columns: list[str] | None = None) -> np.ndarray:
        path = self.catdir / relpath
        try:
            return codecs.read_table(path, columns=columns)
        except (CodecError, OSError) as exc:
            raise DatabaseError(f"{path}: {exc}") from exc


def open_database(catdir: str | Path) -> Database:
    """Open an existing database."""
    return Database(catdir)


def create_database(
    catdir: str | Path,
    *,
    scheme: Scheme | str = Scheme.GSC,
    level: int = 3,
    order: int = 7,
    filters: tuple[str, ...] | list[str] = SEC_NAMES,
    photcodes: str | Path | None = None,
    compression: str = "default",
    match_radius: float = 1.0,
) -> Database:
    """Make an empty database: SkyTable, Photcodes, empty Images and Stats, settings.

    Raises DatabaseError if ``catdir`` exists and is not empty.
    """
    catdir = Path(catdir)
    if catdir.exists() and any(catdir.iterdir()):
        raise DatabaseError(f"{catdir}: exists and is not empty")
    scheme = Scheme[scheme.upper()] if isinstance(scheme, str) else scheme
    sky = SkyTable.gsc(level=level) if scheme is Scheme.GSC else SkyTable.healpix(order=order)
    table = read_photcode_text(photcodes) if photcodes else default_photcodes(tuple(filters))
    catdir.mkdir(parents=True, exist_ok=True)
    layout.state_dir(catdir).mkdir()
    settings = dict(
        DEFAULT_SETTINGS,
        compression=compression,
        match_radius_arcsec=match_radius,
        scheme=scheme.name.lower(),
        level=level if scheme is Scheme.GSC else order,
    )
    with writer_lock(catdir), Transaction(catdir) as tx:
        sky.write(tx.stage(layout.SKYTABLE))
        codecs.write_table(
            tx.stage(layout.PHOTCODES),
            PHOTCODE.conform(table.table),
            compression="none",
            extname=PHOTCODE.name,
        )
        codecs.write_table(
            tx.stage(layout.IMAGES),
            IMAGE.empty(0),
            compression=compression,
            extname=IMAGE.name,
            units=IMAGE.units,
            header={"IMAGEID": 1},
        )
        codecs.write_table(
            tx.stage(layout.STATS),
            empty_stats(table.nsecfilt),
            compression="none",
            extname="DVO_STATS",
            header={"STATSVER": STATS_VERSION},
        )
        path = tx.stage(layout.SETTINGS)
        path.write_text(json.dumps(settings, indent=1) + "\n")
    return Database(catdir)
