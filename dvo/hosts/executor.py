"""The partition-host executor: the :class:`dvo.query.execute.Executor` ``map`` over SSH.

Each task whose partition has ``HOST_FLAGS & DATA_ON_TGT`` goes to its ``HOST_ID``; the others
run here (in this process). Per host the partitions are split into requests of at most
``partitions_per_request`` partitions, at most ``connections_per_host`` running at once (one
SSH connection per host, one worker session per running request); all hosts run in parallel
and results are yielded in the order given as soon as each one's turn comes. Worker sessions
(:class:`~dvo.hosts.ssh.Session`) are reused by later requests; inside
:meth:`HostExecutor.keep_sessions` they also outlive the ``map`` (an iterative calibration).

Tasks: query scans (rows as Arrow), summary tasks (``verify``, ``checksums``: JSON) and the
calibration tasks whose ``reply`` is ``"arrays"`` (named arrays checked by
:class:`ArrayReply` and the task's ``decode``).

Faults: a request that fails on a transport error is retried ``retries`` times on a fresh
connection; partitions still missing then go to their ``BACKUP_ID`` when the backup holds the
data (``DATA_ON_BCK``). If any partition cannot be read anywhere, ``map`` raises
:class:`HostError` naming the host and the partitions, unless ``allow_partial`` is set: then
it skips them, lists them in :attr:`HostExecutor.missing` and warns (:class:`PartialResultWarning`).
No result is ever silently incomplete.
"""

from __future__ import annotations

import contextvars
import threading
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from dvo.errors import HostError, QueryError
from dvo.hosts.assign import DATA_ON_BCK, DATA_ON_TGT
from dvo.hosts.ssh import SshConfig, connect
from dvo.hosts.table import Host, hosts_by_id

__all__ = [
    "HostExecutor",
    "FailoverWarning",
    "PartialResultWarning",
    "uses_hosts",
    "host_executor",
    "host_options",
    "pushed_partitions",
    "ArrayReply",
    "collect_arrays",
]

_OPTIONS: contextvars.ContextVar[SshConfig | None] = contextvars.ContextVar(
    "dvo_host_options", default=None
)


class FailoverWarning(UserWarning):
    """Partitions were read from their backup host because their host failed (listed)."""


class PartialResultWarning(UserWarning):
    """A query with ``allow_partial`` returned without some partitions (listed)."""


def uses_hosts(skytable, indices) -> bool:
    """Whether any of these partitions lives on a partition host."""
    idx = np.asarray(indices, np.int64)
    on_host = (skytable.host_id[idx] != 0) & ((skytable.host_flags[idx] & DATA_ON_TGT) != 0)
    return bool(np.any(on_host))


def pushed_partitions(catdir, skytable, indices, executor=None) -> list[int]:
    """The partitions among ``indices`` that are read and written on their hosts: pushed
    (``DATA_ON_TGT``) and unchanged here since the push (the others are warned about with
    :class:`~dvo.hosts.manifest.StaleHostWarning` and stay local)."""
    from dvo.hosts.manifest import StaleHostWarning, changed_since_push, read_manifest

    st = skytable
    remote = [int(i) for i in indices if st.host_id[i] and st.host_flags[i] & DATA_ON_TGT]
    if not remote:
        return []
    manifest = read_manifest(catdir)
    stale = set(changed_since_push(catdir, [str(st.name[i]) for i in remote], manifest))
    if stale:
        if executor is not None:
            executor.read_locally = sorted(stale)
        names = ", ".join(sorted(stale))
        message = f"partitions changed here since dvo hosts push, read locally: {names}"
        warnings.warn(message, StaleHostWarning, stacklevel=3)
    return [i for i in remote if str(st.name[i]) not in stale]


@contextmanager
def host_options(**options):
    """Use these :class:`SshConfig` settings for queries run inside the block.

    Examples
    --------
    >>> with host_options(allow_partial=True):
    ...     current_config().allow_partial
    True
    """
    token = _OPTIONS.set(SshConfig(**options))
    try:
        yield
    finally:
        _OPTIONS.reset(token)


def current_config() -> SshConfig:
    """The settings of the innermost :func:`host_options` block (defaults outside)."""
    return _OPTIONS.get() or SshConfig()


def host_executor(db, indices: Sequence[int]) -> HostExecutor | None:
    """A :class:`HostExecutor` when some of these partitions were pushed to hosts, else None.

    This is the query engine's hook: databases without pushed partitions keep running locally.
    """
    if len(indices) == 0 or not uses_hosts(db.skytable, indices):
        return None
    return HostExecutor(db, None, current_config())


class _Clients:
    """One SSH connection per host, opened on first use and replaced after a failure, and
    the idle worker sessions (:class:`~dvo.hosts.ssh.Session`) on it, reused by later
    requests."""

    def __init__(self, cfg: SshConfig) -> None:
        self.cfg, self.lock, self.clients = cfg, threading.Lock(), {}
        self.idle: dict[int, list] = {}
        self.last: dict[tuple, object] = {}  # (host id, key) -> session that served it last

    def get(self, host: Host):
        with self.lock:
            client = self.clients.get(host.id)
            transport = None if client is None else client.get_transport()
            if transport is None or not transport.is_active():
                client = self.clients[host.id] = connect(host, self.cfg)
            return client

    def session(self, host: Host, key=None):
        """An idle session on ``host`` (preferably the one that last served ``key``: a
        worker keeps per-partition caches for a run), or a new one."""
        from dvo.hosts.ssh import Session

        with self.lock:
            idle = self.idle.get(host.id, [])
            preferred = self.last.get((host.id, key))
            if preferred in idle:
                idle.remove(preferred)
                idle.append(preferred)
            while idle:
                session = idle.pop()
                if session.usable:
                    return session
                session.close()
        return Session(self.get(host), host, self.cfg)

    def release(self, host: Host, session, key=None) -> None:
        """Keep a session whose last reply was read to its end; close any other."""
        if session.usable:
            with self.lock:
                if host.id in self.clients:
                    self.idle.setdefault(host.id, []).append(session)
                    self.last[(host.id, key)] = session
                    return
        session.close()

    def drop(self, host: Host) -> None:
        with self.lock:
            client = self.clients.pop(host.id, None)
            sessions = self.idle.pop(host.id, [])
            self.last = {k: v for k, v in self.last.items() if k[0] != host.id}
        for session in sessions:
            session.close()
        if client is not None:
            client.close()

    def close(self) -> None:
        with self.lock:
            clients, self.clients = list(self.clients.values()), {}
            sessions = [x for v in self.idle.values() for x in v]
            self.idle, self.last = {}, {}
        for session in sessions:
            session.close()
        for client in clients:
            client.close()


class HostExecutor:
    """Run partition tasks where the data is; see the module docstring.

    Parameters
    ----------
    db : Database
        Its SkyTable gives HOST_ID / BACKUP_ID / HOST_FLAGS and the partition names.
    hosts : list of Host, optional
        The host table (default: the database's ``HostTable.dat``).
    config : SshConfig
    """

    name = "partition hosts"

    def __init__(self, db, hosts: list[Host] | None = None, config: SshConfig | None = None):
        from dvo.hosts.table import read_host_table

        self.skytable = db.skytable
        self.sec_names = tuple(db.photcodes.sec_names)
        self.hosts = hosts_by_id(read_host_table(db.catdir) if hosts is None else hosts)
        self.cfg = config or SshConfig()
        self._shared: _Clients | None = None
        self._reset()

    def _reset(self) -> None:
        """Fresh per-``map`` state (an executor may run several maps, one after the other)."""
        self.missing: list[str] = []
        self.failovers: dict[str, str] = {}
        self.read_locally: list[str] = []
        self._cond = threading.Condition()
        self._results: dict[int, object] = {}
        self._failed: dict[int, HostError] = {}
        self._done: set[int] = set()
        self._planned: set[int] = set()
        self._cancel = threading.Event()

    # ------------------------------------------------------------------ requests
    def _host(self, hid: int, index: int) -> Host:
        host = self.hosts.get(int(hid))
        if host is None:
            name = self.skytable.name[index]
            raise HostError(f"partition {name} is on host {hid}, which is not in the host table")
        return host

    def _deliver(self, index: int, rows, via: str | None = None) -> None:
        with self._cond:
            if via is not None:  # recorded before the consumer can see the rows
                self.failovers[str(self.skytable.name[index])] = via
            self._results[index] = rows
            self._done.add(index)
            self._cond.notify_all()

    def _fail(self, indices, error: HostError) -> None:
        with self._cond:
            for i in indices:
                self._failed[i] = error
            self._cond.notify_all()

    def _dtype(self, task) -> np.dtype | None:
        """The dtype a scan's rows must have (None for summary tasks)."""
        from dvo.query.tables import empty_result

        req = getattr(task, "request", None)
        return None if req is None else empty_result(req.table, self.sec_names, req.columns).dtype

    def _request(self, clients: _Clients, host: Host, todo: list[int], task, via=None) -> None:
        """Run ``todo`` on ``host`` once; delivered partitions are removed from ``todo``."""
        names = {i: str(self.skytable.name[i]) for i in todo}
        op, params = _remote_op(task)
        if callable(getattr(task, "params_for", None)):  # per-partition inputs (crossmatch)
            params = task.params_for(todo)
        message = {"op": op, "catdir": host.path, **params,
                   "partitions": [{"index": i, "name": names[i]} for i in todo]}  # fmt: skip
        dtype = self._dtype(task)
        arrays = ArrayReply(task) if getattr(task, "reply", None) == "arrays" else None
        key = todo[0] if todo else None
        session = clients.session(host, key)
        try:
            self._replies(session.request(message), host, todo, dtype, arrays, via)
        finally:
            clients.release(host, session, key)

    def _replies(self, frames, host: Host, todo: list[int], dtype, arrays, via) -> None:
        """Deliver the partitions of one reply (see :meth:`_request`)."""
        from dvo.hosts.protocol import decode_array

        pending = None
        for kind, payload in frames:
            if self._cancel.is_set():
                return
            index = payload.get("index") if kind == b"J" else None
            if arrays is not None:
                try:
                    done = arrays.feed(kind, payload, todo)
                except HostError as exc:
                    raise HostError(exc.reason, host=host.label) from None
                if done is not None:
                    self._deliver(done[0], done[1], via)
                    todo.remove(done[0])
            elif (
                kind == b"J" and payload["type"] == "result" and index in todo and dtype is not None
            ):
                pending = int(index)
            elif kind == b"J" and payload["type"] == "summary" and index in todo and dtype is None:
                self._deliver(int(index), payload.get("data"), via)
                todo.remove(index)
            elif kind == b"A" and pending is not None:
                self._deliver(pending, decode_array(payload, dtype), via)
                todo.remove(pending)
                pending = None
            else:
                raise HostError("worker sent an unexpected message", host=host.label)
        if todo:
            raise HostError(f"worker left out {len(todo)} partitions", host=host.label)

    def _try_host(self, clients, host: Host, todo: list[int], task, via=None) -> HostError | None:
        """Run on ``host`` with retries; None on success, else the last error."""
        last = None
        for _ in range(1 + max(0, self.cfg.retries)):
            try:
                self._request(clients, host, todo, task, via)
                return None
            except HostError as exc:
                last = exc
                clients.drop(host)
                if getattr(exc, "code", None) in ("version", "request", "partition"):
                    break  # a worker's answer, not a transport fault: retrying cannot help
            if self._cancel.is_set():
                return None
        return last

    def _run_group(self, clients, host: Host, indices: list[int], task) -> None:
        """One request's partitions: the primary host (with retries), then their backups."""
        todo = list(indices)
        error = self._try_host(clients, host, todo, task)
        if error is None:
            return
        st = self.skytable
        has_backup = (st.host_flags[todo] & DATA_ON_BCK) != 0
        for bid in np.unique(st.backup_id[todo][has_backup]):
            pairs = zip(todo, st.backup_id[todo], has_backup, strict=True)
            group = [i for i, b, ok in pairs if ok and b == bid]
            if bid in (0, host.id):
                continue
            backup = self._host(bid, group[0])
            self._try_host(
                clients, backup, group, task, f"{host.label} ({error.reason}) -> {backup.label}"
            )
        with self._cond:
            left = [i for i in todo if i not in self._done]
        if left:
            self._fail(left, error)

    # ------------------------------------------------------------------ map
    def _remote_tasks(self, catdir: str, tasks: list) -> list:
        """Tasks whose partition is pushed and unchanged here since the push."""
        remote = set(pushed_partitions(catdir, self.skytable, [i for i, _ in tasks], self))
        return [(i, t) for i, t in tasks if i in remote]

    def _groups(self, remote: list[tuple[int, object]]) -> list[tuple[Host, list[int], object]]:
        by_host: dict[int, list[int]] = {}
        task_of = {}
        for index, task in remote:
            by_host.setdefault(int(self.skytable.host_id[index]), []).append(index)
            task_of[index] = task
        groups = []
        for hid, indices in by_host.items():
            host = self._host(hid, indices[0])
            conn = max(1, self.cfg.connections_per_host)
            share = max(self.cfg.min_partitions_per_request, -(-len(indices) // conn))
            size = self.cfg.partitions_per_request or min(32, share)
            for k in range(0, len(indices), size):
                chunk = indices[k : k + size]
                groups.append((host, chunk, task_of[chunk[0]]))
        return groups

    def map(self, catdir, tasks, task=None) -> Iterator[tuple[int, object]]:
        """Yield ``(index, result)`` for each ``(index, task)``, in the order given.

        ``map(catdir, indices, task)`` (one task for every index) is accepted too.
        """
        if task is not None:
            tasks = [(i, task) for i in tasks]
        tasks = [(int(i), t) for i, t in tasks]
        self._reset()
        remote = self._remote_tasks(str(catdir), tasks)
        for _, task in remote:
            _remote_op(task)  # refuse tasks the worker cannot run, before connecting
        if len({id(t) for _, t in remote}) > 1:
            raise QueryError("partition hosts run one task per map")
        groups = self._groups(remote)
        clients = self._shared or _Clients(self.cfg)
        completed = False
        per_host: dict[int, threading.Semaphore] = {}
        pool = ThreadPoolExecutor(max(1, min(len(groups), 4 * max(1, len(self.hosts)))))

        def job(host, chunk, task):
            with per_host[host.id]:
                if self._cancel.is_set():
                    return
                try:
                    self._run_group(clients, host, chunk, task)
                except HostError as exc:
                    self._fail(chunk, HostError(exc.reason, host=exc.host or host.label))
                except Exception as exc:  # noqa: BLE001 - hand any failure to the consumer
                    self._fail(chunk, HostError(f"{type(exc).__name__}: {exc}", host=host.label))

        for host in {g[0].id: g[0] for g in groups}.values():
            per_host[host.id] = threading.Semaphore(max(1, self.cfg.connections_per_host))
        try:
            for g in groups:
                pool.submit(job, *g)
            remote_set = self._planned = {i for i, _ in remote}
            for index, task in tasks:
                if index not in remote_set:
                    yield index, task(str(catdir), index)
                    continue
                result = self._wait(index)
                if result is not _MISSING:
                    yield index, result
            self._report_missing()
            completed = True
        finally:
            self._cancel.set()
            if clients is not self._shared:
                pool.shutdown(wait=False, cancel_futures=True)
                clients.close()
            else:  # sessions stay open for the next map, unless this one was cut short
                if not completed:
                    clients.close()
                pool.shutdown(wait=True, cancel_futures=True)

    @property
    def sessions(self) -> _Clients | None:
        """The connections kept open by :meth:`keep_sessions` (None outside it)."""
        return self._shared

    @contextmanager
    def keep_sessions(self):
        """Keep connections and worker sessions open across the maps run inside the block
        (an iterative calibration: one worker process per host and connection for the whole
        run instead of one per pass)."""
        self._shared = _Clients(self.cfg)
        try:
            yield self
        finally:
            shared, self._shared = self._shared, None
            shared.close()

    def _wait(self, index: int):
        with self._cond:
            while index not in self._results and index not in self._failed:
                self._cond.wait(timeout=1.0)
            if index in self._results:
                return self._results.pop(index)
            error = self._failed[index]
            failed = [i for i, e in self._failed.items() if e.host == error.host]
        if not self.cfg.allow_partial:
            hid = int(self.skytable.host_id[index])
            same_host = {i for i in self._planned if self.skytable.host_id[i] == hid}
            lost = sorted((set(failed) | same_host) - self._done)
            names = ", ".join(str(self.skytable.name[i]) for i in lost)
            raise HostError(f"{error.reason}; partitions not read: {names}", host=error.host)
        self.missing.append(f"{self.skytable.name[index]} ({error.host})")
        return _MISSING

    def _report_missing(self) -> None:
        if self.failovers:
            moves = sorted(set(self.failovers.values()))
            warnings.warn(f"read {len(self.failovers)} partitions from backup hosts: "
                          + "; ".join(moves), FailoverWarning, stacklevel=3)  # fmt: skip
        if self.missing:
            warnings.warn(
                f"partial result: {len(self.missing)} partitions missing: "
                + ", ".join(self.missing),
                PartialResultWarning,
                stacklevel=3,
            )


_MISSING = object()


def _remote_op(task) -> tuple[str, dict]:
    """The operation and JSON-able parameters a task runs as on a host."""
    import dataclasses

    from dvo.query.execute import ScanTask
    from dvo.remote import OPS

    if isinstance(task, ScanTask):
        return "scan", {"request": dataclasses.asdict(task.request)}
    if getattr(task, "op", None) in OPS and callable(getattr(task, "params", None)):
        return task.op, task.params()
    raise QueryError(f"{type(task).__name__} tasks cannot run on partition hosts")


def collect_arrays(frames, task, indices: list[int]) -> dict[int, object]:
    """Decode a reply of ``arrays`` messages: ``task``'s result per partition of ``indices``;
    HostError if the worker leaves any out."""
    out, todo, reply = {}, list(indices), ArrayReply(task)
    for kind, payload in frames:
        done = reply.feed(kind, payload, todo)
        if done is not None:
            out[done[0]] = done[1]
            todo.remove(done[0])
    if todo:
        raise HostError(f"worker left out {len(todo)} partitions")
    return out


class ArrayReply:
    """Collects one partition's ``arrays`` message and its Arrow frames (see
    :func:`dvo.hosts.protocol.write_arrays`) and decodes them as the task expects.

    The task names every array it expects with its dtype and rank (``task.expect``); the
    worker's shapes are checked against the data, the values cast to the expected dtype, and
    ``task.decode(index, meta, arrays)`` validates the rest (index ranges, sizes) and builds the
    result. Nothing else is accepted.
    """

    def __init__(self, task) -> None:
        self.task, self.header, self.arrays = task, None, {}

    def feed(self, kind: bytes, payload, todo: list[int]) -> tuple[int, object] | None:
        """Take one frame; returns ``(index, result)`` when a partition is complete."""
        from dvo.hosts.protocol import decode_ndarray

        if self.header is None:
            if kind != b"J" or payload.get("type") != "arrays" or payload.get("index") not in todo:
                raise HostError("worker sent an unexpected message")
            specs, meta = payload.get("arrays"), payload.get("meta")
            if isinstance(meta, dict) and meta.get("none") is True and specs == []:
                return int(payload["index"]), None  # nothing to sum in this partition
            names = [s.get("name") if isinstance(s, dict) else None for s in specs or [0]]
            if not isinstance(specs, list) or names != list(self.task.expect):
                raise HostError("worker sent other arrays than expected")
            self.header, self.arrays = payload, {}
            return None
        if kind != b"A":
            raise HostError("worker sent an unexpected message")
        name = list(self.task.expect)[len(self.arrays)]
        dtype, ndim = self.task.expect[name]
        shape = self.header["arrays"][len(self.arrays)].get("shape")
        if not isinstance(shape, list) or len(shape) != ndim:
            raise HostError(f"worker sent {name} with a wrong rank")
        self.arrays[name] = decode_ndarray(payload, dtype, shape)
        return self._done() if len(self.arrays) == len(self.task.expect) else None

    def _done(self) -> tuple[int, object]:
        header, arrays = self.header, self.arrays
        self.header, self.arrays = None, {}
        meta = header.get("meta")
        if not isinstance(meta, dict):
            raise HostError("worker sent a summary without meta")
        index = int(header["index"])
        return index, self.task.decode(index, meta, arrays)
