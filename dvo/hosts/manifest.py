"""Which local files each pushed partition had when it was pushed (``HostManifest.json``).

``dvo hosts push`` records, in the same transaction that switches the SkyTable, the size and
modification time of every local file of each partition it copied. A partition whose local
files no longer match (addstar, relphot or relastro rewrote it here after the push) has a newer
local copy than its host: the host executor then reads it locally and warns
(:class:`StaleHostWarning`) instead of returning the host's stale rows, and
``dvo hosts check`` reports it. A partition without an entry is read where the SkyTable says.
"""

from __future__ import annotations

import json
from pathlib import Path

from dvo import layout
from dvo.errors import HostError

__all__ = ["StaleHostWarning", "file_stamps", "read_manifest", "changed_since_push"]


class StaleHostWarning(UserWarning):
    """Partitions changed locally since they were pushed; they were read locally."""


def file_stamps(catdir: str | Path, name: str) -> dict[str, list[int]]:
    """``{relative path: [size, mtime_ns]}`` of the local files of one partition."""
    out = {}
    for path in layout.partition_files(catdir, name).values():
        try:
            st = path.stat()
        except FileNotFoundError:
            continue
        out[path.relative_to(catdir).as_posix()] = [st.st_size, st.st_mtime_ns]
    return out


def read_manifest(catdir: str | Path) -> dict[str, dict]:
    """The manifest (an empty dict when there is none)."""
    path = Path(catdir) / layout.HOSTMANIFEST
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except ValueError:
        raise HostError(f"{path}: not valid JSON") from None
    return data if isinstance(data, dict) else {}


def changed_since_push(catdir: str | Path, names: list[str], manifest: dict) -> list[str]:
    """Names whose local files differ from their manifest entry (entries missing: unchanged).

    A partition whose local files were all removed is not "changed": its data lives on hosts.
    """
    out = []
    for name in names:
        entry = manifest.get(name)
        if entry is None:
            continue
        now = file_stamps(catdir, name)
        if now and now != entry:
            out.append(name)
    return out
