"""dvo: a partitioned catalog database engine for sky surveys.

>>> import dvo
>>> db = dvo.open("mydb")        # doctest: +SKIP
>>> db.cone(210.8, 54.3, 0.05)   # doctest: +SKIP

Imports are lazy so that ``dvo`` commands start fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["open", "create", "DvoError"]

if TYPE_CHECKING:
    from dvo.database import Database


def open(path) -> Database:  # noqa: A001 - the API the issue names: dvo.open(path)
    """Open an existing database directory."""
    from dvo.database import open_database

    return open_database(path)


def create(path, **options) -> Database:
    """Create an empty database (options as :func:`dvo.database.create_database`)."""
    from dvo.database import create_database

    return create_database(path, **options)


def __getattr__(name: str):
    if name == "DvoError":
        from dvo.errors import DvoError

        return DvoError
    raise AttributeError(f"module 'dvo' has no attribute {name!r}")
