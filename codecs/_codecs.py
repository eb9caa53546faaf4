"""One class per tile compression algorithm, keyed by ZCMPTYPE in :data:`ALGORITHMS`.

``encode(values)`` takes the flat, native-endian storage elements of one column of one tile
and returns the compressed bytes; ``encode_field(field, start, stop)`` gives the same bytes
for rows of a column read in place from a structured array (taken out, sign-flipped,
byte-swapped and shuffled in one pass into a per-thread scratch buffer);
``decode(buf, dtype=, count=)`` inverts them and returns a flat native-endian array.
Decoders raise :class:`DecodeError` on corrupt or short input.

GZIP streams are written and read with zlib-ng (the ``zlib-ng`` package): the same deflate
format as zlib's, so cfitsio, funpack and fitsio read them, but compressed 1.7x faster at
level 1 (addstar's default checkpoint: 24 s -> 15 s of table writing), for ~12% more bytes.
The bytes are therefore not cfitsio's (zlib) bytes; tests decode ours with Python's zlib.
GZIP_2 writes byte planes that look random (the low mantissa bytes of measured floats) as
stored deflate blocks: zlib-ng's level 1 spends as long on them as on any plane (~0.4 GB/s)
and expands them by 6% (fixed Huffman codes), while a stored block is a copy. It is still
one gzip member, which any inflater reads.
"""

from __future__ import annotations

import functools
import itertools
import struct
import sys
import threading

import numpy as np
from zlib_ng import zlib_ng

from . import settings

_SWAP = sys.byteorder == "little"


def _kernels():
    """The numba kernels, imported on first use (numba adds ~0.3 s to a cold start, and
    header-only calls, plain tables and GZIP_1/ZSTD_1 columns never need it)."""
    kernels = sys.modules.get(f"{__package__}._kernels")
    if kernels is None:  # the import statement costs ~1 us even when done: once per block
        from . import _kernels as kernels
    return kernels


_SCRATCH = threading.local()  # one reused output buffer per thread (tiles may be threaded)
_KEEP_BYTES = 1 << 22  # larger buffers (tiles of > 500k rows) are not kept between calls


def _scratch(nbytes: int) -> np.ndarray:
    """A scratch buffer (uint64) of at least ``nbytes``: this thread's reused one, grown as
    needed up to _KEEP_BYTES, or a new one for larger requests. Its contents are valid until
    the thread's next block is encoded."""
    buf = getattr(_SCRATCH, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = np.empty(max(-(-nbytes // 8), 1 << 13), dtype=np.uint64)
        if buf.nbytes <= _KEEP_BYTES:
            _SCRATCH.buf = buf
    return buf


def _big_endian_field(values: np.ndarray, flip: int) -> np.ndarray:
    """The unsigned ``values`` (1-D, any stride; or the 2-D bytes of an A column) XORed with
    ``flip``, as contiguous big-endian bytes in the scratch buffer: what GZIP_1, ZSTD_1 and
    NOCOMPRESS store, in one pass (numpy; no numba needed)."""
    nbytes = values.size * values.dtype.itemsize
    out = _scratch(nbytes).view(np.uint8)[:nbytes]
    dest = out.view(values.dtype.newbyteorder(">")).reshape(values.shape)
    if flip:
        np.bitwise_xor(values, values.dtype.type(flip), out=dest)
    else:
        np.copyto(dest, values)
    return out


class DecodeError(ValueError):
    """A compressed block is corrupt (translated to CodecError by the tile loop)."""


def _big_endian_bytes(values: np.ndarray) -> bytes:
    """The values as FITS stores them (big-endian)."""
    return values.astype(values.dtype.newbyteorder(">"), copy=False).tobytes()


def _from_big_endian(raw: bytes | np.ndarray, dtype: np.dtype, count: int) -> np.ndarray:
    if len(raw) != count * dtype.itemsize:
        raise DecodeError(f"decoded {len(raw)} bytes, expected {count * dtype.itemsize}")
    return np.frombuffer(raw, dtype=dtype.newbyteorder(">")).astype(dtype)


def _gunzip(buf: bytes, expected: int) -> bytes:
    """Inflate a gzip (or zlib) stream of known size; zlib checks the CRC and the end.

    The output is capped at ``expected + 1`` bytes, so a corrupt or hostile stream cannot
    expand without bound.
    """
    d = zlib_ng.decompressobj(47)
    try:
        out = d.decompress(buf, expected + 1)
    except zlib_ng.error as exc:
        raise DecodeError(f"gzip data are corrupt: {exc}") from exc
    if len(out) != expected or not d.eof:
        end = "" if d.eof else " (stream truncated)"
        raise DecodeError(f"gzip data decode to {len(out)} bytes, expected {expected}{end}")
    return out


def _gzip(data: bytes | np.ndarray, level: int) -> bytes:
    """One gzip stream (wbits 31)."""
    return zlib_ng.compress(data, level, 31)


_STORED_HEADER = struct.Struct("<BHH")  # BFINAL/BTYPE byte (byte-aligned), LEN, NLEN
_GZIP_TRAILER = struct.Struct("<II")  # CRC-32, size mod 2^32


@functools.cache
def _gzip_header(level: int) -> bytes:
    """The gzip member header zlib-ng writes at ``level`` (its XFL byte depends on it)."""
    return _gzip(b"", level)[:10]


def _gzip_planes(planes: np.ndarray, width: int, level: int) -> bytes:
    """One gzip stream of ``width`` equal byte planes: runs of planes that look random
    (``random_planes``) in stored blocks, runs of the others deflated by zlib-ng, each run
    ending on a byte boundary (a sync flush) so that the next can follow."""
    random = _kernels().random_planes(planes, width).tolist()
    if not any(random):
        return _gzip(planes, level)
    n = planes.size // width
    view = memoryview(planes)
    parts = [_gzip_header(level)]
    for stored, group in itertools.groupby(range(width), key=random.__getitem__):
        run = list(group)
        data, final = view[run[0] * n : (run[-1] + 1) * n], run[-1] == width - 1
        if stored:
            for at in range(0, len(data), 0xFFFF):
                chunk = data[at : at + 0xFFFF]
                last = final and at + 0xFFFF >= len(data)
                parts += (_STORED_HEADER.pack(last, len(chunk), len(chunk) ^ 0xFFFF), chunk)
        else:
            deflate = zlib_ng.compressobj(level, zlib_ng.DEFLATED, -15)
            flush = zlib_ng.Z_FINISH if final else zlib_ng.Z_SYNC_FLUSH
            parts += (deflate.compress(data), deflate.flush(flush))
    parts.append(_GZIP_TRAILER.pack(zlib_ng.crc32(planes), planes.size & 0xFFFFFFFF))
    return b"".join(parts)


class _Codec:
    """Shared ``decode_into``: decode, then copy into a (possibly strided) output view.

    ``encode_field(field, start, stop)`` encodes rows [start, stop) of a
    :class:`~._columns.Field` (a column read in place from a structured array); it gives
    the bytes ``encode`` gives for the same storage values.
    """

    def encode(self, values: np.ndarray) -> bytes:
        raise NotImplementedError

    def encode_field(self, field, start: int, stop: int) -> bytes:
        return self.encode(field.storage(start, stop))

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        raise NotImplementedError

    def decode_into(self, buf: bytes, out: np.ndarray) -> None:
        """Decode straight into ``out`` (2-D rows x elements, native storage dtype)."""
        out[...] = self.decode(buf, dtype=out.dtype, count=out.size).reshape(out.shape)


class _BigEndianBytes(_Codec):
    """Codecs whose decoded bytes are the big-endian column: one byte-swapping copy."""

    def _pack(self, data: bytes | np.ndarray) -> bytes:
        raise NotImplementedError

    def encode(self, values: np.ndarray) -> bytes:
        return self._pack(_big_endian_bytes(values))

    def encode_field(self, field, start: int, stop: int) -> bytes:
        return self._pack(_big_endian_field(field.values[start:stop], field.flip))

    def _raw(self, buf: bytes, expected: int) -> bytes:
        raise NotImplementedError

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _from_big_endian(self._raw(buf, count * dtype.itemsize), dtype, count)

    def decode_into(self, buf: bytes, out: np.ndarray) -> None:
        raw = self._raw(buf, out.size * out.dtype.itemsize)
        if len(raw) != out.size * out.dtype.itemsize:
            raise DecodeError(f"{len(raw)} bytes stored, expected {out.size * out.dtype.itemsize}")
        out[...] = np.frombuffer(raw, dtype=out.dtype.newbyteorder(">")).reshape(out.shape)


class _Shuffled(_Codec):
    """Codecs whose decoded bytes are shuffled planes: rebuilt in place by a kernel."""

    def _pack(self, planes: np.ndarray, width: int) -> bytes:
        raise NotImplementedError

    def encode(self, values: np.ndarray) -> bytes:
        return self._pack(_shuffle(values), values.dtype.itemsize)

    def encode_field(self, field, start: int, stop: int) -> bytes:
        values = field.values
        if values.ndim != 1 or values.dtype.itemsize == 1:
            return self.encode(field.storage(start, stop))
        tile = values[start:stop]
        buf = _scratch(tile.size * tile.dtype.itemsize)
        return self._pack(_kernels().shuffle_field(tile, field.flip, buf), tile.dtype.itemsize)

    def _raw(self, buf: bytes, expected: int) -> bytes:
        raise NotImplementedError

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        return _unshuffle(self._raw(buf, count * dtype.itemsize), dtype)

    def decode_into(self, buf: bytes, out: np.ndarray) -> None:
        raw = self._raw(buf, out.size * out.dtype.itemsize)
        if out.dtype.itemsize == 1 or out.dtype.kind == "c":
            out[...] = _unshuffle(raw, out.dtype).reshape(out.shape)
            return
        planes = np.frombuffer(raw, dtype=np.uint8)
        _kernels().unshuffle_into(planes, out.view(f"u{out.dtype.itemsize}"))


class Gzip1(_BigEndianBytes):
    """GZIP_1: the column's big-endian bytes in one gzip (RFC 1952) stream."""

    name = "GZIP_1"

    def __init__(self, *, level: int = settings.GZIP_LEVEL) -> None:
        self.level = level

    def _pack(self, data: bytes | np.ndarray) -> bytes:
        return _gzip(data, self.level)

    def _raw(self, buf: bytes, expected: int) -> bytes:
        return _gunzip(buf, expected)


class Gzip2(_Shuffled):
    """GZIP_2: bytes shuffled into planes (most significant first), then gzip."""

    name = "GZIP_2"

    def __init__(self, *, level: int = settings.GZIP_LEVEL) -> None:
        self.level = level

    def _pack(self, planes: np.ndarray, width: int) -> bytes:
        return _gzip_planes(planes, width, self.level)

    def _raw(self, buf: bytes, expected: int) -> bytes:
        return _gunzip(buf, expected)


def _shuffle(values: np.ndarray) -> np.ndarray:
    width = values.dtype.itemsize
    if width not in (2, 4, 8) or values.dtype.kind == "c":
        flat = np.ascontiguousarray(values).reshape(-1).view(np.uint8)
        return _kernels().shuffle(flat, width, _SWAP)
    flat = np.ascontiguousarray(values).reshape(-1).view(f"u{width}")
    return _kernels().shuffle_values(flat, width)


def _unshuffle(raw: bytes, dtype: np.dtype) -> np.ndarray:
    planes = np.frombuffer(raw, dtype=np.uint8)
    return _kernels().unshuffle(planes, dtype.itemsize, _SWAP).view(dtype)


class Rice1(_Codec):
    """RICE_1: cfitsio's Rice coder, block size 32, bytepix from the column type."""

    name = "RICE_1"

    def encode(self, values: np.ndarray) -> bytes:
        flat = np.ascontiguousarray(values).reshape(-1)
        unsigned = flat.view(f"u{flat.dtype.itemsize}")
        return _kernels().rice_encode(unsigned, flat.dtype.itemsize).tobytes()

    def encode_field(self, field, start: int, stop: int) -> bytes:
        values = field.values
        if values.ndim != 1:
            return self.encode(field.storage(start, stop))
        # a contiguous copy first: the coder reads each value twice, and from a strided
        # column it ran 25% slower than copy + code
        tile = np.ascontiguousarray(values[start:stop])
        return _kernels().rice_encode(tile, tile.dtype.itemsize, field.flip).tobytes()

    def decode(self, buf: bytes, *, dtype: np.dtype, count: int) -> np.ndarray:
        out = np.empty(count, dtype=f"u{dtype.itemsize}")
        status = _kernels().rice_decode(np.frombuffer(buf, np.uint8), out, dtype.itemsize)
        if status != _kernels().RICE_OK:
            raise DecodeError(f"Rice data are corrupt or truncated (status {status})")
        return out.view(dtype)

    def decode_into(self, buf: bytes, out: np.ndarray) -> None:
        if out.shape[1] != 1:
            super().decode_into(buf, out)
            return
        target = out[:, 0].view(f"u{out.dtype.itemsize}")
        status = _kernels().rice_decode(np.frombuffer(buf, np.uint8), target, out.dtype.itemsize)
        if status != _kernels().RICE_OK:
            raise DecodeError(f"Rice data are corrupt or truncated (status {status})")


class NoCompress(_BigEndianBytes):
    """NOCOMPRESS: the column's big-endian bytes stored as they are (funpack rejects it)."""

    name = "NOCOMPRESS"

    def _pack(self, data: bytes | np.ndarray) -> bytes:
        return bytes(data)

    def _raw(self, buf: bytes, expected: int) -> bytes:
        return buf


class _ZstdBase:
    _local = threading.local()  # zstd contexts are reusable but not thread-safe

    def __init__(self, *, level: int = settings.ZSTD_LEVEL) -> None:
        self.level = level

    def _compress(self, data: bytes | np.ndarray) -> bytes:
        # a context per thread and level: making one costs ~40 us and fresh tables per block
        key = f"cctx{self.level}"
        cctx = getattr(self._local, key, None)
        if cctx is None:
            import zstandard  # ~0.3 us even when loaded: not once per block

            cctx = zstandard.ZstdCompressor(level=self.level, write_checksum=True)
            setattr(self._local, key, cctx)
        return cctx.compress(data)

    def _raw(self, buf: bytes, expected: int) -> bytes:
        import zstandard

        dctx = getattr(self._local, "dctx", None)
        if dctx is None:
            dctx = self._local.dctx = zstandard.ZstdDecompressor()
        try:  # a damaged frame header may declare any size: check it before allocating
            declared = zstandard.frame_content_size(buf)
            if declared not in (expected, -1):
                raise DecodeError(f"zstd frame holds {declared} bytes, expected {expected}")
            out = dctx.decompress(buf, max_output_size=expected)
        except (zstandard.ZstdError, MemoryError) as exc:
            raise DecodeError(f"zstd data are corrupt: {exc}") from exc
        if len(out) != expected:
            raise DecodeError(f"zstd data decode to {len(out)} bytes, expected {expected}")
        return out


class Zstd1(_ZstdBase, _BigEndianBytes):
    """ZSTD_1 (dvo extension): big-endian column bytes in one Zstandard frame."""

    name = "ZSTD_1"

    def _pack(self, data: bytes | np.ndarray) -> bytes:
        return self._compress(data)


class Zstd2(_ZstdBase, _Shuffled):
    """ZSTD_2 (dvo extension): shuffled as GZIP_2, then one Zstandard frame."""

    name = "ZSTD_2"

    def _pack(self, planes: np.ndarray, width: int) -> bytes:
        return self._compress(planes)


ALGORITHMS = {
    "GZIP_1": Gzip1,
    "GZIP_2": Gzip2,
    "RICE_1": Rice1,
    "NOCOMPRESS": NoCompress,
    "ZSTD_1": Zstd1,
    "ZSTD_2": Zstd2,
}
