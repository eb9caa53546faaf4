"""The partition-host worker: ``python -m dvo.remote``, started over SSH by a dvo client.

It reads one JSON request on stdin, validates it completely (versions, operation, database
path, every partition name and index against the local SkyTable, every file path under the
partition root), runs the operation with the local engine functions and writes frames on
stdout (see :mod:`dvo.hosts.protocol`). Errors are structured messages, never tracebacks::

    {"type": "error", "code": "version" | "request" | "partition" | "internal",
     "message": "...", "partitions": ["n0000/0007"]}

Operations: ``scan`` (:func:`dvo.query.scan.scan_partition`, rows as Arrow), ``verify``
(:func:`dvo.verify.verify_partition`, violations as JSON), ``checksums`` (size and SHA-256
of each partition file); the calibration passes ``relphot_pass`` / ``relastro_pass`` (one
partition's summary arrays: normal equations, per-image or per-chip sums, counts); the first
phase of a calibration's write, ``relphot_prepare`` / ``relastro_prepare`` (the new partition
files staged under ``.dvo/hosttx/<txid>/``, see :mod:`dvo.hosts.twophase`), and its second
phase ``txn_commit`` / ``txn_abort``; ``crossmatch`` (one partition's matches of the input
rows sent, :mod:`dvo.query.crossmatch_remote`). The calibration tasks are fixed classes
looked up by operation name; their parameters are arrays and numbers, each validated by the task's
``from_request`` before any partition is read. Nothing from the request is executed or
passed to a shell.
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path
from typing import IO

from dvo import layout
from dvo.errors import CalibrationError, DvoError, HostError
from dvo.hosts.protocol import PROTOCOL, dvo_version, write_array, write_arrays, write_message

__all__ = ["main", "serve", "WorkerError"]

MAX_REQUEST = 256 << 20
#: calibration tasks by operation name: (module, class), never taken from a request
TASKS = {
    "relphot_pass": ("dvo.relphot.remote", "PassTask"),
    "relphot_prepare": ("dvo.relphot.remote", "PrepareTask"),
    "relastro_pass": ("dvo.relastro.remote", "PassTask"),
    "relastro_prepare": ("dvo.relastro.remote", "PrepareTask"),
    "addstar_open": ("dvo.ingest_remote", "OpenTask"),
    "addstar_apply": ("dvo.ingest_remote", "ApplyTask"),
    "addstar_prepare": ("dvo.ingest_remote", "PrepareTask"),
    "crossmatch": ("dvo.query.crossmatch_remote", "MatchHostTask"),
}
TXN_OPS = ("txn_commit", "txn_abort")
OPS = ("scan", "verify", "checksums", *TASKS, *TXN_OPS)


class WorkerError(DvoError):
    """A request the worker refuses or cannot complete (sent back as a structured error)."""

    def __init__(self, code: str, message: str, partitions: list[str] | None = None) -> None:
        self.code, self.message, self.partitions = code, message, partitions or []
        super().__init__(message)


def _check_catdir(value) -> Path:
    from dvo.hosts.table import check_path

    try:
        root = Path(check_path(value, "catdir")).resolve()
    except (DvoError, TypeError) as exc:
        raise WorkerError("request", str(exc)) from None
    if not (root / layout.SETTINGS).is_file():
        raise WorkerError("request", f"{value}: not a dvo database on this host")
    return root


def _check_partitions(root: Path, items, names) -> list[tuple[int, str]]:
    """Validate ``[{"index": i, "name": n}, ...]`` against the local SkyTable."""
    if not isinstance(items, list):
        raise WorkerError("request", "partitions must be a list")
    out = []
    for item in items:
        index, name = (item.get("index"), item.get("name")) if isinstance(item, dict) else (0, 0)
        try:
            layout.check_partition_name(name)
        except DvoError as exc:
            raise WorkerError("request", str(exc), [repr(name)]) from None
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(names):
            raise WorkerError("request", f"bad partition index {index!r}", [name])
        if str(names[index]) != name:
            raise WorkerError("partition", f"index {index} is {names[index]!r} here", [name])
        for path in layout.partition_files(root, name).values():
            if not path.resolve().is_relative_to(root):
                raise WorkerError("request", "partition path escapes the root", [name])
        out.append((index, name))
    return out


def parse_request(text: bytes) -> tuple[dict, Path, list[tuple[int, str]]]:
    """Validate a request; returns (request, database root, [(index, name)])."""
    try:
        req = json.loads(text)
    except ValueError:
        raise WorkerError("request", "request is not valid JSON") from None
    if not isinstance(req, dict):
        raise WorkerError("request", "request must be a JSON object")
    if req.get("version") != dvo_version() or req.get("protocol") != PROTOCOL:
        raise WorkerError(
            "version",
            f"client dvo {req.get('version')} (protocol {req.get('protocol')}) but worker "
            f"dvo {dvo_version()} (protocol {PROTOCOL})",
        )
    if req.get("op") not in OPS:
        raise WorkerError("request", f"unknown operation {req.get('op')!r}")
    root = _check_catdir(req.get("catdir"))
    from dvo.skytable import SkyTable

    names = SkyTable.read(root / layout.SKYTABLE).name
    return req, root, _check_partitions(root, req.get("partitions"), names)


def _scan(out: IO[bytes], req: dict, root: Path, parts) -> None:
    from dvo.query.scan import ScanRequest, scan_partition

    try:
        scan = ScanRequest.from_json(json.dumps(req.get("request")))
    except (TypeError, KeyError, ValueError, AttributeError) as exc:
        raise WorkerError("request", f"bad scan request ({exc})") from None
    for index, name in parts:
        try:
            rows = scan_partition(str(root), index, scan)
        except DvoError as exc:
            raise WorkerError("partition", str(exc), [name]) from None
        write_message(out, {"type": "result", "index": index, "rows": len(rows)})
        write_array(out, rows)


def _summaries(out: IO[bytes], req: dict, root: Path, parts) -> None:
    from dvo.hosts.tasks import ChecksumTask, VerifyTask

    task = VerifyTask(bool(req.get("checksums", True))) if req["op"] == "verify" else ChecksumTask()
    for index, _ in parts:
        write_message(out, {"type": "summary", "index": index, "data": task(str(root), index)})


def _arrays(out: IO[bytes], req: dict, root: Path, parts) -> None:
    """A calibration task: one ``arrays`` summary per partition."""
    from dvo.database import open_database

    module, name = TASKS[req["op"]]
    try:
        task = getattr(import_module(module), name).from_request(req)
    except (HostError, CalibrationError, TypeError, ValueError, KeyError) as exc:
        raise WorkerError("request", f"bad {req['op']} request ({exc})") from None
    db = open_database(root)
    stage = None
    if getattr(task, "stages", False):
        from dvo.hosts.twophase import HostStage

        try:
            stage = HostStage(root, req.get("txid"))
        except HostError as exc:
            raise WorkerError("request", str(exc)) from None
    for index, pname in parts:
        try:
            result = task.remote(db, index, stage)
        except DvoError as exc:
            raise WorkerError("partition", str(exc), [pname]) from None
        if result is None:
            write_arrays(out, index, {"none": True}, {})
        else:
            write_arrays(out, index, *result)


def _txn(out: IO[bytes], req: dict, root: Path, parts) -> None:
    """Second phase of a host write: commit or abort what ``*_prepare`` staged."""
    from dvo.hosts.twophase import abort_prepared, check_txid, commit_prepared

    try:
        txid = check_txid(req.get("txid"))
    except HostError as exc:
        raise WorkerError("request", str(exc)) from None
    if req["op"] == "txn_abort":
        abort_prepared(root, txid)
        states = {index: "aborted" for index, _ in parts}
    else:
        try:
            states = commit_prepared(root, txid, parts)
        except HostError as exc:
            raise WorkerError("partition", exc.reason, getattr(exc, "partitions", [])) from None
    for index, _ in parts:
        write_message(out, {"type": "summary", "index": index, "data": {"state": states[index]}})


def serve(stdin: IO[bytes], out: IO[bytes]) -> int:
    """Answer one request, or a session of framed requests (see :mod:`dvo.hosts.protocol`);
    returns the exit status (0, or 1 after an error message)."""
    from dvo.hosts.protocol import read_request

    write_message(out, {"type": "hello", "version": dvo_version(), "protocol": PROTOCOL})
    first = stdin.read(1)
    if first != b"J":  # one request, up to the end of input
        return _answer(lambda: first + stdin.read(MAX_REQUEST + 1 - len(first)), out)
    status = 0
    while first:
        try:
            text = read_request(stdin, MAX_REQUEST, first)
        except HostError as exc:
            _error(out, "request", exc.reason)
            return 1
        status = max(status, _answer(lambda t=text: t, out))
        first = stdin.read(1)
    return status


def _error(out: IO[bytes], code: str, message: str, partitions: list | None = None) -> None:
    write_message(out, {"type": "error", "code": code, "message": message,
                        "partitions": partitions or []})  # fmt: skip


def _answer(read, out: IO[bytes]) -> int:
    """Answer the request ``read()`` returns; 0, or 1 after an error message."""
    try:
        text = read()
        if len(text) > MAX_REQUEST:
            raise WorkerError("request", "request too large")
        req, root, parts = parse_request(text)
        op = req["op"]
        if op == "scan":
            _scan(out, req, root, parts)
        elif op in TASKS:
            _arrays(out, req, root, parts)
        elif op in TXN_OPS:
            _txn(out, req, root, parts)
        else:
            _summaries(out, req, root, parts)
    except WorkerError as exc:
        _error(out, exc.code, exc.message, exc.partitions)
        return 1
    except (DvoError, OSError) as exc:
        _error(out, "internal", f"{type(exc).__name__}: {exc}")
        return 1
    write_message(out, {"type": "end"})
    return 0


def main() -> int:
    """Entry point of ``python -m dvo.remote``."""
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
