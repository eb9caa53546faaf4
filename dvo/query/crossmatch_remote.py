"""Crossmatch on partition hosts: each pushed partition's share is matched where it lives.

:class:`MatchHostTask` (operation ``crossmatch``) is one task for every partition of a
crossmatch, as :class:`~dvo.hosts.executor.HostExecutor` runs one task per map. Here (a
partition held locally) it runs :func:`dvo.query.crossmatch.match_partition` on its share of
the input. For the partitions of one host request, :meth:`MatchHostTask.params_for` sends
only data: the object scan (columns, where), the radius, ``all``, and per partition its input
rows and positions as packed arrays (int64 rows, float64 ra/dec). The worker rebuilds and
checks everything (:meth:`MatchHostTask.from_request`, :mod:`dvo.hosts.wire`), runs the same
:class:`~dvo.query.crossmatch.KdTreeMatch` on its copy, and answers per partition with the
matched input rows, one array per requested object column and the separations. The client
checks them (:meth:`MatchHostTask.decode`: lengths, rows among those sent, ids of this
partition, separations within the radius) and merges exactly as for a local run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from dvo.errors import HostError, QueryError
from dvo.hosts.protocol import pack_array, unpack_array
from dvo.hosts.wire import count, finite, in_range, length, require
from dvo.query.scan import ScanRequest

__all__ = ["MatchHostTask", "MAX_INPUT_BYTES"]

I8, F8 = "<i8", "<f8"
#: packed input of one host request at most (the worker refuses requests over 256 MiB)
MAX_INPUT_BYTES = 160 << 20
_COL = "col:"


def _slices(index: np.ndarray, counts: np.ndarray) -> dict[int, slice]:
    ends = np.cumsum(counts)
    return {int(i): slice(int(e - c), int(e)) for i, c, e in zip(index, counts, ends, strict=True)}


@dataclass(frozen=True, eq=False)
class MatchHostTask:
    """One crossmatch over many partitions: ``task(catdir, index)`` here, ``crossmatch`` there.

    ``rows``, ``ra``, ``dec`` are the inputs of all partitions, partition after partition;
    ``parts`` maps a partition index to its slice of them.
    """

    scan: ScanRequest
    radius: float
    every: bool
    dtypes: tuple[tuple[str, str], ...]  # the object columns: (name, dtype string)
    rows: np.ndarray = field(repr=False)
    ra: np.ndarray = field(repr=False)
    dec: np.ndarray = field(repr=False)
    parts: dict = field(repr=False)

    op = "crossmatch"
    reply = "arrays"

    @classmethod
    def build(cls, tasks: list, dtype: np.dtype) -> MatchHostTask:
        """The host task of the driver's per-partition ``(index, MatchTask)`` list."""
        first = tasks[0][1]
        counts = np.array([len(t.rows) for _, t in tasks], np.int64)
        index = np.array([i for i, _ in tasks], np.int64)
        dtypes = tuple((n, dtype[n].str) for n in dtype.names)
        return cls(first.request, first.matcher.radius, first.all, dtypes,
                   np.concatenate([t.rows for _, t in tasks]),
                   np.concatenate([t.ra for _, t in tasks]),
                   np.concatenate([t.dec for _, t in tasks]), _slices(index, counts))  # fmt: skip

    # ------------------------------------------------------------------ here
    def __call__(self, catdir: str, index: int):
        """A partition held here: what :class:`~dvo.query.crossmatch.MatchTask` returns."""
        from dvo.query.crossmatch import KdTreeMatch, match_partition

        s = self.parts[index]
        i, objs, sep = match_partition(catdir, index, self.scan, KdTreeMatch(self.radius),
                                       self.every, self.ra[s], self.dec[s])  # fmt: skip
        return self.rows[s][i], objs, sep

    def params(self) -> dict:
        """What every request carries (the inputs come with :meth:`params_for`)."""
        return {"scan": dataclasses.asdict(self.scan), "radius": self.radius, "all": self.every}

    def params_for(self, indices: list[int]) -> dict:
        """The request for these partitions: :meth:`params` and their inputs, packed."""
        take = [self.parts[i] for i in indices]
        counts = np.array([s.stop - s.start for s in take], np.int64)
        sel = np.concatenate([np.arange(s.start, s.stop) for s in take] or [np.zeros(0, int)])
        if 32 * len(sel) > MAX_INPUT_BYTES:
            raise QueryError(f"crossmatch: {len(sel)} input rows near {len(indices)} partitions "
                             "of one host request; split the input")  # fmt: skip
        inputs = {"index": pack_array(np.asarray(indices, np.int64)), "count": pack_array(counts),
                  "rows": pack_array(self.rows[sel]), "ra": pack_array(self.ra[sel]),
                  "dec": pack_array(self.dec[sel])}  # fmt: skip
        return {**self.params(), "inputs": inputs}

    @property
    def expect(self) -> dict:
        """The arrays of a reply: input rows, object columns, separations."""
        out = {"input_row": (I8, 1)}
        out.update({_COL + n: (t, 1) for n, t in self.dtypes})
        out["sep"] = (F8, 1)
        return out

    def decode(self, index: int, meta: dict, a: dict):
        """A worker's matches of one partition, checked: ``(rows, objects, sep)``."""
        from dvo.ids import split_object_id

        n = len(a["input_row"])
        require(count(meta.get("matches"), "matches") == n, "matches: not the rows sent")
        for name, v in a.items():
            length(v, name, n)
        s = self.parts[index]
        sent = np.sort(self.rows[s])
        rows = a["input_row"]
        at = np.minimum(np.searchsorted(sent, rows), max(len(sent) - 1, 0))
        require(n == 0 or bool(np.all(sent[at] == rows)), "input_row: rows not sent")
        objs = np.empty(n, [(nm, t) for nm, t in self.dtypes])
        for nm, _ in self.dtypes:
            objs[nm] = a[_COL + nm]
        require(
            bool(np.all(split_object_id(objs["obj_id"])[0] == index)), "obj_id: other partition"
        )
        sep = finite(a["sep"], "sep")
        require(bool(np.all((sep >= 0) & (sep <= self.radius))), "sep: beyond the radius")
        keys = np.stack([rows, objs["obj_id"]], axis=1) if self.every else rows
        require(len(np.unique(keys, axis=0)) == n, "duplicate matches")
        return rows, objs, sep

    # ------------------------------------------------------------------ on the worker
    @classmethod
    def from_request(cls, req: dict) -> MatchHostTask:
        """The task a worker received, every field and array checked."""
        scan = _scan_from_wire(req.get("scan"))
        radius, every = req.get("radius"), req.get("all")
        require(isinstance(radius, float | int) and not isinstance(radius, bool), "radius")
        require(isinstance(every, bool), "all must be true or false")
        from dvo.query.crossmatch import KdTreeMatch

        try:
            KdTreeMatch(float(radius)).validate()
        except QueryError as exc:
            raise HostError(str(exc)) from None
        data = req.get("inputs")
        require(isinstance(data, dict) and set(data) == {"index", "count", "rows", "ra", "dec"},
                "inputs")  # fmt: skip
        index = unpack_array(data["index"], I8, "index")
        asked = [p.get("index") for p in req.get("partitions") or [] if isinstance(p, dict)]
        require(index.tolist() == asked, "inputs: partitions other than those requested")
        counts = in_range(length(unpack_array(data["count"], I8, "count"), "count", len(index)),
                          "count", 0, 1 << 40)  # fmt: skip
        total = int(counts.sum())
        rows = in_range(length(unpack_array(data["rows"], I8, "rows"), "rows", total),
                        "rows", 0, 1 << 62)  # fmt: skip
        ra = finite(length(unpack_array(data["ra"], F8, "ra"), "ra", total), "ra")
        dec = finite(length(unpack_array(data["dec"], F8, "dec"), "dec", total), "dec")
        require(bool(np.all((ra >= 0) & (ra <= 360) & (dec >= -90) & (dec <= 90))), "positions")
        return cls(scan, float(radius), every, (), rows, ra, dec, _slices(index, counts))

    def remote(self, db, index: int, stage=None):
        """On the worker: ``(meta, arrays)`` of one partition's matches."""
        from dvo.query.crossmatch import KdTreeMatch, match_partition

        s = self.parts[index]
        i, objs, sep = match_partition(str(db.catdir), index, self.scan,
                                       KdTreeMatch(self.radius), self.every,
                                       self.ra[s], self.dec[s])  # fmt: skip
        arrays = {"input_row": self.rows[s][i]}
        arrays.update({_COL + n: objs[n] for n in objs.dtype.names})
        arrays["sep"] = sep
        return {"matches": len(i)}, arrays


def _scan_from_wire(data) -> ScanRequest:
    """The object scan of a crossmatch: columns (obj_id, ra, dec first) and a where."""
    fields = {f.name for f in dataclasses.fields(ScanRequest)}
    require(isinstance(data, dict) and set(data) == fields, "scan: wrong fields")
    plain = data["region"] is None and data["ids"] is None and data["limit"] is None
    require(data["table"] == "objects" and plain and data["order_by"] == [], "scan: not ours")
    cols, where = data["columns"], data["where"]
    require(isinstance(cols, list) and 3 <= len(cols) <= 1024, "scan: columns")
    names = all(isinstance(c, str) and len(c) < 64 for c in cols) and len(set(cols)) == len(cols)
    require(names and cols[:3] == ["obj_id", "ra", "dec"], "scan: columns")
    require(where is None or (isinstance(where, str) and len(where) < 4096), "scan: where")
    if where is not None:
        from dvo.query.expr import parse

        try:
            parse(where)
        except QueryError as exc:
            raise HostError(f"scan: {exc}") from None
    return ScanRequest(table="objects", columns=tuple(cols), where=where)
