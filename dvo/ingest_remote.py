"""addstar on partition hosts: each pushed partition is updated on the hosts that hold it.

Association needs only each touched partition's object positions and counters, so the client
keeps a *mirror* of them (:class:`Mirror`: RA, DEC and OBJ_ID of every object, ``nobjects``,
``next_objid``), fetched from the partition's host the first time a run touches it. Each
loaded file's changes to a pushed partition (its :class:`dvo.wal.Delta` rows, every
association decided, logged to the write-ahead log as they are applied) go to its host and,
when it has the data, its backup host; there a worker session of the run applies them with the same
:class:`dvo.builder.PartitionBuilder` as a local run and sends back only the new positions of
the objects the file touched, which keep the mirror exact for the next file (the replicas'
answers must agree). At a checkpoint every holder finishes its builders and stages the new
partition files (``addstar_prepare``, :class:`dvo.hosts.twophase.HostStage`); the local
transaction (Images, the statistics index, the partitions held here, the log's applied mark)
commits with ``HostWrites.json`` as the commit point, then the hosts commit
(:class:`dvo.hosts.twophase.HostWrite`). The result is byte for byte that of a local run.

Worker operations (fixed classes, looked up by name in :data:`dvo.remote.TASKS`):
``addstar_open`` (a partition's positions and counters), ``addstar_apply`` (one file's rows
for the request's partitions: packed raw rows whose dtype is the worker's own schema, checked
for counts, ranges and ids before a builder sees them) and ``addstar_prepare``. Requests of a
run carry its id and a step number, so a worker that lost the run's earlier changes (a new
process) refuses instead of building on a partial state.

Faults: any host failure stops the run with an error naming the host and partitions; nothing
is half applied (a checkpoint is two-phase) and the log keeps every loaded file, so the next
writer replays the files after the last checkpoint once the host is back.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import zstandard

from dvo import layout
from dvo.builder import GrowableRows, PartitionBuilder
from dvo.errors import HostError
from dvo.hosts.assign import DATA_ON_TGT
from dvo.hosts.protocol import pack_array, unpack_array
from dvo.hosts.wire import count, finite, in_range, require
from dvo.schema import AVERAGE, LENSING, MEASURE, opaque

if TYPE_CHECKING:
    from dvo.hosts.twophase import Prepared

__all__ = [
    "MIRROR_BYTES",
    "Mirror",
    "HostPartitions",
    "host_partitions",
    "has_pushed",
    "finish_pending",
    "refresh_host_copies",
    "OpenTask",
    "ApplyTask",
    "PrepareTask",
    "pack_rows",
    "unpack_rows",
]

I8, F8 = "<i8", "<f8"
MAX_ROWS = 1 << 26
#: Mirrors of partitions not changed since the checkpoint are dropped past this (24 bytes an
#: object: 1 GiB holds 45 million objects).
MIRROR_BYTES = 1 << 30
log = logging.getLogger("dvo.hosts")
_RUN = re.compile(r"^[0-9a-f]{32}$")


# ---------------------------------------------------------------------------------- rows
def pack_rows(rows: np.ndarray, schema) -> dict:
    """Table rows as JSON: the row count and the zstd-compressed raw bytes of ``schema``'s
    dtype (the receiver views them with its own schema, never a dtype from the wire)."""
    rows = np.ascontiguousarray(schema.conform(rows))
    data = zstandard.ZstdCompressor(level=1).compress(opaque(rows).tobytes())
    return {"rows": len(rows), "data": pack_array(np.frombuffer(data, np.uint8))}


def unpack_rows(obj, schema, name: str) -> np.ndarray:
    """The rows packed by :func:`pack_rows`, as ``schema``'s dtype.

    Raises
    ------
    HostError
        Malformed, or not exactly the announced number of rows.
    """
    require(isinstance(obj, dict) and set(obj) == {"rows", "data"}, f"{name}: not packed rows")
    n = count(obj["rows"], f"{name} rows", MAX_ROWS)
    comp = unpack_array(obj["data"], "u1", name, max_items=n * schema.dtype.itemsize + (1 << 20))
    size = n * schema.dtype.itemsize
    try:
        raw = zstandard.ZstdDecompressor().decompress(comp.tobytes(), max_output_size=size)
    except zstandard.ZstdError as exc:
        raise HostError(f"{name}: bad compressed rows ({exc})") from None
    require(len(raw) == size, f"{name}: {len(raw)} bytes for {n} rows")
    return np.frombuffer(raw, schema.dtype).copy()


def _check_run(value) -> str:
    require(isinstance(value, str) and bool(_RUN.match(value)), "bad run id")
    return value


# ---------------------------------------------------------------------------------- worker
@dataclass
class _Run:
    """A worker's state for one addstar run: the builders of the partitions it changed."""

    step: int = 0  # state-changing requests (apply, prepare) received
    builders: dict[int, PartitionBuilder] = field(default_factory=dict)
    base: dict[int, dict] = field(default_factory=dict)  # file stamps when each was made


_RUNS: dict[str, _Run] = {}  # this worker process's runs (one session serves one run)


def _advance(req: dict) -> _Run:
    """The run of a state-changing request, which must be the next step."""
    run = _check_run(req.get("run"))
    step = count(req.get("step"), "step")
    state = _RUNS.setdefault(run, _Run())
    require(step == state.step, f"step {step} of run {run[:8]}, this worker is at "
            f"{state.step} (it does not hold the run's earlier changes)")  # fmt: skip
    state.step += 1
    return state


def _builder(db, state: _Run, index: int) -> PartitionBuilder:
    """The run's builder of a partition, made from this host's copy on first use."""
    from dvo.hosts.manifest import file_stamps

    if index not in state.builders:
        name = layout.check_partition_name(str(db.skytable.name[index]))
        with db.reader():
            state.base[index] = file_stamps(db.catdir, name)
            state.builders[index] = PartitionBuilder(db.partition(index))
    return state.builders[index]


def _counters(b: PartitionBuilder) -> dict:
    return {"nobjects": int(b.nobjects), "next_objid": int(b.next_objid), "nbytes": int(b.nbytes)}


def _int(meta: dict, key: str) -> int:
    return count(meta.get(key), key)


@dataclass(frozen=True)
class OpenTask:
    """A partition's positions and counters, for the client's mirror (``addstar_open``)."""

    run: str
    op = "addstar_open"
    reply = "arrays"
    expect = {"ra": (F8, 1), "dec": (F8, 1), "obj_id": (I8, 1)}

    def params(self) -> dict:
        return {"run": self.run}

    @classmethod
    def from_request(cls, req: dict) -> OpenTask:
        """The task a worker received."""
        return cls(_check_run(req.get("run")))

    def remote(self, db, index: int, stage=None):
        """On the worker: positions and counters (of the run's builder, if it has one; else
        read from the Average table alone: builders are made by the first change)."""
        b = _RUNS.setdefault(self.run, _Run()).builders.get(index)
        if b is not None:
            ave, next_objid = b.average, b.next_objid
        else:
            cols = {"average": ["RA", "DEC", "OBJ_ID"]}
            with db.reader():
                part = db.partition(index, kinds=("average",), columns=cols)
            ave, next_objid = part.average, part.next_objid
        meta = {"nobjects": len(ave), "next_objid": int(next_objid), "nbytes": 0}
        return meta, {"ra": ave["RA"], "dec": ave["DEC"], "obj_id": ave["OBJ_ID"].astype(np.int64)}

    def decode(self, index: int, meta: dict, a: dict) -> Mirror:
        """A worker's answer, checked."""
        n = _int(meta, "nobjects")
        for k in self.expect:
            require(len(a[k]) == n, f"{k}: {len(a[k])} rows for {n} objects")
        in_range(a["obj_id"], "obj_id", 0, _int(meta, "next_objid"))
        return Mirror.from_arrays(index, a["ra"], a["dec"], a["obj_id"], _int(meta, "next_objid"))


@dataclass
class Applied:
    """What a holder reports after applying one file to a partition."""

    rows: np.ndarray  # touched objects
    ra: np.ndarray
    dec: np.ndarray
    nobjects: int
    next_objid: int
    nbytes: int

    def same(self, other: Applied) -> bool:
        """Whether two replicas ended in the same state."""
        return (self.nobjects, self.next_objid) == (other.nobjects, other.next_objid) and all(
            np.array_equal(getattr(self, k), getattr(other, k)) for k in ("rows", "ra", "dec")
        )


@dataclass(frozen=True)
class ApplyTask:
    """One file's rows for some partitions, applied on their holder (``addstar_apply``)."""

    run: str
    step: int
    deltas: dict  # index -> (nobjects before, new Average, Measure, Lensing rows)
    op = "addstar_apply"
    reply = "arrays"
    expect = {"rows": (I8, 1), "ra": (F8, 1), "dec": (F8, 1)}

    def params(self) -> dict:
        """The request parameters (rows packed)."""
        deltas = {
            str(i): {"nobjects": int(n), "average": pack_rows(a, AVERAGE),
                     "measure": pack_rows(m, MEASURE), "lensing": pack_rows(ll, LENSING)}
            for i, (n, a, m, ll) in self.deltas.items()
        }  # fmt: skip
        return {"run": self.run, "step": self.step, "deltas": deltas}

    @classmethod
    def from_request(cls, req: dict) -> ApplyTask:
        """The task a worker received: the step checked, the rows unpacked."""
        _advance(req)
        data = req.get("deltas")
        require(isinstance(data, dict) and len(data) <= 1 << 16, "deltas")
        deltas = {}
        for key, d in data.items():
            require(isinstance(key, str) and key.isdigit() and isinstance(d, dict), "deltas")
            deltas[int(key)] = (
                count(d.get("nobjects"), "nobjects", MAX_ROWS),
                unpack_rows(d.get("average"), AVERAGE, "average"),
                unpack_rows(d.get("measure"), MEASURE, "measure"),
                unpack_rows(d.get("lensing"), LENSING, "lensing"),
            )
        return cls(req["run"], req["step"], deltas)

    def remote(self, db, index: int, stage=None):
        """On the worker: check the rows against the builder, add them, report positions."""
        require(index in self.deltas, f"no rows sent for partition {index}")
        nobj, ave, m, ll = self.deltas[index]
        b = _builder(db, _RUNS[self.run], index)
        require(b.nobjects == nobj, f"{b.nobjects} objects here, the client expects {nobj}")
        n = nobj + len(ave)
        require(np.array_equal(ave["OBJ_ID"], b.next_objid + np.arange(len(ave))),
                "new objects are not numbered after the existing ones")  # fmt: skip
        finite(ave["RA"], "RA")
        finite(ave["DEC"], "DEC")
        for rows, what in ((ave, "average"), (m, "measure"), (ll, "lensing")):
            require(bool(np.all(rows["CAT_ID"] == index)), f"{what}: CAT_ID is not {index}")
        in_range(m["AVE_REF"].astype(np.int64), "measure AVE_REF", 0, n)
        in_range(ll["AVE_REF"].astype(np.int64), "lensing AVE_REF", 0, n)
        ids = np.concatenate([b.average["OBJ_ID"], ave["OBJ_ID"]])
        for rows, what in ((m, "measure"), (ll, "lensing")):
            ok = np.array_equal(rows["OBJ_ID"], ids[rows["AVE_REF"].astype(np.int64)])
            require(ok, f"{what}: OBJ_ID differs from its object's")
        b.add(ave, m, ll, db.photcodes)
        touched = np.unique(np.concatenate([m["AVE_REF"], ll["AVE_REF"]])).astype(np.int64)
        out = b.average
        return _counters(b), {"rows": touched, "ra": out["RA"][touched],
                              "dec": out["DEC"][touched]}  # fmt: skip

    def decode(self, index: int, meta: dict, a: dict) -> Applied:
        """A holder's report, checked against what was sent."""
        nobj, ave, m, ll = self.deltas[index]
        n = _int(meta, "nobjects")
        require(n == nobj + len(ave), f"{n} objects after the file, expected {nobj + len(ave)}")
        want = np.unique(np.concatenate([m["AVE_REF"], ll["AVE_REF"]])).astype(np.int64)
        require(np.array_equal(a["rows"], want), "touched objects differ from the rows sent")
        for k in ("ra", "dec"):
            require(len(a[k]) == len(want), f"{k}: wrong length")
        return Applied(a["rows"], a["ra"], a["dec"], n, _int(meta, "next_objid"),
                       _int(meta, "nbytes"))  # fmt: skip


@dataclass(frozen=True)
class PrepareTask:
    """Finish a partition's builder and stage its files (``addstar_prepare``, phase 1)."""

    run: str
    step: int
    nobjects: dict  # index -> objects the client's mirror holds
    nsecfilt: int = 0
    names: object = None  # client: SkyTable names
    op = "addstar_prepare"
    reply = "arrays"
    stages = True

    @property
    def expect(self) -> dict:
        """The arrays of a reply: the statistics row."""
        from dvo.hosts.twophase import stats_expect

        return stats_expect(self.nsecfilt)

    def params(self) -> dict:
        n = {str(i): int(v) for i, v in self.nobjects.items()}
        return {"run": self.run, "step": self.step, "nobjects": n}

    @classmethod
    def from_request(cls, req: dict) -> PrepareTask:
        """The task a worker received, the step checked."""
        _advance(req)
        data = req.get("nobjects")
        require(isinstance(data, dict), "nobjects")
        nobj = {}
        for key, v in data.items():
            require(isinstance(key, str) and key.isdigit(), "nobjects")
            nobj[int(key)] = count(v, "nobjects", MAX_ROWS)
        return cls(req["run"], req["step"], nobj)

    def remote(self, db, index: int, stage):
        """On the worker: the finished partition staged; its statistics row and checksums."""
        from dvo.hosts.twophase import stage_written

        state = _RUNS[self.run]
        b = state.builders.pop(index, None)
        require(b is not None, f"partition {index} has no changes of this run here")
        require(b.nobjects == self.nobjects.get(index), "object count differs from the client's")
        return stage_written(db, index, stage, state.base.pop(index), b.finish())

    def decode(self, index: int, meta: dict, a: dict) -> Prepared:
        """A holder's report, checked."""
        from dvo.hosts import wire
        from dvo.hosts.twophase import Prepared, stats_from_arrays

        stats = stats_from_arrays(a, self.nsecfilt, index)
        require(int(stats["NAVERAGE"][0]) == self.nobjects[index], "object count differs")
        return Prepared(stats, wire.files_from_wire(meta.get("files"), str(self.names[index])))


# ---------------------------------------------------------------------------------- client
_MIRROR = np.dtype([("RA", "f8"), ("DEC", "f8"), ("OBJ_ID", "u4")])


class Mirror:
    """A pushed partition as association sees it: positions, object ids and counters."""

    def __init__(self, index: int, rows: np.ndarray, next_objid: int) -> None:
        self.index, self.next_objid = index, int(next_objid)
        self._rows = GrowableRows(rows)

    @classmethod
    def from_arrays(cls, index, ra, dec, obj_id, next_objid) -> Mirror:
        rows = np.empty(len(ra), _MIRROR)
        rows["RA"], rows["DEC"], rows["OBJ_ID"] = ra, dec, obj_id
        return cls(index, rows, next_objid)

    @property
    def average(self) -> np.ndarray:
        """RA, DEC and OBJ_ID of every object (a view: valid until the next update)."""
        return self._rows.view

    @property
    def nobjects(self) -> int:
        return self._rows.n

    @property
    def nbytes(self) -> int:
        return self._rows.nbytes

    def update(self, new_average: np.ndarray, done: Applied) -> None:
        """Append a file's new objects and set the touched objects' new positions."""
        new = np.empty(len(new_average), _MIRROR)
        for k in _MIRROR.names:
            new[k] = new_average[k]
        self._rows.append(new)
        rows = self._rows.view
        rows["RA"][done.rows], rows["DEC"][done.rows] = done.ra, done.dec
        self.next_objid += len(new_average)
        require(self.nobjects == done.nobjects and self.next_objid == done.next_objid,
                "the host's counters differ from the mirror's")  # fmt: skip


def _named(exc: HostError, names: list[str], what: str) -> HostError:
    err = HostError(f"{exc.reason}; {what}", host=exc.host)
    err.partitions = names
    return err


class HostPartitions:
    """The pushed partitions of one addstar run (see the module docstring).

    Parameters
    ----------
    db : Database
    indices : the pushed partitions (updated on their hosts).
    config : SshConfig, optional
    """

    def __init__(self, db, indices, config=None) -> None:
        from dvo.hosts.executor import _Clients, current_config
        from dvo.hosts.table import hosts_by_id, read_host_table

        self.db, self.cfg = db, config or current_config()
        self.remote = {int(i) for i in indices}
        self.hosts = hosts_by_id(read_host_table(db.catdir))
        self.clients = _Clients(self.cfg)
        self.run = uuid.uuid4().hex
        self.steps: dict[int, int] = {}  # host id -> state-changing requests sent
        self.mirrors: OrderedDict[int, Mirror] = OrderedDict()  # least recently used first
        self.dirty: dict[int, int] = {}  # changed since the checkpoint -> nbytes (primary)

    def __contains__(self, index: int) -> bool:
        return int(index) in self.remote

    @property
    def nbytes(self) -> int:
        """Memory the primaries' builders hold."""
        return sum(self.dirty.values())

    def holders(self, index: int) -> list[int]:
        """Host ids holding the partition: its host, then its backup when it has the data."""
        from dvo.hosts.assign import partition_holders

        return partition_holders(self.db.skytable, index)

    def _host(self, hid: int):
        from dvo.hosts.table import lookup_host

        return lookup_host(self.hosts, hid)

    def _name(self, index: int) -> str:
        return str(self.db.skytable.name[index])

    def _ask(self, hid: int, task, indices: list[int], extra: dict | None = None) -> dict:
        """One request on the run's session with host ``hid``; decoded results by index."""
        from dvo.hosts.executor import collect_arrays

        host = self._host(hid)
        parts = [{"index": i, "name": self._name(i)} for i in indices]
        message = {"op": task.op, "catdir": host.path, **task.params(), **(extra or {}),
                   "partitions": parts}  # fmt: skip
        try:
            session = self.clients.session(host)
            try:
                return collect_arrays(session.request(message), task, indices)
            finally:
                self.clients.release(host, session)
        except HostError as exc:
            with contextlib.suppress(Exception):  # closing a dead connection may fail too
                self.clients.drop(host)
            raise _named(HostError(exc.reason, host=host.label),
                         [self._name(i) for i in indices], "addstar stopped") from None  # fmt: skip

    def _each_host(self, jobs: dict[int, list[int]], make) -> dict[tuple[int, int], object]:
        """``make(hid, indices)`` -> results, on every host in parallel; errors combined."""
        from dvo.hosts.twophase import _combined

        results, errors = {}, []

        def job(hid: int) -> None:
            try:
                for i, res in make(hid, jobs[hid]).items():
                    results[(hid, i)] = res
            except HostError as exc:
                errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - reported with the host's name
                err = HostError(f"{type(exc).__name__}: {exc}", host=self._host(hid).label)
                errors.append(_named(err, [self._name(i) for i in jobs[hid]], "addstar stopped"))

        with ThreadPoolExecutor(max(1, len(jobs))) as pool:
            list(pool.map(job, list(jobs)))
        if errors:
            raise _combined(errors, "the database is as of the last checkpoint and the "
                            "write-ahead log keeps every loaded file: run addstar again once "
                            "the host is back")  # fmt: skip
        return results

    def get(self, index: int) -> Mirror:
        """The partition's mirror, fetched from its host on first use."""
        self.fetch([index], evict=False)
        return self.mirrors[int(index)]

    def fetch(self, indices, *, evict: bool = True) -> None:
        """Fetch the mirrors of the pushed partitions among ``indices`` not held (one request
        per host, all hosts at once); then, past MIRROR_BYTES, drop the least recently used
        others. A dropped mirror is fetched again when needed: the worker answers with its
        builder's state, or its files', which the last checkpoint wrote, so it is exact."""
        want = [int(i) for i in indices if int(i) in self.remote]
        jobs: dict[int, list[int]] = {}
        for i in want:
            if i in self.mirrors:
                self.mirrors.move_to_end(i)
            else:
                jobs.setdefault(self.holders(i)[0], []).append(i)
        if jobs:
            for (_, i), mirror in self._each_host(jobs, self._open).items():
                self.mirrors[i] = mirror
        if evict:
            self._evict(set(want))

    def _evict(self, keep: set[int]) -> None:
        """Drop least recently used mirrors (not ``keep``, not changed since the checkpoint)
        while they hold more than MIRROR_BYTES."""
        total = sum(m.nbytes for m in self.mirrors.values())
        for i in list(self.mirrors):
            if total <= MIRROR_BYTES:
                return
            if i not in keep and i not in self.dirty:
                total -= self.mirrors.pop(i).nbytes

    def _open(self, hid: int, indices: list[int]) -> dict:
        return self._ask(hid, OpenTask(self.run), indices)

    def _step(self, hid: int) -> int:
        step = self.steps.get(hid, 0)
        self.steps[hid] = step + 1
        return step

    def apply(self, parts: list[tuple]) -> None:
        """Apply one file's rows of pushed partitions on their holders; update the mirrors."""
        self.fetch([p[0] for p in parts])
        deltas = {int(i): (self.mirrors[int(i)].nobjects, a, m, ll) for i, a, m, ll in parts}
        jobs: dict[int, list[int]] = {}
        for i in deltas:
            for hid in self.holders(i):
                jobs.setdefault(hid, []).append(i)

        def make(hid: int, indices: list[int]) -> dict:
            task = ApplyTask(self.run, self._step(hid), {i: deltas[i] for i in indices})
            return self._ask(hid, task, indices)

        results = self._each_host(jobs, make)
        for i, (_, ave, _m, _l) in deltas.items():
            hids = self.holders(i)
            primary = results[(hids[0], i)]
            for hid in hids[1:]:
                if not results[(hid, i)].same(primary):
                    err = HostError(f"its copy of {self._name(i)} differs from the primary's",
                                    host=self._host(hid).label)  # fmt: skip
                    raise _named(err, [self._name(i)], "addstar stopped")
            self.mirrors[i].update(ave, primary)
            self.dirty[i] = primary.nbytes

    def prepare(self, write) -> np.ndarray:
        """Phase 1 of a checkpoint on every holder of a changed partition; returns their
        statistics rows. ``write`` (:class:`~dvo.hosts.twophase.HostWrite`) learns the
        holders and the new files' checksums. A failure aborts everywhere and raises."""
        from dvo.hosts.twophase import _combined

        indices = sorted(self.dirty)
        jobs: dict[int, list[int]] = {}
        for i in indices:
            for hid in self.holders(i):
                jobs.setdefault(hid, []).append(i)
        write.holders = {hid: list(idx) for hid, idx in jobs.items()}
        names = self.db.skytable.name
        nsec = self.db.nsecfilt

        def make(hid: int, idx: list[int]) -> dict:
            n = {i: self.mirrors[i].nobjects for i in idx}
            task = PrepareTask(self.run, self._step(hid), n, nsec, names)
            return self._ask(hid, task, idx, {"txid": write.txid})

        try:
            results = self._each_host(jobs, make)
            errors = write._check_replicas(results, indices)
            if errors:
                raise _combined(errors, "addstar: nothing was written at this checkpoint")
        except HostError:
            write.abort()
            raise
        rows = []
        for i in indices:
            res = results[(self.holders(i)[0], i)]
            write.files[i] = res.files
            rows.append(res.stats)
        self.dirty = {}
        return np.concatenate(rows)

    def refresh_database_files(self, *, best_effort: bool = False) -> None:
        """Copy Images and the statistics index to every host holding pushed partitions
        (:func:`refresh_host_copies`); ``best_effort``: log failures instead of raising."""
        try:
            refresh_host_copies(self.db, self.cfg, self.clients)
        except HostError as exc:
            if not best_effort:
                raise
            log.warning("%s", exc)

    def close(self) -> None:
        """End the run's worker sessions."""
        self.clients.close()


def refresh_host_copies(db, config=None, clients=None) -> None:
    """Copy Images and the statistics index to every host holding pushed partitions, each to
    a temporary name then renamed, so that the hosts' own checks (``dvo verify``: IMAGE_IDs,
    counts) see what their partitions now hold after addstar wrote them there.

    Raises
    ------
    HostError
        Hosts that could not be refreshed (named; the others were).
    """
    from pathlib import PurePosixPath

    import paramiko

    from dvo.hosts.executor import _Clients, current_config
    from dvo.hosts.sync import _upload
    from dvo.hosts.table import hosts_by_id, read_host_table
    from dvo.hosts.twophase import _combined

    cfg = config or current_config()
    own = clients is None
    clients = _Clients(cfg) if own else clients
    st, hosts = db.skytable, hosts_by_id(read_host_table(db.catdir))
    pushed = (st.host_id != 0) & ((st.host_flags & DATA_ON_TGT) != 0)
    hids = sorted({int(h) for h in st.host_id[pushed]} | {int(h) for h in st.backup_id[pushed]})
    tag, errors = uuid.uuid4().hex[:8], []
    try:
        for hid in (h for h in hids if h in hosts):
            host = hosts[hid]
            try:
                sftp = clients.get(host).open_sftp()
                try:
                    sftp.get_channel().settimeout(cfg.command_timeout)
                    for rel in (layout.IMAGES, layout.STATS):
                        _upload(sftp, db.catdir / rel, PurePosixPath(host.path) / rel, tag)
                finally:
                    sftp.close()
            except HostError as exc:
                errors.append(exc)
            except (OSError, EOFError, paramiko.SSHException) as exc:
                reason = " ".join(str(exc).split()) or type(exc).__name__
                errors.append(HostError(f"SFTP failed ({reason})", host=host.label))
    finally:
        if own:
            clients.close()
    if errors:
        raise _combined(errors, "its copies of Images and the statistics index are older "
                        "than its partitions: dvo verify there reports their new images "
                        "until the next addstar checkpoint or dvo hosts resume")  # fmt: skip


def finish_pending(db, config=None) -> int:
    """Finish an unfinished host write (:func:`dvo.hosts.twophase.resume_pending`; the caller
    holds the writer lock) and, for addstar's, refresh the hosts' copies of Images and the
    statistics index. Returns the number of partition copies committed."""
    from dvo.hosts.twophase import read_record, resume_pending

    pending = read_record(db.catdir)["pending"] or {}
    n = resume_pending(db, config)
    if n and pending.get("op") == "addstar":
        refresh_host_copies(db, config)
    return n


def has_pushed(db) -> bool:
    """Whether any partition of ``db`` is marked as held by its host."""
    st = db.skytable
    return bool(np.any((st.host_id != 0) & ((st.host_flags & DATA_ON_TGT) != 0)))


def host_partitions(db) -> HostPartitions | None:
    """The run's :class:`HostPartitions` when some partitions of ``db`` are pushed (an
    unfinished host write is finished first), else None."""
    from dvo.hosts.executor import current_config, pushed_partitions
    from dvo.hosts.twophase import pending_partitions

    st = db.skytable
    candidates = np.flatnonzero((st.host_id != 0) & ((st.host_flags & DATA_ON_TGT) != 0))
    if len(candidates) == 0:
        return None
    remote = pushed_partitions(db.catdir, st, candidates)
    if not remote:
        return None
    cfg = current_config()
    if pending_partitions(db.catdir):
        finish_pending(db, cfg)
    return HostPartitions(db, remote, cfg)
