"""The query methods of :class:`dvo.database.Database` (one-liners over the query engine)."""

from __future__ import annotations


class QueryMixin:
    """Mixed into Database: ``cone``, ``box``, ``polygon``, ``sky``, ``object``,
    ``lightcurve``, ``crossmatch``. Each is a thin call into :mod:`dvo.query`."""
