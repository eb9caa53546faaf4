"""The partition-host worker: ``python -m dvo.remote``, started over SSH by a dvo client.

It reads one JSON request on stdin, validates it completely (versions, operation, database
path, every partition name and index against the local SkyTable, every file path under the
partition root), runs the operation with the local engine functions and writes frames on
stdout (see :mod:`dvo.hosts.protocol`). Errors are structured messages, never tracebacks::

    {"type": "error", "code": "version" | "request" | "partition" | "internal",
     "message": "...", "partitions": ["n0000/0007"]}

Operations: ``scan`` (:func:`dvo.query.scan.scan_partition`, rows as Arrow), ``verify``
(:func:`dvo.verify.verify_partition`, violations as JSON) and ``checksums`` (size and SHA-256
of each partition file). Nothing from the request is executed or passed to a shell.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import IO

from dvo import layout
from dvo.errors import DvoError
from dvo.hosts.protocol import PROTOCOL, dvo_version, write_array, write_message

__all__ = ["main", "serve", "WorkerError"]

MAX_REQUEST = 256 << 20
OPS = ("scan", "verify", "checksums")


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


def serve(stdin: IO[bytes], out: IO[bytes]) -> int:
    """Answer one request; returns the exit status (0, or 1 after an error message)."""
    write_message(out, {"type": "hello", "version": dvo_version(), "protocol": PROTOCOL})
    try:
        text = stdin.read(MAX_REQUEST + 1)
        if len(text) > MAX_REQUEST:
            raise WorkerError("request", "request too large")
        req, root, parts = parse_request(text)
        (_scan if req["op"] == "scan" else _summaries)(out, req, root, parts)
    except WorkerError as exc:
        write_message(out, {"type": "error", "code": exc.code, "message": exc.message,
                            "partitions": exc.partitions})  # fmt: skip
        return 1
    except (DvoError, OSError) as exc:
        message = f"{type(exc).__name__}: {exc}"
        write_message(out, {"type": "error", "code": "internal", "message": message,
                            "partitions": []})  # fmt: skip
        return 1
    write_message(out, {"type": "end"})
    return 0


def main() -> int:
    """Entry point of ``python -m dvo.remote``."""
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    sys.exit(main())
