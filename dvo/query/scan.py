"""One partition scan: a pure function of (catdir, partition index, request).

:func:`scan_partition` reads only the columns and row ranges a request needs, builds the query
table (see :mod:`dvo.query.tables`), keeps the rows inside the region (object positions,
``region.contains``) that pass the ``where`` expression, and returns a numpy structured array.
The request is a small frozen dataclass that round-trips through JSON
(:meth:`ScanRequest.to_json`), so the same scan can run in this process, in a worker process,
or on a partition host (``python -m dvo.remote``) reading its own copy of the partition.

Rows come back in stored order (objID order within the partition); with ``order_by`` they are
sorted stably by the keys, and with ``limit`` at most that many are returned.

Examples
--------
>>> req = ScanRequest(table="objects", region={"kind": "Cone", "ra": 1.0, "dec": 2.0,
...                   "radius": 0.1}, columns=("obj_id", "g"), where="g < 19")
>>> ScanRequest.from_json(req.to_json()) == req
True
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from dvo import codecs, layout
from dvo.errors import CodecError, DatabaseError, QueryError
from dvo.ids import object_id
from dvo.partition import expand_ranges
from dvo.query import tables
from dvo.query.expr import check, evaluate, parse
from dvo.skytable import regions as _regions

__all__ = ["ScanRequest", "scan_partition", "region_to_dict", "region_from_dict", "sort_order"]


def region_to_dict(region) -> dict | None:
    """A JSON-able description of a region (None stays None).

    Examples
    --------
    >>> region_to_dict(_regions.Cone(1.0, 2.0, 0.5))
    {'kind': 'Cone', 'ra': 1.0, 'dec': 2.0, 'radius': 0.5}
    """
    if region is None:
        return None
    out = {"kind": type(region).__name__}
    for f in dataclasses.fields(region):
        if f.init:
            value = getattr(region, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else float(value)
    return out


def region_from_dict(spec: dict | None):
    """Inverse of :func:`region_to_dict`."""
    if spec is None:
        return None
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind not in _regions.__all__ or kind == "Region":
        raise QueryError(f"unknown region kind {kind!r}")
    return getattr(_regions, kind)(**spec)


@dataclass(frozen=True)
class ScanRequest:
    """What one partition scan computes (all fields JSON-able).

    ``region`` is :func:`region_to_dict` output or None (no position cut); ``ids`` restricts to
    objects with these 64-bit ``obj_id`` (:func:`dvo.ids.object_id`); ``order_by`` holds
    (column, descending) pairs.
    """

    table: str = "objects"
    region: dict | None = None
    columns: tuple[str, ...] = ()
    where: str | None = None
    ids: tuple[int, ...] | None = None
    order_by: tuple[tuple[str, bool], ...] = ()
    limit: int | None = None

    def to_json(self) -> str:
        """The request as a JSON string."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ScanRequest:
        """Rebuild a request from :meth:`to_json` output."""
        d = json.loads(text)
        d["columns"] = tuple(d["columns"])
        d["order_by"] = tuple((str(k), bool(v)) for k, v in d["order_by"])
        d["ids"] = None if d["ids"] is None else tuple(d["ids"])
        return cls(**d)

    def needed(self) -> list[str]:
        """Query columns to build: the output columns, then those only ``where``/order read."""
        extra = set() if self.where is None else parse(self.where).columns()
        extra |= {k for k, _ in self.order_by}
        return list(self.columns) + sorted(extra - set(self.columns))


@dataclass(frozen=True)
class Context:
    """What every scan of one database needs besides the partition (cached per process)."""

    names: np.ndarray
    nsecfilt: int
    sec_names: tuple[str, ...]
    photcodes: object


def _stamp(path: Path) -> tuple[int, int, int]:
    """File identity: a commit renames a new file into place, changing the inode."""
    st = os.stat(path)
    return st.st_mtime_ns, st.st_size, st.st_ino


@lru_cache(maxsize=8)
def _context(catdir: str, stamp: tuple) -> Context:
    from dvo.database import open_database

    db = open_database(catdir)
    pc = db.photcodes
    return Context(db.skytable.name, pc.nsecfilt, tuple(pc.sec_names), pc)


def context(catdir: str | Path) -> Context:
    """The cached :class:`Context` of a database (re-read when its files change)."""
    root = Path(catdir)
    stamp = (_stamp(root / layout.SKYTABLE), _stamp(root / layout.PHOTCODES))
    return _context(str(root), stamp)


@lru_cache(maxsize=4)
def _images(catdir: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    img = codecs.read_table(Path(catdir) / layout.IMAGES, columns=["IMAGE_ID", "MJD_OBS"])
    order = np.argsort(img["IMAGE_ID"], kind="stable")
    return img["IMAGE_ID"][order].astype(np.int64), img["MJD_OBS"][order]


def image_mjd(catdir: str | Path, image_id: np.ndarray) -> np.ndarray:
    """MJD_OBS of each image id (NaN where unknown); the Images table is cached per process."""
    ids, mjd = _images(str(catdir), _stamp(Path(catdir) / layout.IMAGES))
    image_id = np.asarray(image_id, np.int64)
    at = np.clip(np.searchsorted(ids, image_id), 0, max(len(ids) - 1, 0))
    if len(ids) == 0:
        return np.full(len(image_id), np.nan)
    return np.where(ids[at] == image_id, mjd[at], np.nan)


def _read(path: Path, columns, rows=None) -> np.ndarray:
    try:
        return codecs.read_table(path, columns=columns, rows=rows)
    except (CodecError, OSError) as exc:
        raise DatabaseError(f"{path}: {exc}") from exc


#: bytes of object positions kept in memory per process (warm queries skip reading them)
POSITION_CACHE_BYTES = 256 << 20
_position_cache: OrderedDict = OrderedDict()


def _cached_positions(path: Path) -> np.ndarray:
    """RA, DEC, OBJ_ID of a partition's objects, cached per process by file identity."""
    key = (str(path), *_stamp(path))
    hit = _position_cache.get(key)
    if hit is not None:
        _position_cache.move_to_end(key)
        return hit
    pos = _read(path, [*tables.POSITION, "OBJ_ID"])
    _position_cache[key] = pos
    while sum(v.nbytes for v in _position_cache.values()) > POSITION_CACHE_BYTES:
        _position_cache.popitem(last=False)
    return pos


def _select_objects(files: dict, req: ScanRequest, index: int) -> tuple[np.ndarray, np.ndarray]:
    """Rows of the Average table inside the region and among ``ids``, and the positions."""
    pos = _cached_positions(files["average"])
    keep = np.ones(len(pos), bool)
    region = region_from_dict(req.region)
    if req.ids is not None:
        keep &= np.isin(object_id(index, pos["OBJ_ID"]), np.asarray(req.ids, np.int64))
    if region is not None and keep.any():
        keep[keep] = region.contains(pos["RA"][keep], pos["DEC"][keep])
    return np.flatnonzero(keep), pos


def scan_partition(catdir: str | Path, index: int, request: ScanRequest) -> np.ndarray:
    """Run one request on one partition; a structured array of ``request.columns``.

    Raises
    ------
    QueryError, QuerySyntaxError
        For an invalid request (unknown table, columns or where-expression).
    DatabaseError
        When a partition file cannot be read.
    """
    ctx = context(catdir)
    known = tables.table_columns(request.table, ctx.sec_names)
    names = request.needed()
    tables.resolve_columns(request.table, ctx.sec_names, names)
    files = layout.partition_files(catdir, str(ctx.names[index]))
    if not files["average"].exists():
        return tables.empty_result(request.table, ctx.sec_names, request.columns)
    rows, pos = _select_objects(files, request, index)
    if rows.size == 0:
        return tables.empty_result(request.table, ctx.sec_names, request.columns)
    need = tables.raw_needs(request.table, ctx.sec_names, names)
    lo, hi = int(rows[0]), int(rows[-1]) + 1
    if set(need["average"]) <= set(pos.dtype.names):  # positions and ids only: cached
        ave = pos[rows]
    else:
        ave = _read(files["average"], need["average"], (lo, hi))[rows - lo]
    if request.table == "objects":
        cols = _object_columns(files, ave, rows, lo, hi, need, names, known, ctx, index)
    else:
        cols = _linked_columns(catdir, files, ave, need, names, known, ctx, index, request.table)
    if request.where is not None:
        expr = parse(request.where)
        check(expr, {n: np.dtype(known[n].dtype).kind for n in known})
        keep = evaluate(expr, cols)
        cols = {k: v[keep] for k, v in cols.items()}
    order = sort_order(cols, request.order_by, request.limit)
    return tables.as_structured(
        {k: cols[k][order] for k in request.columns}, request.columns, known
    )


def _object_columns(files, ave, rows, lo, hi, need, names, known, ctx: Context, index: int):
    sec = None
    if "secfilt" in need:
        nsec = ctx.nsecfilt
        sec = _read(files["secfilt"], need["secfilt"], (lo * nsec, hi * nsec))
        sec = sec.reshape(hi - lo, nsec)[rows - lo]
    cols = {}
    for name in names:
        col = known[name]
        if col.build == "raw":
            cols[name] = ave[col.source]
        elif col.build == "sec":
            cols[name] = sec[col.source][:, col.slot]
        else:  # obj_id
            cols[name] = object_id(index, ave["OBJ_ID"])
    return cols


def _linked_columns(catdir, files, ave, need, names, known, ctx, index, table):
    """Columns of the measures/lensing table for the selected objects."""
    kind, off_col, cnt_col = tables.LINKS[table]
    owner, row = expand_ranges(ave[off_col], ave[cnt_col])
    if row.size:
        mlo, mhi = int(row.min()), int(row.max()) + 1
        data = _read(files[kind], need[kind] or None, (mlo, mhi))[row - mlo]
    else:
        data = np.zeros(0, np.dtype([(c, "f8") for c in need[kind]]))
    cols = {}
    for name in names:
        col = known[name]
        if col.build == "raw":
            cols[name] = data[col.source]
        elif col.build == "obj_id":
            cols[name] = object_id(index, ave["OBJ_ID"][owner])
        else:
            cols[name] = _derived(col.build, data, catdir, ctx)
    return cols


def _derived(build: str, m: np.ndarray, catdir, ctx: Context) -> np.ndarray:
    """mjd, photcode, filter and mag_cal of measurements."""
    pc = ctx.photcodes
    codes = m["PHOTCODE"].astype(np.int64) if "PHOTCODE" in m.dtype.names else None
    if build == "mjd":
        from dvo.times import time_to_mjd

        mjd = image_mjd(catdir, m["IMAGE_ID"])
        return np.where(np.isfinite(mjd), mjd, time_to_mjd(m["TIME"]))
    uniq, inv = np.unique(codes, return_inverse=True)
    ok = pc.known(uniq)
    if build == "photcode":
        names = np.full(len(uniq), "", dtype="<U32")
        names[ok] = pc.table["NAME"][pc.rows(uniq[ok])].astype(str)
        return names[inv]
    if build == "filter":
        slot = np.full(len(uniq), -1)
        slot[ok] = pc.sec_slot(uniq[ok])
        names = np.array(list(ctx.sec_names) + [""], dtype="<U8")
        return names[slot][inv]
    from dvo.photometry import calibrated_mag

    c_lam, k = np.zeros(len(uniq)), np.zeros(len(uniq))
    c_lam[ok], k[ok] = pc.column("C_LAM", uniq[ok]), pc.column("K", uniq[ok])
    return calibrated_mag(m["MAG"], c_lam[inv], k[inv], m["AIRMASS"], m["MCAL_PSF"], m["M_FLAT"])


def sort_order(cols: dict, order_by, limit: int | None = None) -> np.ndarray:
    """Row order for ``order_by`` ((column, descending) pairs), stable, NaN last; then limit.

    Examples
    --------
    >>> sort_order({"g": np.array([3.0, np.nan, 1.0, 3.0])}, [("g", False)]).tolist()
    [2, 0, 3, 1]
    >>> sort_order({"g": np.array([3.0, np.nan, 1.0, 3.0])}, [("g", True)], limit=2).tolist()
    [0, 3]
    """
    n = len(next(iter(cols.values()))) if cols else 0
    if not order_by:
        return np.arange(n if limit is None else min(n, limit))
    keys = []
    for name, desc in reversed(list(order_by)):
        v = cols[name]
        rank = np.unique(v, return_inverse=True)[1].reshape(-1).astype(np.int64)
        if v.dtype.kind == "f":
            nan = np.isnan(v)
            rank = np.where(nan, 0, rank)
            keys.append(-rank if desc else rank)
            keys.append(nan)
            continue
        keys.append(-rank if desc else rank)
    order = np.lexsort(keys)
    return order if limit is None else order[:limit]
