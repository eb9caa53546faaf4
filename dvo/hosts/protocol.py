"""The wire format between a dvo client and ``python -m dvo.remote`` on a partition host.

Request: one JSON object on the worker's stdin (never on its command line)::

    {"version": "0.1.0", "protocol": 1, "op": "scan" | "verify" | "checksums",
     "catdir": "/data/db", "partitions": [{"index": 5492, "name": "n0000/0007"}, ...],
     "request": {...}}          # a ScanRequest as a dict, for "scan"

Reply: a sequence of frames on stdout, each ``kind`` (1 byte) + ``length`` (4 bytes,
big-endian) + payload. Kind ``J`` is a JSON message: ``hello`` (versions), ``result`` (the
next frame holds the partition's rows), ``summary`` (a small JSON result of one partition),
``error`` (a structured error: ``code``, ``message``, ``partitions``) or ``end``. Kind ``A`` is
one Arrow IPC stream (zstd-compressed record batches) holding one partition's rows.

The client decodes Arrow data into the dtype *it* expects for the request (it never takes a
type from the wire), checks names and row counts, and never evaluates anything it receives.

Examples
--------
>>> import io
>>> buf = io.BytesIO()
>>> write_message(buf, {"type": "end"})
>>> read_frame(io.BytesIO(buf.getvalue()))
(b'J', {'type': 'end'})
"""

from __future__ import annotations

import json
import struct
from functools import lru_cache
from typing import IO, Any

import numpy as np

from dvo.errors import HostError

__all__ = [
    "PROTOCOL",
    "dvo_version",
    "write_message",
    "write_array",
    "read_frame",
    "encode_array",
    "decode_array",
]

PROTOCOL = 1
MAX_JSON = 64 << 20  # bytes; requests and summaries are small
MAX_ARROW = 1 << 31
_HEADER = struct.Struct(">cI")


@lru_cache(maxsize=1)
def dvo_version() -> str:
    """The installed dvo version (client and worker must agree)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dvo")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "unknown"


def _write_frame(out: IO[bytes], kind: bytes, payload: bytes) -> None:
    out.write(_HEADER.pack(kind, len(payload)))
    out.write(payload)
    out.flush()


def write_message(out: IO[bytes], message: dict) -> None:
    """Write one JSON message frame."""
    _write_frame(out, b"J", json.dumps(message).encode())


def encode_array(arr: np.ndarray) -> bytes:
    """A numpy structured array as one Arrow IPC stream with zstd-compressed batches."""
    import pyarrow as pa

    table = pa.table({name: pa.array(arr[name]) for name in arr.dtype.names})
    sink = pa.BufferOutputStream()
    options = pa.ipc.IpcWriteOptions(compression="zstd")
    with pa.ipc.new_stream(sink, table.schema, options=options) as writer:
        writer.write_table(table, max_chunksize=1 << 16)
    return sink.getvalue().to_pybytes()


def write_array(out: IO[bytes], arr: np.ndarray) -> None:
    """Write one Arrow frame holding ``arr``."""
    _write_frame(out, b"A", encode_array(arr))


def decode_array(payload: bytes, dtype: np.dtype) -> np.ndarray:
    """Rows of an Arrow frame cast into the expected ``dtype`` (names must match exactly).

    Raises
    ------
    HostError
        Malformed Arrow data, or columns other than those expected.
    """
    import pyarrow as pa

    try:
        table = pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise HostError(f"malformed Arrow data from worker ({exc})") from None
    if tuple(table.column_names) != tuple(dtype.names):
        raise HostError(f"worker sent columns {table.column_names}, expected {list(dtype.names)}")
    out = np.empty(table.num_rows, dtype)
    for name in dtype.names:
        values = table.column(name).to_numpy(zero_copy_only=False)
        out[name] = values.astype(dtype[name], copy=False)
    return out


def _read_exact(stream: IO[bytes], n: int) -> bytes:
    chunks, left = [], n
    while left:
        chunk = stream.read(left)
        if not chunk:
            raise HostError(f"worker output ended early ({n - left} of {n} bytes)")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def read_frame(stream: IO[bytes]) -> tuple[bytes, Any]:
    """The next frame: ``(b"J", dict)`` or ``(b"A", bytes)``.

    Raises
    ------
    HostError
        Truncated output, an unknown frame kind, an oversized frame or invalid JSON.
    """
    kind, length = _HEADER.unpack(_read_exact(stream, _HEADER.size))
    if kind not in (b"J", b"A"):
        raise HostError(f"worker sent an unknown frame kind {kind!r}")
    if length > (MAX_JSON if kind == b"J" else MAX_ARROW):
        raise HostError(f"worker sent an oversized frame ({length} bytes)")
    payload = _read_exact(stream, length)
    if kind == b"A":
        return kind, payload
    try:
        message = json.loads(payload)
    except ValueError:
        raise HostError("worker sent invalid JSON") from None
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise HostError("worker sent a message without a type")
    return kind, message
