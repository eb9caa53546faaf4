"""Crossmatch a user table against the database: nearest object (or all) within a radius.

The matcher is a strategy class in the style of lsdb's ``KdTreeCrossmatch``:
:class:`KdTreeMatch` validates the radius and, for one partition, returns index arrays
(input row, object row) and separations from a KD-tree on unit vectors. The driver:

1. reads the input (astropy Table, numpy structured array, dict of arrays, or a FITS / CSV /
   Parquet / ECSV file) and finds its ``ra``/``dec`` columns (case-insensitive; ``raj2000`` and
   ``ra_deg`` are accepted too);
2. sends every input row to each partition within ``radius`` of it (``SkyTable.near``, so
   objects just across a partition edge are found), keeping populated partitions only;
3. runs one task per partition on the executor (in-process or worker processes), each reading
   only the object columns it needs and matching its input rows; partitions pushed to
   partition hosts are matched there (:mod:`dvo.query.crossmatch_remote`: their input rows
   and positions travel, the matches come back), with failover and ``allow_partial`` as for
   queries (:class:`~dvo.hosts.executor.HostExecutor`);
4. keeps, per input row, the nearest object over all partitions (ties: the smaller
   ``obj_id``), or with ``all=True`` every object within the radius.

The result has the input columns (renamed ``<name>_in`` where they collide with object
columns), ``input_row``, the object columns (``obj_id``, ``ra``, ``dec`` by default) and
``sep`` in arcsec. With ``all=False`` there is one row per input row in input order, and an
unmatched row has ``obj_id = -1`` and NaN ``sep``; with ``all=True`` there is one row per
(input, object) pair, sorted by input row then separation.

Examples
--------
>>> import dvo                                             # doctest: +SKIP
>>> m = dvo.open("db").crossmatch("sources.csv", 1.0)     # doctest: +SKIP
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dvo.errors import QueryError
from dvo.query import tables
from dvo.query.execute import choose_executor
from dvo.query.scan import ScanRequest, scan_partition
from dvo.skytable import angular_distance

__all__ = ["crossmatch", "KdTreeMatch", "read_positions", "match_partition"]

_RA_NAMES = ("ra", "raj2000", "ra_deg", "ra_icrs", "alpha")
_DEC_NAMES = ("dec", "decj2000", "dec_deg", "de_icrs", "dej2000", "delta")


def _vectors(ra, dec) -> np.ndarray:
    r, d = np.radians(ra), np.radians(dec)
    cd = np.cos(d)
    return np.stack([cd * np.cos(r), cd * np.sin(r), np.sin(d)], axis=-1)


@dataclass(frozen=True)
class KdTreeMatch:
    """Match points to objects within ``radius`` arcsec with a KD-tree on unit vectors."""

    radius: float

    def validate(self) -> None:
        """QueryError unless the radius is a positive finite number of arcsec (< 10 deg)."""
        if not (np.isfinite(self.radius) and 0 < self.radius <= 36000.0):
            raise QueryError(f"crossmatch radius must lie in (0, 36000] arcsec, got {self.radius}")

    def nearest(self, ra, dec, obj_ra, obj_dec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point row, object row, separation arcsec) of each point's nearest object in range."""
        from scipy.spatial import cKDTree

        if len(obj_ra) == 0 or len(ra) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        chord = 2 * np.sin(np.radians(self.radius / 3600.0) / 2) * (1 + 1e-9)
        tree = cKDTree(_vectors(obj_ra, obj_dec), balanced_tree=False, compact_nodes=False)
        _, j = tree.query(_vectors(ra, dec), k=1, distance_upper_bound=chord)
        i = np.flatnonzero(j < len(obj_ra))
        return self._keep(i, j[i], ra, dec, obj_ra, obj_dec)

    def all(self, ra, dec, obj_ra, obj_dec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(point row, object row, separation arcsec) of every pair within the radius."""
        from scipy.spatial import cKDTree

        if len(obj_ra) == 0 or len(ra) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
        chord = 2 * np.sin(np.radians(self.radius / 3600.0) / 2) * (1 + 1e-9)
        a, b = cKDTree(_vectors(ra, dec)), cKDTree(_vectors(obj_ra, obj_dec))
        pairs = a.sparse_distance_matrix(b, chord, output_type="ndarray")
        return self._keep(pairs["i"], pairs["j"], ra, dec, obj_ra, obj_dec)

    def _keep(self, i, j, ra, dec, obj_ra, obj_dec):
        i, j = np.asarray(i, np.int64), np.asarray(j, np.int64)
        sep = angular_distance(ra[i], dec[i], obj_ra[j], obj_dec[j]) * 3600.0
        ok = sep <= self.radius
        return i[ok], j[ok], sep[ok]


@dataclass(frozen=True)
class MatchTask:
    """One partition's share of a crossmatch (picklable, runs anywhere a scan runs)."""

    request: ScanRequest
    rows: np.ndarray
    ra: np.ndarray
    dec: np.ndarray
    matcher: KdTreeMatch
    all: bool

    def __call__(self, catdir: str, index: int):
        i, objs, sep = match_partition(catdir, index, self.request, self.matcher, self.all,
                                       self.ra, self.dec)  # fmt: skip
        return self.rows[i], objs, sep


def match_partition(catdir: str, index: int, request: ScanRequest, matcher: KdTreeMatch,
                    every: bool, ra: np.ndarray, dec: np.ndarray):  # fmt: skip
    """(point row, matched objects' columns, separation) of points against one partition;
    the same code here and on a partition host."""
    objs = scan_partition(catdir, index, request)
    fn = matcher.all if every else matcher.nearest
    i, j, sep = fn(ra, dec, objs["ra"], objs["dec"])
    return i, objs[j], sep


def read_positions(table_or_path) -> tuple[dict[str, np.ndarray], str, str]:
    """Columns of the input and the names of its RA and Dec columns."""
    table = table_or_path
    if isinstance(table_or_path, str | Path):
        try:
            table = _read_file(Path(table_or_path))
        except (OSError, ValueError, ImportError) as exc:
            raise QueryError(
                f"{table_or_path}: cannot read ({' '.join(str(exc).split())[:150]})"
            ) from None
    names = list(table.dtype.names) if hasattr(table, "dtype") else list(table)
    cols = {n: np.asarray(table[n]) for n in names}
    lower = {n.lower(): n for n in names}
    ra = next((lower[k] for k in _RA_NAMES if k in lower), None)
    dec = next((lower[k] for k in _DEC_NAMES if k in lower), None)
    if ra is None or dec is None:
        raise QueryError(f"crossmatch input needs ra and dec columns, has {', '.join(names)}")
    return cols, ra, dec


def _read_file(path: Path):
    """A table from FITS/CSV/ECSV (astropy) or Parquet (pyarrow, no pandas needed)."""
    if path.suffix.lower() in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        t = pq.read_table(path)
        return {name: t[name].to_numpy() for name in t.column_names}
    from astropy.table import Table

    return Table.read(str(path))


def _check_positions(ra: np.ndarray, dec: np.ndarray) -> None:
    bad = ~np.isfinite(ra) | ~np.isfinite(dec) | (dec < -90) | (dec > 90) | (ra < 0) | (ra > 360)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise QueryError(f"crossmatch input row {k}: invalid position ({ra[k]}, {dec[k]})")


def _tasks(db, ra, dec, matcher: KdTreeMatch, req: ScanRequest, every: bool):
    """One (partition, MatchTask) per populated partition within the radius of some input."""
    pt, part = db.skytable.near(ra, dec, matcher.radius / 3600.0)
    keep = np.isin(part, db.populated())
    pt, part = pt[keep], part[keep]
    order = np.argsort(part, kind="stable")
    pt, part = pt[order], part[order]
    parts, starts = np.unique(part, return_index=True)
    ends = np.append(starts[1:], len(part))
    return [
        (int(p), MatchTask(req, pt[s:e], ra[pt[s:e]], dec[pt[s:e]], matcher, every))
        for p, s, e in zip(parts, starts, ends, strict=True)
    ]


def _best(rows: np.ndarray, objs: np.ndarray, sep: np.ndarray, every: bool) -> np.ndarray:
    """Order of the pairs to keep: nearest per input row (ties: smaller obj_id), or all."""
    if every:
        return np.lexsort((objs["obj_id"], sep, rows))
    counts = np.bincount(rows, minlength=int(rows.max()) + 1 if len(rows) else 0)
    dup = np.flatnonzero(counts[rows] > 1)  # rows matched in more than one partition (few)
    single = np.flatnonzero(counts[rows] == 1)
    order = dup[np.lexsort((objs["obj_id"][dup], sep[dup], rows[dup]))]
    _, first = np.unique(rows[order], return_index=True)
    keep = np.concatenate([single, order[first]])
    return keep[np.argsort(rows[keep], kind="stable")]


def _fill(dtype: np.dtype, n: int) -> np.ndarray:
    out = np.zeros(n, dtype)
    for name in dtype.names:
        if dtype[name].kind == "f":
            out[name] = np.nan
    out["obj_id"] = -1
    return out


def crossmatch(
    db,
    table_or_path,
    radius: float,
    *,
    all: bool = False,
    columns=None,  # noqa: A002
    where: str | None = None,
    jobs: int | None = None,
    output: str = "astropy",
    progress=None,
):
    """Match each input row to the nearest object within ``radius`` arcsec (see module doc).

    Raises
    ------
    QueryError
        Unreadable input, no ra/dec columns, invalid positions, a bad radius or columns.
    """
    from dvo.query.engine import build_request

    matcher = KdTreeMatch(float(radius))
    matcher.validate()
    cols, rac, decc = read_positions(table_or_path)
    ra, dec = cols[rac].astype(np.float64), cols[decc].astype(np.float64)
    _check_positions(ra, dec)
    sec = tuple(db.photcodes.sec_names)
    want = tables.resolve_columns("objects", sec, columns or ["obj_id", "ra", "dec"])
    names = ["obj_id", "ra", "dec"] + [c for c in want if c not in ("obj_id", "ra", "dec")]
    req = build_request(db, None, columns=names, where=where)
    with db.reader():
        tasks = _tasks(db, ra, dec, matcher, req, all)
        empty = tables.empty_result("objects", sec, names)
        rows, objs, sep = _run(db, tasks, jobs, progress, empty)
    keep = _best(rows, objs, sep, all)
    if all:
        rows, objs, sep = rows[keep], objs[keep], sep[keep]
    else:
        full = _fill(objs.dtype, len(ra))
        full[rows[keep]] = objs[keep]
        fsep = np.full(len(ra), np.nan)
        fsep[rows[keep]] = sep[keep]
        rows, objs, sep = np.arange(len(ra)), full, fsep
    return _assemble(cols, rows, objs, sep, tables.units("objects", sec, names), output)


def _run(db, tasks, jobs, progress, empty):
    from dvo.hosts.executor import host_executor

    executor = host_executor(db, [i for i, _ in tasks])
    if executor is not None:  # pushed partitions are matched on their hosts
        from dvo.query.crossmatch_remote import MatchHostTask

        one = MatchHostTask.build(tasks, empty.dtype)
        tasks = [(i, one) for i, _ in tasks]
    else:
        sizes = np.array([len(t.rows) for _, t in tasks], np.int64) * 20
        executor = choose_executor(sizes, jobs)
    parts = []
    with closing(executor.map(str(db.catdir), tasks)) as stream:
        for _, result in stream:
            parts.append(result)
            if progress is not None:
                progress(1)
    if not parts:
        return np.zeros(0, np.int64), empty, np.zeros(0)
    return (
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
    )


def _assemble(cols, rows, objs, sep, units, output):
    from dvo.query.engine import to_output

    out = {}
    for name, values in cols.items():
        key = f"{name}_in" if name in objs.dtype.names or name in ("sep", "input_row") else name
        out[key] = values[rows]
    out["input_row"] = rows
    for name in objs.dtype.names:
        out[name] = objs[name]
    out["sep"] = sep
    arr = np.empty(len(rows), [(k, v.dtype, v.shape[1:]) for k, v in out.items()])
    for k, v in out.items():
        arr[k] = v
    return to_output(arr, {**units, "sep": "arcsec"}, output)
