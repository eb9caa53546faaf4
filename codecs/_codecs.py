"""One class per tile compression algorithm, keyed by ZCMPTYPE in :data:`ALGORITHMS`.

``encode(values)`` takes the flat, native-endian storage elements of one column of one tile
and returns the compressed bytes; ``decode(buf, dtype=, count=)`` inverts it and returns a
flat native-endian array. Decoders raise :class:`DecodeError` on corrupt or short input.
"""

from __future__ import annotations

import sys
import zlib

import numpy as np

from . import _kernels, settings

_SWAP = sys.byteorder == "little"


class DecodeError(ValueError):
    """A compressed block is corrupt (translated to CodecError by the tile loop)."""


def _big_endian_bytes(values: np.ndarray) -> bytes:
    if values.dtype.itemsize > 1 and values.dtype.kind != "c":
        return values.astype(values.dtype.newbyteorder(">"), copy=False).tobytes()
    if values.dtype.kind == "c":
        return values.astype(values.dtype.newbyteorder(">"), copy=False).tobytes()
    return values.tobytes()


def _from_big_endian(raw: bytes | np.ndarray, dtype: np.dtype, count: int) -> np.ndarray:
    if len(raw) != count * dtype.itemsize:
        raise DecodeError(f"decoded {len(raw)} bytes, expected {count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder(">")).astype(dtype)


def _gunzip(buf: bytes, expected: int) -> bytes:
    d = zlib.decompressobj(47)  # gzip (cfitsio) or zlib wrapper
    try:
        out = d.decompress(buf, expected + 1)
    except zlib.error as exc:
        raise DecodeError(f"gzip data are corrupt: {exc}") from exc
    if len(out) != expected or not d.eof:
        raise DecodeError(
            f"gzip data decode to {len(out)} bytes, expected {expected}"
            + ("" if d.eof else " (stream truncated)")
        )
    return out


def _gzip(data: bytes | np.ndarray, level: int) -> bytes:
    c = zlib.compressobj(level, zlib.DEFLATED, 31)
    return c.compress(data) + c.flush()


class Gzip1:
    """GZIP_1: the column's big-endian bytes in one gzip (RFC 1952) stream."""

    name = "GZIP_1"

    def __init__(self, *, level: int = settings.GZIP_LEVEL) -> None:
        self.level = level

    def encode(self, values: np.ndarray) -> bytes:
        return _gzip(_big_endian_bytes(values), self.level)

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _from_big_endian(_gunzip(buf, count * dtype.itemsize), dtype, count)


class Gzip2:
    """GZIP_2: bytes shuffled into planes (most significant first), then gzip."""

    name = "GZIP_2"

    def __init__(self, *, level: int = settings.GZIP_LEVEL) -> None:
        self.level = level

    def encode(self, values: np.ndarray) -> bytes:
        return _gzip(_shuffle(values), self.level)

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _unshuffle(_gunzip(buf, count * dtype.itemsize), dtype)


def _shuffle(values: np.ndarray) -> np.ndarray:
    flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
    return _kernels.shuffle(flat, values.dtype.itemsize, _SWAP)


def _unshuffle(raw: bytes, dtype: np.dtype) -> np.ndarray:
    planes = np.frombuffer(raw, dtype=np.uint8)
    return _kernels.unshuffle(planes, dtype.itemsize, _SWAP).view(dtype)


class Rice1:
    """RICE_1: cfitsio's Rice coder, block size 32, bytepix from the column type."""

    name = "RICE_1"

    def encode(self, values: np.ndarray) -> bytes:
        flat = np.ascontiguousarray(values).reshape(-1)
        unsigned = flat.view(f"u{flat.dtype.itemsize}")
        return _kernels.rice_encode(unsigned, flat.dtype.itemsize).tobytes()

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        out = np.empty(count, dtype=f"u{dtype.itemsize}")
        status = _kernels.rice_decode(np.frombuffer(buf, np.uint8), out, dtype.itemsize)
        if status != _kernels.RICE_OK:
            raise DecodeError(f"Rice data are corrupt or truncated (status {status})")
        return out.view(dtype)


class NoCompress:
    """NOCOMPRESS: the column's big-endian bytes stored as they are (funpack rejects it)."""

    name = "NOCOMPRESS"

    def encode(self, values: np.ndarray) -> bytes:
        return _big_endian_bytes(values)

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _from_big_endian(buf, dtype, count)


class _ZstdBase:
    def __init__(self, *, level: int = settings.ZSTD_LEVEL) -> None:
        self.level = level

    def _compress(self, data: bytes | np.ndarray) -> bytes:
        import zstandard

        return zstandard.ZstdCompressor(level=self.level, write_checksum=True).compress(data)

    def _decompress(self, buf: bytes, expected: int) -> bytes:
        import zstandard

        try:
            out = zstandard.ZstdDecompressor().decompress(buf, max_output_size=expected)
        except zstandard.ZstdError as exc:
            raise DecodeError(f"zstd data are corrupt: {exc}") from exc
        if len(out) != expected:
            raise DecodeError(f"zstd data decode to {len(out)} bytes, expected {expected}")
        return out


class Zstd1(_ZstdBase):
    """ZSTD_1 (dvo extension): big-endian column bytes in one Zstandard frame."""

    name = "ZSTD_1"

    def encode(self, values: np.ndarray) -> bytes:
        return self._compress(_big_endian_bytes(values))

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _from_big_endian(self._decompress(buf, count * dtype.itemsize), dtype, count)


class Zstd2(_ZstdBase):
    """ZSTD_2 (dvo extension): shuffled as GZIP_2, then one Zstandard frame."""

    name = "ZSTD_2"

    def encode(self, values: np.ndarray) -> bytes:
        return self._compress(_shuffle(values))

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _unshuffle(self._decompress(buf, count * dtype.itemsize), dtype)


ALGORITHMS = {
    "GZIP_1": Gzip1,
    "GZIP_2": Gzip2,
    "RICE_1": Rice1,
    "NOCOMPRESS": NoCompress,
    "ZSTD_1": Zstd1,
    "ZSTD_2": Zstd2,
}
