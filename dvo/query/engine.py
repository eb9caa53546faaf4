"""The generic query: validate -> plan -> execute -> merge -> astropy Table (or Arrow).

Every region query (``db.cone``, ``db.box``, ``db.polygon``, ``db.sky``) is a one-line call of
:func:`query` with a region strategy object from :mod:`dvo.skytable.regions`.

Merge order (stable and documented): partitions in ascending SkyTable index, and within a
partition rows in stored order (objID order for objects; for measures and lensing, the
object's order and then stored order). ``order_by`` sorts that sequence stably by its keys
(NaN last in both directions), so ties keep partition order. ``limit`` without ``order_by``
keeps the first rows of that sequence and stops scanning once it has them; with ``order_by``
each partition returns its own best ``limit`` rows and the merge keeps the best overall.

Examples
--------
>>> import dvo                                                      # doctest: +SKIP
>>> t = query(dvo.open("db"), Cone(0.0, 7.5, 0.1), where="g < 19")  # doctest: +SKIP
"""

from __future__ import annotations

from contextlib import closing

import numpy as np

from dvo.errors import QueryError, SkyTableError
from dvo.query import tables
from dvo.query.execute import ScanTask, choose_executor
from dvo.query.expr import check, parse
from dvo.query.plan import Plan, plan_query
from dvo.query.scan import ScanRequest, region_to_dict, sort_order
from dvo.skytable import AllSky, Box, Cone, Polygon

__all__ = ["query", "make_region", "build_request", "explain", "run_plan", "to_output", "OUTPUTS"]

OUTPUTS = ("astropy", "arrow", "numpy")
_REGIONS = {"cone": Cone, "box": Box, "polygon": Polygon, "sky": AllSky}


def make_region(kind: str, *args):
    """Build a region, turning invalid coordinates into a one-line QueryError.

    Examples
    --------
    >>> make_region("cone", 10.0, 95.0, 1.0)
    Traceback (most recent call last):
    dvo.errors.QueryError: Cone: dec must lie in [-90, 90], got 95.0
    """
    try:
        values = [np.asarray(a, np.float64) if np.ndim(a) else float(a) for a in args]
    except (TypeError, ValueError):
        raise QueryError(f"{kind}: coordinates must be numbers, got {args}") from None
    if kind == "cone" and len(values) == 3 and values[0] is not None:
        ra = values[0]
        if np.isfinite(ra) and not -360.0 <= ra <= 720.0:
            raise QueryError(f"cone: ra must lie in [0, 360], got {ra}")
        values[0] = float(np.mod(ra, 360.0)) if np.isfinite(ra) else ra
    try:
        return _REGIONS[kind](*values)
    except SkyTableError as exc:
        raise QueryError(str(exc)) from None


def _order_by(order_by) -> tuple[tuple[str, bool], ...]:
    """Parse ``"g"``, ``"-g"``, ``"g desc"`` or a list of them into (column, descending)."""
    if order_by is None:
        return ()
    items = [order_by] if isinstance(order_by, str) else list(order_by)
    out = []
    for item in items:
        words = str(item).split()
        if (
            not words
            or len(words) > 2
            or (len(words) == 2 and words[1].lower() not in ("asc", "desc"))
        ):
            raise QueryError(f"order_by: cannot read {item!r} (use 'col', '-col' or 'col desc')")
        name, desc = words[0], len(words) == 2 and words[1].lower() == "desc"
        if name.startswith("-"):
            name, desc = name[1:], True
        out.append((name, desc))
    return tuple(out)


def filters_with_data(db) -> tuple[str, ...]:
    """The average filters that hold a magnitude somewhere (default columns show only these)."""
    from dvo.query.plan import cached_stats

    st = cached_stats(db)
    sec = tuple(db.photcodes.sec_names)
    if len(st) == 0:
        return sec
    has = np.isfinite(st["MAG_MIN"]).any(axis=0)
    return tuple(f for f, ok in zip(sec, has, strict=True) if ok) or sec


def build_request(
    db, region, *, table="objects", columns=None, where=None, limit=None, order_by=None, ids=None
) -> ScanRequest:
    """Validate a query against the database's columns and build its scan request.

    Raises
    ------
    QueryError, QuerySyntaxError
        Unknown table or columns, a bad where-expression (pointing at the token), a bad limit.
    """
    sec = tuple(db.photcodes.sec_names)
    if columns is None and table == "objects":
        columns = tables.default_columns(table, filters_with_data(db))
    names = tables.resolve_columns(table, sec, columns)
    known = tables.table_columns(table, sec)
    if where is not None:
        check(parse(where), {n: np.dtype(c.dtype).kind for n, c in known.items()})
    order = _order_by(order_by)
    tables.resolve_columns(table, sec, [k for k, _ in order] or None)
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 0
    ):
        raise QueryError(f"limit must be a non-negative integer, got {limit!r}")
    return ScanRequest(
        table=table,
        region=region_to_dict(region),
        columns=tuple(names),
        where=where,
        ids=None if ids is None else tuple(int(i) for i in np.atleast_1d(ids)),
        order_by=order,
        limit=None if limit is None else int(limit),
    )


def _executor(db, plan: Plan, jobs: int | None):
    """Partition hosts (:mod:`dvo.hosts`) for partitions pushed to them, else a local executor."""
    from dvo.hosts.executor import host_executor

    return host_executor(db, plan.scan) or choose_executor(plan.stored, jobs)


def run_plan(db, plan: Plan, *, jobs: int | None = None, progress=None) -> np.ndarray:
    """Execute a plan and merge the partition results (see the module docstring for order)."""
    req = plan.request
    executor = _executor(db, plan, jobs)
    plan.executor = executor.name
    chunks, nrows = [], 0
    task = ScanTask(req)
    with closing(executor.map(str(db.catdir), [(i, task) for i in plan.scan])) as stream:
        for _, part in stream:
            chunks.append(part)
            nrows += len(part)
            if progress is not None:
                progress(1)
            if req.limit is not None and not req.order_by and nrows >= req.limit:
                break
    if not chunks:
        return tables.empty_result(req.table, tuple(db.photcodes.sec_names), req.columns)
    merged = np.concatenate(chunks)
    order = sort_order({n: merged[n] for n in merged.dtype.names}, req.order_by, req.limit)
    return merged[order]


def to_output(arr: np.ndarray, units: dict[str, str], output: str = "astropy"):
    """Turn a merged result into an astropy Table with units, an Arrow table, or keep numpy."""
    if output == "numpy":
        return arr
    if output == "arrow":
        import pyarrow as pa

        cols = {
            n: (arr[n].astype(str) if arr.dtype[n].kind == "S" else arr[n]) for n in arr.dtype.names
        }
        fields = [
            pa.field(n, pa.array(v).type, metadata={"unit": units[n]} if n in units else None)
            for n, v in cols.items()
        ]
        return pa.table(cols, schema=pa.schema(fields))
    from astropy.table import Table

    t = Table(arr, copy=False)
    for name, unit in units.items():
        t[name].unit = unit
    return t


def query(
    db,
    region=None,
    *,
    table: str = "objects",
    columns=None,
    where: str | None = None,
    limit: int | None = None,
    order_by=None,
    jobs: int | None = None,
    output: str = "astropy",
    progress=None,
    ids=None,
    partitions=None,
):
    """Query ``db`` for the rows of ``table`` inside ``region`` (None or AllSky: everything).

    Parameters
    ----------
    region : Region or None
        A :mod:`dvo.skytable.regions` strategy object.
    table : {"objects", "measures", "lensing"}
    columns : None, "*", str or list of str
        Output columns (None: the defaults of :func:`dvo.query.tables.default_columns`).
    where : str
        A filter in the language of :mod:`dvo.query.expr`.
    limit, order_by
        At most ``limit`` rows; ``order_by`` "col", "-col", "col desc" or a list.
    jobs : int
        Worker processes (default: the number of cores); small plans run in-process.
    output : {"astropy", "arrow", "numpy"}
    progress : callable(n)
        Called after each partition.
    ids, partitions
        Object ids to select, and the partitions holding them (object lookups).

    Returns
    -------
    astropy.table.Table (with units), pyarrow.Table or numpy structured array.
    """
    if output not in OUTPUTS:
        raise QueryError(f"output must be one of {', '.join(OUTPUTS)}, got {output!r}")
    req = build_request(
        db,
        region,
        table=table,
        columns=columns,
        where=where,
        limit=limit,
        order_by=order_by,
        ids=ids,
    )
    with db.reader():  # a consistent snapshot: no commit lands while we read
        plan = plan_query(db, region, req, partitions=partitions)
        arr = run_plan(db, plan, jobs=jobs, progress=progress)
    return to_output(arr, tables.units(table, tuple(db.photcodes.sec_names), req.columns), output)


def explain(db, region=None, *, jobs: int | None = None, **options) -> Plan:
    """The plan of a query (options as :func:`query`) without running it."""
    req = build_request(db, region, **options)
    plan = plan_query(db, region, req)
    plan.executor = _executor(db, plan, jobs).name
    return plan
