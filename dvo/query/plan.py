"""The query planner: region -> candidate partitions -> pruned with statistics -> a Plan.

:func:`plan_query` asks the SkyTable which partitions the region touches
(``skytable.partitions_in``), then prunes with the per-partition statistics that every write
keeps current (``db.stats()``, :mod:`dvo.stats`):

``empty``
    the partition holds no objects;
``bounds``
    the box bounding its objects' positions does not touch the region;
``where``
    a top-level ``and`` term of the where-expression of the form ``column <op> number`` cannot
    hold for any object, from the partition's magnitude ranges per filter (``g < 15`` with the
    brightest g at 16.2), its object position bounds (``ra``/``dec``), or its largest
    ``nmeasure``.

The remaining partitions are scanned in ascending SkyTable index; each carries the host that
holds it (SkyTable ``host_id``; 0 means this machine) and an expected row count (stored rows
times the fraction of the objects' bounding box the region covers).

Examples
--------
>>> import dvo                                          # doctest: +SKIP
>>> print(plan_query(dvo.open("db"), Cone(0, 7.5, 0.1), ScanRequest()).describe())  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dvo.query.expr import conjuncts, parse
from dvo.query.scan import ScanRequest, region_from_dict
from dvo.skytable import AllSky, Box, Cone, Region

__all__ = ["Plan", "plan_query", "prune_where"]

_SQDEG = (180.0 / np.pi) ** 2


@dataclass
class Plan:
    """What a query will do: partitions considered, pruned (by reason) and scanned."""

    request: ScanRequest
    considered: np.ndarray
    pruned: dict[str, np.ndarray]
    scan: np.ndarray
    expected: np.ndarray
    stored: np.ndarray
    hosts: np.ndarray
    names: np.ndarray
    executor: str = "local"
    notes: list[str] = field(default_factory=list)

    @property
    def expected_rows(self) -> int:
        """Total expected rows before the where-expression."""
        return int(self.expected.sum())

    def describe(self, *, max_rows: int = 50) -> str:
        """A human-readable plan (what ``dvo explain`` prints)."""
        req = self.request
        npruned = sum(len(v) for v in self.pruned.values())
        why = ", ".join(f"{k} {len(v)}" for k, v in self.pruned.items() if len(v))
        lines = [
            f"table: {req.table}   region: {req.region or 'none'}",
            f"columns: {', '.join(req.columns)}",
            f"where: {req.where or '-'}   order by: {_order(req.order_by)}   limit: {req.limit}",
            f"partitions: considered {len(self.considered)}, pruned {npruned}"
            + (f" ({why})" if why else "")
            + f", scanned {len(self.scan)}",
            f"executor: {self.executor}",
            f"rows expected: {self.expected_rows} (of {int(self.stored.sum())} stored)",
            f"{'index':>8} {'partition':<24} {'host':>4} {'stored':>10} {'expected':>10}",
        ]
        for k in range(min(len(self.scan), max_rows)):
            lines.append(
                f"{int(self.scan[k]):>8} {str(self.names[k]):<24} "
                f"{_host(self.hosts[k]):>4} {int(self.stored[k]):>10} {int(self.expected[k]):>10}"
            )
        if len(self.scan) > max_rows:
            lines.append(f"... {len(self.scan) - max_rows} more")
        return "\n".join(lines + self.notes)


def _order(order_by) -> str:
    return ", ".join(f"{k} desc" if d else k for k, d in order_by) or "-"


def _host(h) -> str:
    return "local" if int(h) == 0 else str(int(h))


def _region_area(region: Region | None) -> float:
    """Area of a region in square degrees (inf when unknown: no scaling)."""
    if isinstance(region, Cone):
        return 2 * np.pi * (1 - np.cos(np.radians(region.radius))) * _SQDEG
    if isinstance(region, Box):
        s = np.sin(np.radians(region.dec_max)) - np.sin(np.radians(region.dec_min))
        return np.radians(region.ra_width) * s * _SQDEG
    return np.inf


def _box_area(st: np.ndarray) -> np.ndarray:
    width = np.radians(np.maximum(st["RA_MAX"] - st["RA_MIN"], 1e-6))
    s = np.sin(np.radians(st["DEC_MAX"])) - np.sin(np.radians(st["DEC_MIN"]))
    return width * np.maximum(s, 1e-9) * _SQDEG


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}


def _term(node) -> tuple[str, str, float] | None:
    """(column, op, number) for a term ``column <op> number`` or ``number <op> column``."""
    if node.op != "cmp":
        return None
    a, b = node.args
    if a.op == "col" and b.op == "num":
        return a.value, node.value, b.value
    if a.op == "num" and b.op == "col":
        return b.value, _FLIP[node.value], a.value
    return None


def _impossible(op: str, v: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Partitions where no value in [lo, hi] satisfies ``x op v`` (NaN range: no value)."""
    with np.errstate(invalid="ignore"):
        nan = np.isnan(lo) | np.isnan(hi)
        out = {
            "<": lo >= v,
            "<=": lo > v,
            ">": hi <= v,
            ">=": hi < v,
            "==": (v < lo) | (v > hi),
        }.get(op, np.zeros(lo.shape, bool))
    return out | (nan & (op != "!="))


def prune_where(where: str | None, st: np.ndarray, sec_names) -> np.ndarray:
    """Mask of stats rows that no object can pass ``where`` (objects table only)."""
    out = np.zeros(len(st), bool)
    if where is None:
        return out
    ranges = {"ra": ("RA_MIN", "RA_MAX"), "dec": ("DEC_MIN", "DEC_MAX")}
    for node in conjuncts(parse(where).root):
        term = _term(node)
        if term is None:
            continue
        name, op, v = term
        if name in sec_names:
            k = list(sec_names).index(name)
            lo, hi = st["MAG_MIN"][:, k].astype(float), st["MAG_MAX"][:, k].astype(float)
        elif name in ranges:
            lo, hi = st[ranges[name][0]], st[ranges[name][1]]
        elif name == "nmeasure":
            lo, hi = np.zeros(len(st)), st["NMEAS_MAX"].astype(float)
        else:
            continue
        out |= _impossible(op, v, lo, hi)
    return out


_STATS_CACHE: dict = {}


def cached_stats(db) -> np.ndarray:
    """``db.stats()``, re-read only when the Stats file changes (warm queries skip it)."""
    import os

    from dvo import layout

    st = os.stat(db.catdir / layout.STATS)
    key = (str(db.catdir), st.st_mtime_ns, st.st_size, st.st_ino)
    if key not in _STATS_CACHE:
        _STATS_CACHE.clear()
        _STATS_CACHE[key] = db.stats()
    return _STATS_CACHE[key]


def _stats_rows(index: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Row of each wanted partition in the (INDEX-sorted) stats table, -1 if absent."""
    index = np.asarray(index, np.int64)
    if len(index) == 0:
        return np.full(len(wanted), -1, np.int64)
    at = np.clip(np.searchsorted(index, wanted), 0, len(index) - 1)
    return np.where(index[at] == wanted, at, -1)


def plan_query(db, region: Region | None, request: ScanRequest, *, partitions=None) -> Plan:
    """Plan a query on ``db``: which partitions to scan, where, and how many rows to expect.

    ``partitions`` replaces the SkyTable lookup (object-id lookups know their partition).
    """
    sky = db.skytable
    if partitions is not None:
        considered = np.unique(np.asarray(partitions, np.int64))
    else:
        considered = sky.partitions_in(region if region is not None else AllSky())
    stats = cached_stats(db)
    at = _stats_rows(stats["INDEX"], considered)
    empty = (at < 0) | (stats["NAVERAGE"][np.maximum(at, 0)] == 0) if len(stats) else at < 0
    st = stats[np.maximum(at, 0)] if len(stats) else stats
    bounds = np.zeros(len(considered), bool)
    if region is not None and len(st):
        bounds = ~region.touches_boxes(st["RA_MIN"], st["RA_MAX"], st["DEC_MIN"], st["DEC_MAX"])
    where = np.zeros(len(considered), bool)
    if request.table == "objects" and len(st):
        where = prune_where(request.where, st, tuple(db.photcodes.sec_names))
    bounds &= ~empty
    where &= ~(empty | bounds)
    keep = ~(empty | bounds | where)
    return _finish(db, request, region, considered, keep, st, empty, bounds, where)


def _finish(db, request, region, considered, keep, st, empty, bounds, where) -> Plan:
    count = {"objects": "NAVERAGE", "measures": "NMEASURE", "lensing": "NLENSING"}
    stored = st[count.get(request.table, "NAVERAGE")][keep].astype(np.int64) if len(st) else []
    stored = np.asarray(stored, np.int64)
    frac = np.ones(len(stored))
    if len(stored):
        frac = np.minimum(1.0, _region_area(region) / _box_area(st[keep]))
    if request.ids is not None:
        frac = np.minimum(1.0, len(request.ids) / np.maximum(st["NAVERAGE"][keep], 1))
    scan = considered[keep]
    return Plan(
        request=request,
        considered=considered,
        pruned={
            "empty": considered[empty],
            "bounds": considered[bounds],
            "where": considered[where],
        },
        scan=scan,
        expected=np.ceil(stored * frac).astype(np.int64),
        stored=stored,
        hosts=db.skytable.host_id[scan].astype(np.int64),
        names=db.skytable.name[scan],
    )


def request_region(request: ScanRequest) -> Region | None:
    """The region object of a request."""
    return region_from_dict(request.region)
