"""The wire format between a dvo client and ``python -m dvo.remote`` on a partition host.

Request: one JSON object on the worker's stdin (never on its command line), either alone
until end of input, or as a session of several requests, each one ``J`` frame (below), each
answered in full before the next is read; the worker exits at end of input::

    {"version": "0.1.0", "protocol": 2, "op": "scan" | "verify" | "checksums" | ...,
     "catdir": "/data/db", "partitions": [{"index": 5492, "name": "n0000/0007"}, ...],
     "request": {...}}          # a ScanRequest as a dict, for "scan"

Numeric parameters (a calibration's current zero points, chip coefficients, ...) travel as
packed arrays (:func:`pack_array`: dtype string, shape, base64 of the little-endian bytes);
the worker unpacks each into the dtype and shape *it* expects (:func:`unpack_array`).

Reply: a sequence of frames on stdout, each ``kind`` (1 byte) + ``length`` (4 bytes,
big-endian) + payload. Kind ``J`` is a JSON message: ``hello`` (versions), ``result`` (the
next frame holds the partition's rows), ``summary`` (a small JSON result of one partition),
``arrays`` (a partition's summary arrays: ``meta`` (small JSON) and ``arrays`` (name and
shape of each), followed by one ``A`` frame per array, :func:`write_arrays`), ``error`` (a
structured error: ``code``, ``message``, ``partitions``) or ``end``. Kind ``A`` is one Arrow
IPC stream (zstd-compressed record batches) holding one partition's rows or one array.

The client decodes Arrow data into the dtype *it* expects for the request (it never takes a
type from the wire), checks names, shapes and row counts, and never evaluates anything it
receives.

Examples
--------
>>> import io
>>> buf = io.BytesIO()
>>> write_message(buf, {"type": "end"})
>>> read_frame(io.BytesIO(buf.getvalue()))
(b'J', {'type': 'end'})
>>> unpack_array(pack_array(np.arange(3.0)), "f8", "theta").tolist()
[0.0, 1.0, 2.0]
"""

from __future__ import annotations

import base64
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
    "pack_array",
    "unpack_array",
    "write_arrays",
    "decode_ndarray",
    "frame",
    "read_request",
]

PROTOCOL = 2
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


def frame(kind: bytes, payload: bytes) -> bytes:
    """One frame: kind, big-endian length, payload."""
    return _HEADER.pack(kind, len(payload)) + payload


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


def pack_array(arr: np.ndarray) -> dict:
    """A numeric array as JSON: ``{"dtype", "shape", "data"}`` (little-endian bytes, base64)."""
    a = np.asarray(arr)
    a = a.astype(a.dtype.newbyteorder("<"), copy=False)
    if a.dtype.kind not in "biuf":
        raise HostError(f"cannot pack arrays of dtype {a.dtype}")
    data = base64.b64encode(np.ascontiguousarray(a).tobytes()).decode("ascii")
    return {"dtype": a.dtype.str, "shape": list(a.shape), "data": data}


def unpack_array(obj, dtype, name: str, *, ndim: int = 1, max_items: int = 1 << 28) -> np.ndarray:
    """The array packed in ``obj``, which must have exactly ``dtype`` and ``ndim`` dimensions.

    Raises
    ------
    HostError
        Not a packed array, another dtype or rank, a negative or huge shape, or a byte count
        that does not match the shape.
    """
    want = np.dtype(dtype).newbyteorder("<")
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise HostError(f"{name}: not a packed array")
    shape = obj["shape"]
    if obj["dtype"] != want.str:
        raise HostError(f"{name}: dtype {obj['dtype']!r}, expected {want.str!r}")
    if not isinstance(shape, list) or len(shape) != ndim:
        raise HostError(f"{name}: shape must have {ndim} dimensions")
    if not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape):
        raise HostError(f"{name}: bad shape {shape!r}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count > max_items or not isinstance(obj["data"], str):
        raise HostError(f"{name}: too large or malformed")
    try:
        raw = base64.b64decode(obj["data"].encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raise HostError(f"{name}: data is not base64") from None
    if len(raw) != count * want.itemsize:
        raise HostError(f"{name}: {len(raw)} bytes for shape {shape}")
    return np.frombuffer(raw, want).reshape(shape).astype(want.newbyteorder("="))


def write_arrays(out: IO[bytes], index: int, meta: dict, arrays: dict[str, np.ndarray]) -> None:
    """One partition's summary: an ``arrays`` message, then one Arrow frame per array."""
    names = list(arrays)
    shapes = [list(np.shape(arrays[n])) for n in names]
    specs = [{"name": n, "shape": s} for n, s in zip(names, shapes, strict=True)]
    header = {"type": "arrays", "index": index, "meta": meta, "arrays": specs}
    write_message(out, header)
    for n in names:
        flat = np.ascontiguousarray(arrays[n]).reshape(-1)
        write_array(out, np.rec.fromarrays([flat], names=["v"]))


def decode_ndarray(payload: bytes, dtype, shape) -> np.ndarray:
    """An array frame of :func:`write_arrays` as ``dtype`` with the announced ``shape``.

    Raises
    ------
    HostError
        Malformed data, or a number of values other than the shape holds.
    """
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise HostError(f"worker sent a bad array shape {shape!r:.60}")
    flat = decode_array(payload, np.dtype([("v", dtype)]))["v"]
    if len(flat) != int(np.prod(shape, dtype=np.int64)):
        raise HostError(f"worker sent {len(flat)} values for shape {shape}")
    return flat.reshape(shape)


def read_request(stream: IO[bytes], limit: int, head: bytes = b"") -> bytes | None:
    """The next framed request of a session (None at end of input); ``head`` holds bytes
    of it already read.

    Raises
    ------
    HostError
        A truncated frame, another kind than ``J``, or more than ``limit`` bytes.
    """
    head += stream.read(_HEADER.size - len(head))
    if not head:
        return None
    if len(head) < _HEADER.size:
        head += _read_exact(stream, _HEADER.size - len(head))
    kind, length = _HEADER.unpack(head)
    if kind != b"J" or length > limit:
        raise HostError("bad request frame")
    return _read_exact(stream, length)
