"""Two-phase writes of partitions on the hosts that hold them (relphot's and relastro's apply).

A calibration computes its solution here, then every partition is rewritten where it lives:

1. **prepare** (``relphot_prepare`` / ``relastro_prepare``): every holder of a partition (its
   host and, when it has the data, its backup host) reads its copy, rewrites it with the
   solution sent as arrays, and stages the new files under ``.dvo/hosttx/<txid>/files/``
   with a record ``.dvo/hosttx/<txid>/<index>.json`` (the checksums of the staged files and
   the stamps of the files it read). Only small summaries come back (statistics row,
   checksums, the calibration's sums). The replicas' checksums must agree.
2. If any holder fails to prepare, every host is told to abort (its staged files are removed)
   and the local transaction is dropped: the database is exactly as before, and the error
   names the host and its partitions.
3. Otherwise the local transaction commits (Images, the statistics index, the partitions
   held here) together with ``HostWrites.json``, which records the host write as *pending*:
   this is the commit point. Then every holder is told to commit (``txn_commit``): under its
   writer lock it checks that its files did not change since prepare and swaps the staged
   files in with :class:`dvo.transaction.Transaction`'s journal, so a host that dies mid-way
   rolls forward when next opened. Commit is idempotent (a ``<txid>.done.json`` marker).
4. When every holder confirmed, the pending record is cleared. If one did not, the error
   names it and its partitions; ``dvo verify`` lists them as pending and
   :func:`resume_pending` (``dvo hosts resume``, and the next relphot/relastro) finishes the
   write. No partition is ever half written: each is entirely before or entirely after.

``HostWrites.json`` also keeps, per partition rewritten on its hosts, the checksums of the
new host copies: the local copy is then older than the hosts' (``dvo hosts check`` compares
with these, ``dvo hosts push`` refuses to overwrite them, ``dvo hosts pull`` brings them
back).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from dvo import layout
from dvo.errors import HostError
from dvo.hosts.assign import partition_holders
from dvo.hosts.ssh import SshConfig, call
from dvo.hosts.table import Host, hosts_by_id, lookup_host, read_host_table

__all__ = [
    "RECORD",
    "HOSTTX",
    "check_txid",
    "HostStage",
    "stage_partition",
    "commit_prepared",
    "abort_prepared",
    "HostWrite",
    "Prepared",
    "read_record",
    "pending_partitions",
    "resume_pending",
    "stats_arrays",
    "stats_from_arrays",
]

log = logging.getLogger("dvo.hosts")

RECORD = "HostWrites.json"  # pending host write and partitions newer on their hosts
HOSTTX = "hosttx"  # under the database's state folder, on each host
_TXID = re.compile(r"^[0-9a-f]{32}$")


@dataclass
class Prepared:
    """What a holder reports for one staged partition."""

    stats: np.ndarray  # its new statistics-index row
    files: dict  # {relative path: [size, sha256]} of its staged files


def check_txid(value) -> str:
    """A transaction id: 32 lowercase hex digits (it names a folder on the host)."""
    if not isinstance(value, str) or not _TXID.match(value):
        raise HostError(f"bad transaction id {value!r:.40}")
    return value


def _write_json(path: Path, data) -> None:
    """Write JSON atomically and durably (temporary file, fsync, rename, fsync folder)."""
    from dvo.transaction import fsync_dir

    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


# ---------------------------------------------------------------------------------- statistics
def stats_arrays(row: np.ndarray) -> dict[str, np.ndarray]:
    """A statistics-index row as named arrays (for a summary frame)."""
    return {f"stats.{name}": np.asarray(row[name]).reshape(-1) for name in row.dtype.names}


def stats_from_arrays(arrays: dict, nsecfilt: int, index: int) -> np.ndarray:
    """The statistics row of partition ``index`` sent by :func:`stats_arrays`, checked
    against the expected layout and partition."""
    from dvo.stats import stats_dtype

    dtype = stats_dtype(nsecfilt)
    row = np.zeros(1, dtype)
    for name in dtype.names:
        value = np.asarray(arrays[f"stats.{name}"])
        if value.size != max(1, int(np.prod(dtype[name].shape))):
            raise HostError(f"worker sent a statistics row with a bad {name}")
        row[name] = value.reshape(row[name].shape)
    if int(row["INDEX"][0]) != index:
        raise HostError("worker sent the statistics row of another partition")
    return row


def stats_expect(nsecfilt: int) -> dict[str, tuple[str, int]]:
    """The ``expect`` entries of a statistics row (dtype and rank of each array)."""
    from dvo.stats import stats_dtype

    dtype = stats_dtype(nsecfilt)
    return {f"stats.{n}": (dtype[n].base.str, 1) for n in dtype.names}


# ---------------------------------------------------------------------------------- host side
class HostStage:
    """Where a host stages one transaction's new partition files: ``.dvo/hosttx/<txid>/``."""

    def __init__(self, root: str | Path, txid) -> None:
        self.root = Path(root)
        self.txid = check_txid(txid)
        self.dir = layout.state_dir(self.root) / HOSTTX / self.txid

    def stage(self, relpath: str | Path) -> Path:
        """A path to write the new version of ``relpath`` to (``write_partition``'s stage)."""
        rel = PurePosixPath(Path(relpath).as_posix())
        if rel.is_absolute() or ".." in rel.parts:
            raise HostError(f"refusing to stage {relpath!r} outside the database")
        path = self.dir / "files" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def record(self, index: int, name: str, base: dict, written: list[str]) -> dict[str, list]:
        """Make the staged files durable and record them; returns ``{rel: [size, sha256]}``."""
        from dvo.hosts.tasks import sha256_file
        from dvo.transaction import fsync_dir

        files = {}
        for rel in written:
            path = self.dir / "files" / rel
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())
            files[rel] = [path.stat().st_size, sha256_file(path)]
        for folder in {(self.dir / "files" / rel).parent for rel in written}:
            fsync_dir(folder)
        _write_json(self.dir / f"{index}.json",
                    {"index": index, "name": name, "base": base, "files": files})  # fmt: skip
        return files


def stage_partition(db, index: int, stage: HostStage, rewrite) -> tuple[dict, dict]:
    """Phase 1 for one partition on this host: read it, rewrite it, stage and record the files.

    ``rewrite(partition) -> (new partition, meta, arrays)``; returns the summary to send
    (``meta`` plus the staged files' checksums, ``arrays`` plus the statistics row).
    """
    from dvo.hosts.manifest import file_stamps

    name = layout.check_partition_name(str(db.skytable.name[index]))
    with db.reader():
        base = file_stamps(db.catdir, name)
        part = db.partition(int(index))
    new, meta, arrays = rewrite(part)
    return stage_written(db, index, stage, base, new, meta, arrays)


def stage_written(
    db, index: int, stage: HostStage, base: dict, new, meta=None, arrays=None
) -> tuple[dict, dict]:
    """Write partition ``new`` to ``stage`` and record its files against ``base`` (the file
    stamps it replaces); the summary to send, as :func:`stage_partition` returns it."""
    from dvo.partition import write_partition
    from dvo.stats import partition_stats

    name = layout.check_partition_name(str(db.skytable.name[index]))
    sky = db.skytable
    bounds = (sky.r_min[index], sky.r_max[index], sky.d_min[index], sky.d_max[index])
    write_partition(new, stage.stage, compression=db.settings["compression"],
                    tile_rows=int(db.settings["tile_rows"]), bounds=bounds)  # fmt: skip
    written = [
        layout.partition_path("", name, kind).as_posix() for kind in layout.PARTITION_SUFFIXES
    ]
    files = stage.record(int(index), name, base, written)
    return {**(meta or {}), "files": files}, {
        **(arrays or {}),
        **stats_arrays(partition_stats(new)),
    }


def _partition_error(message: str, name: str) -> HostError:
    err = HostError(message)
    err.partitions = [name]
    return err


def commit_prepared(root: str | Path, txid: str, parts: list[tuple[int, str]]) -> dict[int, str]:
    """Phase 2 on this host: swap in the staged files of ``parts`` in one journaled commit.

    Idempotent: partitions already committed by this transaction are reported as such.

    Raises
    ------
    HostError
        Nothing prepared for a partition, or its files changed since they were prepared.
    """
    from dvo.hosts.manifest import file_stamps
    from dvo.hosts.tasks import file_checksums
    from dvo.transaction import Transaction, writer_lock

    root = Path(root)
    base = layout.state_dir(root) / HOSTTX
    tdir, done_path = base / check_txid(txid), base / f"{txid}.done.json"
    with writer_lock(root, timeout=60):
        done = json.loads(done_path.read_text()) if done_path.is_file() else {}
        staged, records = {}, []
        for index, name in parts:
            if done.get(str(index)) == name:
                continue
            rec_path = tdir / f"{index}.json"
            if not rec_path.is_file():
                raise _partition_error(f"nothing prepared for {name} in write {txid}", name)
            rec = json.loads(rec_path.read_text())
            files = rec.get("files") or {}
            own = {
                p.relative_to(root).as_posix() for p in layout.partition_files(root, name).values()
            }
            if rec.get("name") != name or not files or not set(files) <= own:
                raise _partition_error(f"the prepared record of {name} is not valid", name)
            paths = {rel: tdir / "files" / rel for rel in files}
            if all(p.is_file() for p in paths.values()):
                if file_stamps(root, name) != rec.get("base"):
                    raise _partition_error(f"{name} changed on this host since prepare", name)
                staged.update(paths)
            elif file_checksums(root, name) != files:  # else: an interrupted commit renamed them
                raise _partition_error(f"the staged files of {name} are missing", name)
            records.append((index, name, rec_path))
        if staged:
            tx = Transaction(root)
            tx.staged = dict(staged)  # the journal and renames of a local commit
            tx.commit()
        done.update({str(index): name for index, name, _ in records})
        base.mkdir(parents=True, exist_ok=True)
        _write_json(done_path, done)
        for _, _, rec_path in records:
            rec_path.unlink()
        if tdir.is_dir() and not any(tdir.glob("*.json")):
            shutil.rmtree(tdir, ignore_errors=True)
    return {index: "committed" for index, _ in parts}


def abort_prepared(root: str | Path, txid: str) -> None:
    """Drop what this host staged for ``txid`` (partitions already committed stay)."""
    tdir = layout.state_dir(Path(root)) / HOSTTX / check_txid(txid)
    shutil.rmtree(tdir, ignore_errors=True)


# ---------------------------------------------------------------------------------- records
def read_record(catdir: str | Path) -> dict:
    """``HostWrites.json``: ``{"pending": {...} | None, "rewritten": {name: checksums}}``."""
    path = Path(catdir) / RECORD
    out = {"pending": None, "rewritten": {}}
    if path.is_file():
        try:
            data = json.loads(path.read_text())
        except ValueError:
            raise HostError(f"{path}: not valid JSON") from None
        if isinstance(data, dict):
            out.update({k: data[k] for k in ("pending", "rewritten") if k in data})
    return out


def pending_partitions(catdir: str | Path) -> dict[str, list[int]]:
    """Partitions of an unfinished host write: ``{name: [host ids not confirmed]}``."""
    pending = read_record(catdir)["pending"] or {}
    out: dict[str, list[int]] = {}
    for hid, names in (pending.get("hosts") or {}).items():
        for name in names:
            out.setdefault(name, []).append(int(hid))
    return out


# ---------------------------------------------------------------------------------- client side
class HostWrite:
    """The client side of one two-phase write on partition hosts (see the module docstring).

    Parameters
    ----------
    db : Database
    config : SshConfig, optional
    op : str
        What writes ("relphot", "relastro"), for the record and the messages.
    sessions : optional
        The open worker sessions of the run's :class:`~dvo.hosts.executor.HostExecutor`
        (``executor.sessions``), reused instead of starting new workers.
    """

    def __init__(
        self, db, config: SshConfig | None = None, *, op: str = "write", sessions=None
    ) -> None:
        from dvo.hosts.executor import current_config

        self.db, self.cfg, self.op = db, config or current_config(), op
        self.sessions = sessions  # open worker sessions to reuse (HostExecutor.sessions)
        self.txid = uuid.uuid4().hex
        self.hosts = hosts_by_id(read_host_table(db.catdir))
        self.holders: dict[int, list[int]] = {}  # host id -> partitions it prepared
        self.files: dict[int, dict] = {}  # partition -> checksums of its new host copy

    def remote(self, indices) -> list[int]:
        """The partitions among ``indices`` whose write happens on their hosts."""
        from dvo.hosts.executor import pushed_partitions

        return pushed_partitions(self.db.catdir, self.db.skytable, indices)

    def _host(self, hid: int) -> Host:
        return lookup_host(self.hosts, hid)

    def _name(self, index: int) -> str:
        return str(self.db.skytable.name[index])

    def _chunks(self, indices: list[int]) -> list[list[int]]:
        size = self.cfg.partitions_per_request or 32
        return [indices[k : k + size] for k in range(0, len(indices), size)]

    # ---------------------------------------------------------------- phase 1
    def _prepare_chunk(self, clients, host: Host, chunk: list[int], task) -> dict[int, object]:
        """Ask ``host`` to prepare ``chunk``; returns the decoded summaries (retried once)."""
        from dvo.hosts.executor import collect_arrays

        message = {"op": task.op, "catdir": host.path, "txid": self.txid, **task.params(),
                   "partitions": [{"index": i, "name": self._name(i)} for i in chunk]}  # fmt: skip
        last = None
        for _ in range(1 + max(0, self.cfg.retries)):
            try:
                session = clients.session(host, chunk[0])  # the worker that has its cache
                try:
                    return collect_arrays(session.request(message), task, chunk)
                finally:
                    clients.release(host, session, chunk[0])
            except HostError as exc:
                last = HostError(exc.reason, host=host.label)
                last.partitions = [self._name(i) for i in chunk]
                clients.drop(host)
                if getattr(exc, "code", None) in ("version", "request", "partition"):
                    break
        raise last

    def prepare(self, task, indices: list[int]) -> dict[int, object]:
        """Phase 1 on every holder of ``indices``; returns each partition's summary.

        Raises
        ------
        HostError
            A holder failed (named, with its partitions); every host was told to abort.
        """
        from dvo.hosts.executor import _Clients

        for i in indices:
            for hid in partition_holders(self.db.skytable, i):
                self.holders.setdefault(hid, []).append(int(i))
        jobs = [(self._host(h), c) for h, idx in self.holders.items() for c in self._chunks(idx)]
        clients = self.sessions or _Clients(self.cfg)
        results: dict[tuple[int, int], object] = {}
        errors: list[HostError] = []
        conn = max(1, self.cfg.connections_per_host)
        per_host = {h: threading.Semaphore(conn) for h in self.holders}

        def job(host: Host, chunk: list[int]) -> None:
            try:
                with per_host[host.id]:
                    for i, res in self._prepare_chunk(clients, host, chunk, task).items():
                        results[(host.id, i)] = res
            except HostError as exc:
                errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - reported with the host's name
                errors.append(HostError(f"{type(exc).__name__}: {exc}", host=host.label))

        try:
            with ThreadPoolExecutor(max(1, min(len(jobs), conn * len(self.holders)))) as pool:
                list(pool.map(lambda j: job(*j), jobs))
        finally:
            if clients is not self.sessions:
                clients.close()
        if not errors:
            errors = self._check_replicas(results, indices)
        if errors:
            self.abort()
            raise _combined(errors, f"{self.op}: nothing was written")
        out = {}
        for i in indices:
            out[int(i)] = results[(int(self.db.skytable.host_id[i]), int(i))]
            self.files[int(i)] = out[int(i)].files
        return out

    def _check_replicas(self, results: dict, indices) -> list[HostError]:
        """Backups must have staged exactly the files their primary staged."""
        st, errors = self.db.skytable, []
        for (hid, i), res in results.items():
            primary = results.get((int(st.host_id[i]), i))
            if primary is not None and hid != st.host_id[i] and res.files != primary.files:
                err = HostError(f"its copy of {self._name(i)} differs from the primary's",
                                host=self._host(hid).label)  # fmt: skip
                err.partitions = [self._name(i)]
                errors.append(err)
        return errors

    def abort(self) -> None:
        """Tell every holder to drop what it staged (best effort: staged files are inert)."""

        def job(hid: int, indices: list[int]) -> None:
            try:
                self._send(self._host(hid), "txn_abort", indices)
            except HostError as exc:
                log.warning("could not abort %s write %s: %s", self.op, self.txid, exc)

        with ThreadPoolExecutor(max(1, len(self.holders))) as pool:
            list(pool.map(lambda h: job(*h), self.holders.items()))

    # ---------------------------------------------------------------- phase 2
    def stage_decision(self, tx) -> None:
        """Stage ``HostWrites.json`` recording this write as pending (the commit point)."""
        rec = read_record(self.db.catdir)
        if rec["pending"]:
            raise HostError("another host write is pending; run dvo hosts resume first")
        rec["pending"] = {
            "txid": self.txid,
            "op": self.op,
            "hosts": {str(h): [self._name(i) for i in idx] for h, idx in self.holders.items()},
            "index": {self._name(i): i for idx in self.holders.values() for i in idx},
        }
        rec["rewritten"].update({self._name(i): f for i, f in self.files.items()})
        tx.stage(RECORD).write_text(json.dumps(rec))

    def _send(self, host: Host, op: str, indices: list[int]) -> None:
        """One ``txn_commit`` / ``txn_abort`` request; every partition must be confirmed."""
        from dvo.hosts.ssh import connect

        parts = [{"index": i, "name": self._name(i)} for i in indices]
        message = {"op": op, "catdir": host.path, "txid": self.txid, "partitions": parts}
        if self.sessions is not None:
            session = None
            try:
                session = self.sessions.session(host)
                frames = list(session.request(message))
            except HostError:
                self.sessions.drop(host)
                raise
            finally:
                if session is not None:
                    self.sessions.release(host, session)
        else:
            client = connect(host, self.cfg)
            try:
                frames = list(call(client, host, message, self.cfg))
            finally:
                client.close()
        states = {}
        for kind, payload in frames:
            if kind != b"J" or payload.get("type") != "summary":
                raise HostError("worker sent an unexpected message", host=host.label)
            states[payload.get("index")] = (payload.get("data") or {}).get("state")
        confirmed = sorted(k for k, v in states.items() if v in ("committed", "aborted"))
        if confirmed != sorted(indices):
            raise HostError("worker did not confirm every partition", host=host.label)

    def _commit_host(self, host: Host, indices: list[int]) -> None:
        """Phase 2 on one host (retried once: commit is idempotent)."""
        last = None
        for _ in range(1 + max(0, self.cfg.retries)):
            try:
                self._send(host, "txn_commit", indices)
                return
            except HostError as exc:
                last = exc
        raise last

    def commit(self) -> None:
        """Phase 2 on every holder, after the local commit; clears the pending record.

        Raises
        ------
        HostError
            A holder did not confirm: its partitions stay pending (named in the message).
        """
        hosts = [(self._host(h), idx) for h, idx in self.holders.items()]
        failed: dict[int, HostError] = {}

        def job(host: Host, indices: list[int]) -> None:
            try:
                self._commit_host(host, indices)
            except HostError as exc:
                failed[host.id] = exc
            except Exception as exc:  # noqa: BLE001 - reported with the host's name
                failed[host.id] = HostError(f"{type(exc).__name__}: {exc}", host=host.label)

        with ThreadPoolExecutor(max(1, len(hosts))) as pool:
            list(pool.map(lambda j: job(*j), hosts))
        self._settle(set(failed))
        if failed:
            errors = []
            for hid, exc in failed.items():
                err = HostError(exc.reason, host=exc.host or self._host(hid).label)
                err.partitions = [self._name(i) for i in self.holders[hid]]
                errors.append(err)
            raise _combined(errors, f"{self.op} is committed here and on the other hosts but "
                            "pending there; run dvo hosts resume -D DIR to finish it")  # fmt: skip

    def _settle(self, failed: set[int]) -> None:
        """Record which holders still have to commit (none: the write is finished)."""
        from dvo.transaction import Transaction

        rec = read_record(self.db.catdir)
        pending = rec["pending"]
        if not pending or pending.get("txid") != self.txid:
            return
        pending["hosts"] = {h: n for h, n in pending["hosts"].items() if int(h) in failed}
        rec["pending"] = pending if pending["hosts"] else None
        with Transaction(self.db.catdir) as tx:
            tx.stage(RECORD).write_text(json.dumps(rec))


def _combined(errors: list[HostError], what: str) -> HostError:
    """One error naming every failed host and its partitions."""
    parts = []
    for e in errors:
        names = getattr(e, "partitions", []) or []
        shown = ", ".join(names[:10]) + (f" (+{len(names) - 10})" if len(names) > 10 else "")
        parts.append(f"{e.reason}" + (f"; partitions: {shown}" if shown else ""))
    err = HostError(f"{'; '.join(parts)} ({what})", host=errors[0].host)
    err.partitions = [n for e in errors for n in getattr(e, "partitions", []) or []]
    err.hosts = sorted({e.host for e in errors if e.host})
    return err


def resume_pending(db, config: SshConfig | None = None) -> int:
    """Finish an interrupted host write; returns the number of partitions committed.

    The caller holds the writer lock.

    Raises
    ------
    HostError
        A holder still cannot commit (named); the write stays pending.
    """
    rec = read_record(db.catdir)
    pending = rec["pending"]
    if not pending:
        return 0
    write = HostWrite(db, config, op=str(pending.get("op", "write")))
    write.txid = check_txid(pending.get("txid"))
    index = pending.get("index") or {}
    names = {str(n): i for i, n in enumerate(db.skytable.name)}
    for hid, plist in (pending.get("hosts") or {}).items():
        idx = [int(index.get(n, names.get(n, -1))) for n in plist]
        if min(idx, default=0) < 0 or any(
            str(db.skytable.name[i]) != n for i, n in zip(idx, plist, strict=True)
        ):
            raise HostError(f"{RECORD}: unknown partitions in the pending write")
        write.holders[int(hid)] = idx
    count = sum(len(v) for v in write.holders.values())
    write.commit()
    return count
