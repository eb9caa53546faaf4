"""The one exception hierarchy of dvo, rooted at :class:`DvoError`.

This module imports nothing from dvo and nothing outside the standard library, so that
``dvo.codecs`` and ``dvo.skytable`` (which must not depend on the engine) can still raise
errors under the same root. Every error carries a one-line message suitable for the CLI.
"""

from __future__ import annotations

__all__ = [
    "DvoError",
    "DvoIOError",
    "CodecError",
    "SkyTableError",
    "SchemaError",
    "DatabaseError",
    "LockError",
    "ReadOnlyError",
    "IngestError",
    "QueryError",
    "QuerySyntaxError",
    "CalibrationError",
    "HostError",
    "VerifyError",
]


class DvoError(Exception):
    """Root of every error dvo raises on purpose."""


class DvoIOError(DvoError, OSError):
    """A file could not be read or written."""


class CodecError(DvoError, ValueError):
    """A FITS table is malformed, truncated or corrupt, or cannot be encoded.

    The message names the file, HDU, column and tile where known.
    """

    def __init__(
        self,
        reason: str,
        *,
        file: str | None = None,
        hdu: int | str | None = None,
        column: str | None = None,
        tile: int | None = None,
    ) -> None:
        self.reason, self.file, self.hdu, self.column, self.tile = reason, file, hdu, column, tile
        where = [
            f"{k} {v}"
            for k, v in (("HDU", hdu), ("column", column), ("tile", tile))
            if v is not None
        ]
        prefix = f"{file}: " if file else ""
        suffix = f" ({', '.join(where)})" if where else ""
        super().__init__(f"{prefix}{reason}{suffix}")


class SkyTableError(DvoError, ValueError):
    """A sky partition table is invalid, or a lookup was given invalid input."""


class SchemaError(DvoError, ValueError):
    """A table does not have the columns or types its schema requires."""


class DatabaseError(DvoError):
    """The database on disk is missing, not a dvo database, or inconsistent."""


class LockError(DatabaseError):
    """Another writer holds the database lock."""


class ReadOnlyError(DatabaseError):
    """The database cannot be written here (a read-only file system or permissions)."""


class IngestError(DvoError, ValueError):
    """An input file for addstar was rejected; the database is unchanged."""

    def __init__(self, reason: str, *, file: str | None = None) -> None:
        self.reason, self.file = reason, file
        super().__init__(f"{file}: {reason}" if file else reason)


class QueryError(DvoError, ValueError):
    """A query cannot be planned or run."""


class QuerySyntaxError(QueryError):
    """A filter expression does not parse or names unknown columns."""


class CalibrationError(DvoError):
    """relphot or relastro cannot produce a solution."""


class HostError(DvoError):
    """A partition host failed, timed out or refused a connection."""

    def __init__(self, reason: str, *, host: str | None = None) -> None:
        self.reason, self.host = reason, host
        super().__init__(f"host {host}: {reason}" if host else reason)


class VerifyError(DatabaseError):
    """``dvo verify`` found violated invariants."""
