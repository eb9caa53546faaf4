"""The host table (``HostTable.dat``): which partition hosts exist and how to reach them.

DVO's format (``libdvo/src/HostTable.c``) is one host per text line, ``ID hostname path``,
with ``#`` comments, ``1 <= ID <= 255`` and duplicate ids rejected. dvo adds optional SSH
fields a user can edit, in this order (``-`` keeps the default)::

    # ID  hostname      path (partition root)   port  user   keyfile              python
    1     node01.local  /data/dvo/3pi           22    dvo    ~/.ssh/id_ed25519    /usr/bin/python3
    2     node02.local  /data/dvo/3pi

Every field is validated when read, because each one ends up in an SSH connection or in the
fixed remote command (``python -m dvo.remote``): host names, paths, user names and the
interpreter path may only hold characters no shell or filesystem would interpret.

Examples
--------
>>> hosts = parse_host_table("1 node01 /data/db 2222 dvo - /usr/bin/python3\\n2 node02 /d\\n")
>>> [h.hostname for h in hosts], hosts[0].port, hosts[1].python
(['node01', 'node02'], 2222, 'python3')
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dvo import layout
from dvo.errors import HostError

__all__ = [
    "Host",
    "lookup_host",
    "parse_host_table",
    "format_host_table",
    "read_host_table",
    "write_host_table",
]

MAX_ID = 255
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*$")
_USER = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,31}$")
_PATH_CHARS = re.compile(r"^[A-Za-z0-9_./=+-]+$")
_PYTHON = re.compile(r"^[A-Za-z0-9_./+-]+$")
_FIELDS = ("id", "hostname", "path", "port", "user", "keyfile", "python")


def check_path(value: str, what: str, *, home: bool = False) -> str:
    """Return ``value`` if it is an absolute, normalised path of safe characters.

    Raises
    ------
    HostError
        Relative paths, ``..`` components, whitespace or shell characters.

    Examples
    --------
    >>> check_path("/data/db", "path")
    '/data/db'
    >>> check_path("/data/../etc", "path")
    Traceback (most recent call last):
    dvo.errors.HostError: path must be an absolute path without '..', got '/data/../etc'
    """
    body = value[1:] if home and value.startswith("~/") else value
    parts = PurePosixPath(body).parts
    ok = (
        isinstance(value, str)
        and len(value) <= 4096
        and _PATH_CHARS.match(body) is not None
        and (home and value.startswith("~/") or body.startswith("/"))
        and not any(p in (".", "..") for p in parts)
        and "//" not in body
    )
    if not ok:
        raise HostError(f"{what} must be an absolute path without '..', got {value!r}")
    return value


@dataclass(frozen=True)
class Host:
    """One partition host: id, where it is, where its partition root is, how to log in."""

    id: int
    hostname: str
    path: str
    port: int = 22
    user: str | None = None
    keyfile: str | None = None
    python: str = "python3"

    def __post_init__(self) -> None:
        if isinstance(self.id, bool) or not isinstance(self.id, int) or not 1 <= self.id <= MAX_ID:
            raise HostError(f"host id must be an integer in 1..{MAX_ID}, got {self.id!r}")
        if not _HOSTNAME.match(str(self.hostname)):
            raise HostError(f"host {self.id}: invalid host name {self.hostname!r}")
        check_path(self.path, f"host {self.id}: path")
        if (
            isinstance(self.port, bool)
            or not isinstance(self.port, int)
            or not 0 < self.port < 65536
        ):
            raise HostError(f"host {self.id}: port must lie in 1..65535, got {self.port!r}")
        if self.user is not None and not _USER.match(self.user):
            raise HostError(f"host {self.id}: invalid user name {self.user!r}")
        if self.keyfile is not None:
            check_path(self.keyfile, f"host {self.id}: keyfile", home=True)
        if not _PYTHON.match(self.python) or ".." in self.python.split("/"):
            raise HostError(f"host {self.id}: invalid python {self.python!r}")

    @property
    def label(self) -> str:
        """How errors name this host: ``id:hostname:port``."""
        return f"{self.id}:{self.hostname}:{self.port}"

    def key_path(self) -> str | None:
        """The key file with ``~`` expanded (None: the SSH agent / default keys)."""
        return None if self.keyfile is None else os.path.expanduser(self.keyfile)


def _parse_line(words: list[str], where: str) -> Host:
    if not 3 <= len(words) <= len(_FIELDS):
        raise HostError(f"{where}: expected 3 to {len(_FIELDS)} fields, got {len(words)}")
    values = dict(zip(_FIELDS, words, strict=False))
    fields: dict = {k: v for k, v in values.items() if v != "-"}
    for key in ("id", "port"):
        if key in fields:
            if not re.fullmatch(r"[0-9]{1,6}", fields[key]):
                raise HostError(f"{where}: {key} must be a number, got {fields[key]!r}")
            fields[key] = int(fields[key])
    try:
        return Host(**fields)
    except HostError as exc:
        raise HostError(f"{where}: {exc.reason}") from None
    except TypeError:
        raise HostError(f"{where}: id, hostname and path are required") from None


def parse_host_table(text: str, *, source: str = layout.HOSTTABLE) -> list[Host]:
    """Hosts of a host table text, validated; duplicate ids are rejected.

    Raises
    ------
    HostError
        A malformed line (named by file and line number) or a duplicate id.
    """
    hosts: dict[int, Host] = {}
    for number, line in enumerate(text.splitlines(), 1):
        words = line.split("#", 1)[0].split()
        if not words:
            continue
        host = _parse_line(words, f"{source} line {number}")
        if host.id in hosts:
            raise HostError(f"{source} line {number}: duplicate host id {host.id}")
        hosts[host.id] = host
    return sorted(hosts.values(), key=lambda h: h.id)


def format_host_table(hosts: list[Host]) -> str:
    """The text of a host table (inverse of :func:`parse_host_table`)."""
    lines = ["# ID hostname path [port user keyfile python]  ('-' keeps a default)"]
    for h in sorted(hosts, key=lambda h: h.id):
        extra = [str(h.port), h.user or "-", h.keyfile or "-", h.python]
        lines.append(" ".join([str(h.id), h.hostname, h.path, *extra]))
    return "\n".join(lines) + "\n"


def read_host_table(catdir: str | Path) -> list[Host]:
    """The hosts of a database (an empty list when it has no ``HostTable.dat``)."""
    path = Path(catdir) / layout.HOSTTABLE
    if not path.is_file():
        return []
    return parse_host_table(path.read_text(), source=str(path))


def write_host_table(catdir: str | Path, hosts: list[Host]) -> None:
    """Write ``HostTable.dat`` atomically (through a Transaction), after validating it."""
    from dvo.transaction import Transaction

    text = format_host_table(hosts)
    parse_host_table(text)  # duplicates and invalid fields are refused before writing
    with Transaction(catdir) as tx:
        tx.stage(layout.HOSTTABLE).write_text(text)


def hosts_by_id(hosts: list[Host]) -> dict[int, Host]:
    """``{id: Host}``."""
    return {h.id: h for h in hosts}


def lookup_host(hosts: dict[int, Host], hid: int) -> Host:
    """The host ``hid`` of ``hosts_by_id(...)``; HostError when the SkyTable names a host
    the host table does not have."""
    host = hosts.get(int(hid))
    if host is None:
        raise HostError(f"host {hid} holds partitions but is not in the host table")
    return host
