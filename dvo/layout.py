"""Every path of a dvo database comes from here (hats' ``io/paths.py`` habit).

::

    CATDIR/
      SkyTable.fits  Photcodes.fits  Images.fits  dvo.json
      n0000/0000.cpt  .cps  .cpm  .cpx     Average, SecFilt, Measure, Lensing of one partition
      .dvo/                                locks and the commit journal
"""

from __future__ import annotations

import re
from pathlib import Path

from dvo.errors import DatabaseError

__all__ = [
    "SKYTABLE",
    "PHOTCODES",
    "IMAGES",
    "SETTINGS",
    "HOSTTABLE",
    "HOSTMANIFEST",
    "STATS",
    "RELASTRO",
    "PARTITION_SUFFIXES",
    "partition_path",
    "partition_files",
    "state_dir",
    "check_partition_name",
]

SKYTABLE = "SkyTable.fits"
PHOTCODES = "Photcodes.fits"
IMAGES = "Images.fits"
SETTINGS = "dvo.json"
HOSTTABLE = "HostTable.dat"
HOSTMANIFEST = "HostManifest.json"  # local file stamps of pushed partitions (dvo.hosts.sync)
STATS = "Stats.fits"
RELASTRO = "RelAstro.fits"  # relastro's per-chip corrections (dvo.relastro.apply)

#: Table kind -> file suffix of a partition (DVO's split mode names).
PARTITION_SUFFIXES: dict[str, str] = {
    "average": ".cpt",
    "secfilt": ".cps",
    "measure": ".cpm",
    "lensing": ".cpx",
}

_SAFE = re.compile(r"^[A-Za-z0-9_=][A-Za-z0-9_.=-]*(/[A-Za-z0-9_=][A-Za-z0-9_.=-]*)*$")


def check_partition_name(name: str) -> str:
    """Return ``name`` if it is a safe relative partition path, else raise DatabaseError.

    A partition name read from a file must never escape the database directory or carry
    characters a shell or filesystem would interpret.

    Examples
    --------
    >>> check_partition_name("n0000/0001.05")
    'n0000/0001.05'
    """
    if (
        not isinstance(name, str)
        or not _SAFE.match(name)
        or any(part in (".", "..") or part.startswith("..") for part in name.split("/"))
        or len(name) > 200
    ):
        raise DatabaseError(f"unsafe partition name {name!r}")
    return name


def partition_path(catdir: str | Path, name: str, kind: str) -> Path:
    """Path of one table file of a partition, e.g. ``CATDIR/n0000/0001.cpm``."""
    try:
        suffix = PARTITION_SUFFIXES[kind]
    except KeyError:
        raise DatabaseError(f"unknown partition table {kind!r}") from None
    return Path(catdir) / (check_partition_name(name) + suffix)


def partition_files(catdir: str | Path, name: str) -> dict[str, Path]:
    """All table files of a partition, by kind."""
    return {kind: partition_path(catdir, name, kind) for kind in PARTITION_SUFFIXES}


def state_dir(catdir: str | Path) -> Path:
    """The folder holding locks and the commit journal."""
    return Path(catdir) / ".dvo"
