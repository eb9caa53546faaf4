"""Numba kernels: Rice (cfitsio ``fits_rcomp``/``fits_rdecomp``) coding and byte shuffling.

Kernels work on flat arrays and return status codes instead of raising; the Python layer
turns a negative status into a :class:`~dvo.errors.CodecError` naming file/HDU/column/tile.
Rice kernels take the *unsigned* view of the stored integers (uint8/uint16/uint32): all
differences are taken modulo 2**(8*bytepix), exactly as cfitsio's C integer arithmetic does.
"""

from __future__ import annotations

import sys

import numpy as np
from numba import njit

_LITTLE = sys.byteorder == "little"  # the uint64 plane stores assume little-endian words
RICE_BLOCK = 32
RICE_OK = 0
RICE_SHORT = -1  # stream ended before all values were decoded
RICE_BAD_CODE = -2  # an fs code outside the valid range
RICE_OVERFLOW = -3  # a decoded difference larger than the integer width

# number of leading zero bits of each byte value (8 for 0)
_LEADING_ZEROS = np.array([8 - int(v).bit_length() for v in range(256)], dtype=np.int64)


@njit(cache=True, nogil=True)
def rice_params(bytepix):
    """Return (fsbits, fsmax, bbits) for 1, 2 or 4 bytes per value."""
    if bytepix == 1:
        return 3, 6, 8
    if bytepix == 2:
        return 4, 14, 16
    return 5, 25, 32


@njit(cache=True, nogil=True)
def _put(out, o, acc, nacc, value, nbits):
    """Append the low ``nbits`` (<= 32) bits of ``value`` MSB-first; return new state."""
    acc = (acc << np.uint64(nbits)) | np.uint64(value & ((1 << nbits) - 1))
    nacc += nbits
    while nacc >= 8:
        nacc -= 8
        out[o] = np.uint8((acc >> np.uint64(nacc)) & np.uint64(0xFF))
        o += 1
    acc &= np.uint64((1 << nacc) - 1)
    return o, acc, nacc


@njit(cache=True, nogil=True)
def _zigzag_block(a, start, stop, last, mask, half, diff):
    """Map differences of a[start:stop] to non-negative ints in ``diff``; return their sum."""
    total = 0.0
    for j in range(stop - start):
        v = np.int64(a[start + j])
        d = (v - last) & mask
        if d >= half:
            d -= mask + 1
        diff[j] = 2 * d if d >= 0 else -2 * d - 1
        total += diff[j]
        last = v
    return total


@njit(cache=True, nogil=True)
def rice_encode(a, bytepix, flip=0):
    """Rice-code the unsigned integer array ``a`` (block size 32) as cfitsio does.

    ``a`` may be strided (a column of a structured array). ``flip`` is XORed into every
    value first (the sign bit of a TZERO-offset unsigned column): only the first value,
    stored whole, changes, since XOR with the top bit is an addition modulo 2**bits and
    leaves every difference as it was. Returns the compressed bytes as a uint8 array.
    """
    nx = a.size
    fsbits, fsmax, bbits = rice_params(bytepix)
    mask = (1 << bbits) - 1
    half = 1 << (bbits - 1)
    nblocks = (nx + RICE_BLOCK - 1) // RICE_BLOCK
    out = np.zeros(16 + bytepix + (nx * (bbits + 8) + nblocks * fsbits) // 8, dtype=np.uint8)
    o, acc, nacc = 0, np.uint64(0), 0
    if nx == 0:
        return out[:0]
    last = np.int64(a[0])
    o, acc, nacc = _put(out, o, acc, nacc, (last ^ flip) & mask, bbits)
    diff = np.zeros(RICE_BLOCK, dtype=np.int64)
    for start in range(0, nx, RICE_BLOCK):
        stop = min(start + RICE_BLOCK, nx)
        nb = stop - start
        total = _zigzag_block(a, start, stop, last, mask, half, diff)
        last = np.int64(a[stop - 1])
        dpsum = max((total - (nb // 2) - 1) / nb, 0.0)
        psum = np.int64(dpsum) >> 1
        fs = 0
        while psum > 0:
            fs += 1
            psum >>= 1
        if fs >= fsmax:
            o, acc, nacc = _put(out, o, acc, nacc, fsmax + 1, fsbits)
            for j in range(nb):
                o, acc, nacc = _put(out, o, acc, nacc, diff[j], bbits)
        elif fs == 0 and total == 0:
            o, acc, nacc = _put(out, o, acc, nacc, 0, fsbits)
        else:
            o, acc, nacc = _put(out, o, acc, nacc, fs + 1, fsbits)
            low = (1 << fs) - 1
            for j in range(nb):
                top = diff[j] >> fs
                while top > 31:
                    o, acc, nacc = _put(out, o, acc, nacc, 0, 31)
                    top -= 31
                if top + 1 + fs <= 32:  # the unary high bits and the fs low bits at once
                    code = (1 << fs) | (diff[j] & low)
                    o, acc, nacc = _put(out, o, acc, nacc, code, top + 1 + fs)
                else:
                    o, acc, nacc = _put(out, o, acc, nacc, 1, top + 1)
                    o, acc, nacc = _put(out, o, acc, nacc, diff[j], fs)
    if nacc > 0:
        o, acc, nacc = _put(out, o, acc, nacc, 0, 8 - nacc)
    return out[:o]


@njit(cache=True, nogil=True)
def _getbits(c, pos, nbits):
    """The ``nbits`` (<= 32) bits of ``c`` starting at bit ``pos`` (caller checks bounds)."""
    byte = pos >> 3
    nbytes = ((pos & 7) + nbits + 7) >> 3
    v = np.int64(0)
    for k in range(nbytes):
        v = (v << 8) | np.int64(c[byte + k])
    v >>= nbytes * 8 - (pos & 7) - nbits
    return v & ((np.int64(1) << nbits) - 1)


@njit(cache=True, nogil=True)
def _count_zeros(c, pos, total_bits):
    """Count zero bits from ``pos`` up to the next one bit; return (nzero, pos after the 1)."""
    nzero = 0
    while pos < total_bits:
        byte = pos >> 3
        off = pos & 7
        b = np.int64(c[byte]) & (0xFF >> off)
        if b == 0:
            nzero += 8 - off
            pos = (byte + 1) << 3
        else:
            lz = _LEADING_ZEROS[b]
            nzero += lz - off
            return nzero, (byte << 3) + lz + 1
    return -1, pos


@njit(cache=True, nogil=True)
def rice_decode(c, out, bytepix):
    """Decode a cfitsio Rice stream into the unsigned array ``out`` (its size = nvals).

    Returns RICE_OK, or a negative status for a short or corrupt stream.
    """
    nx = out.size
    fsbits, fsmax, bbits = rice_params(bytepix)
    mask = (np.int64(1) << bbits) - 1
    total_bits = c.size * 8
    if nx == 0:
        return RICE_OK
    if c.size < bytepix:
        return RICE_SHORT
    last = _getbits(c, 0, bbits)
    pos = bbits
    i = 0
    while i < nx:
        if pos + fsbits > total_bits:
            return RICE_SHORT
        fs = _getbits(c, pos, fsbits) - 1
        pos += fsbits
        imax = min(i + RICE_BLOCK, nx)
        if fs > fsmax:
            return RICE_BAD_CODE
        for k in range(i, imax):
            if fs < 0:
                diff = np.int64(0)
            elif fs == fsmax:
                if pos + bbits > total_bits:
                    return RICE_SHORT
                diff = _getbits(c, pos, bbits)
                pos += bbits
            else:
                nzero, pos = _count_zeros(c, pos, total_bits)
                if nzero < 0 or pos + fs > total_bits:
                    return RICE_SHORT
                if nzero > (mask >> fs):
                    return RICE_OVERFLOW
                diff = (np.int64(nzero) << fs) | _getbits(c, pos, fs)
                pos += fs
            d = diff >> 1 if (diff & 1) == 0 else ~(diff >> 1)
            last = (last + d) & mask
            out[k] = last
        i = imax
    return RICE_OK


@njit(cache=True, nogil=True)
def shuffle(src, width, swap):
    """Byte-shuffle ``src`` (N elements of ``width`` bytes) into ``width`` planes.

    Plane k holds byte k (most significant first) of every element. ``swap`` says the input
    is little-endian (native) and must be read in reverse byte order.
    """
    n = src.size // width
    out = np.empty(src.size, dtype=np.uint8)
    for k in range(width):
        kk = width - 1 - k if swap else k
        base = k * n
        for i in range(n):
            out[base + i] = src[i * width + kk]
    return out


@njit(cache=True, nogil=True)
def unshuffle(src, width, swap):
    """Inverse of :func:`shuffle`; with ``swap`` the output elements are little-endian."""
    n = src.size // width
    out = np.empty(src.size, dtype=np.uint8)
    for k in range(width):
        kk = width - 1 - k if swap else k
        base = k * n
        for i in range(n):
            out[i * width + kk] = src[base + i]
    return out


@njit(cache=True, nogil=True, inline="always")
def _join2(planes, n, e):
    return (np.uint16(planes[e]) << np.uint16(8)) | np.uint16(planes[n + e])


@njit(cache=True, nogil=True, inline="always")
def _join4(planes, n, e):
    return (
        (np.uint32(planes[e]) << np.uint32(24))
        | (np.uint32(planes[n + e]) << np.uint32(16))
        | (np.uint32(planes[2 * n + e]) << np.uint32(8))
        | np.uint32(planes[3 * n + e])
    )


@njit(cache=True, nogil=True, inline="always")
def _join8(planes, n, e):
    hi = (
        (np.uint64(planes[e]) << np.uint64(56))
        | (np.uint64(planes[n + e]) << np.uint64(48))
        | (np.uint64(planes[2 * n + e]) << np.uint64(40))
        | (np.uint64(planes[3 * n + e]) << np.uint64(32))
    )
    lo = (
        (np.uint64(planes[4 * n + e]) << np.uint64(24))
        | (np.uint64(planes[5 * n + e]) << np.uint64(16))
        | (np.uint64(planes[6 * n + e]) << np.uint64(8))
        | np.uint64(planes[7 * n + e])
    )
    return hi | lo


@njit(cache=True, nogil=True)
def _unshuffle_col2(planes, out):
    n = out.size
    for e in range(n):
        out[e] = _join2(planes, n, e)


@njit(cache=True, nogil=True)
def _unshuffle_col4(planes, out):
    n = out.size
    for e in range(n):
        out[e] = _join4(planes, n, e)


@njit(cache=True, nogil=True)
def _unshuffle_col8(planes, out):
    n = out.size
    for e in range(n):
        out[e] = _join8(planes, n, e)


@njit(cache=True, nogil=True)
def _unshuffle_vec2(planes, out):
    nr, nc = out.shape
    for i in range(nr):
        for j in range(nc):
            out[i, j] = _join2(planes, out.size, i * nc + j)


@njit(cache=True, nogil=True)
def _unshuffle_vec4(planes, out):
    nr, nc = out.shape
    for i in range(nr):
        for j in range(nc):
            out[i, j] = _join4(planes, out.size, i * nc + j)


@njit(cache=True, nogil=True)
def _unshuffle_vec8(planes, out):
    nr, nc = out.shape
    for i in range(nr):
        for j in range(nc):
            out[i, j] = _join8(planes, out.size, i * nc + j)


_UNSHUFFLE_COL = {2: _unshuffle_col2, 4: _unshuffle_col4, 8: _unshuffle_col8}
_UNSHUFFLE_VEC = {2: _unshuffle_vec2, 4: _unshuffle_vec4, 8: _unshuffle_vec8}


def unshuffle_into(planes: np.ndarray, out: np.ndarray) -> None:
    """Rebuild big-endian byte planes into the unsigned 2-D array ``out`` (may be strided).

    Element ``i * ncols + j`` of the planes goes to ``out[i, j]``; values are assembled
    arithmetically, so the result is native-endian on any machine. One kernel per width
    (2, 4, 8 bytes), written out so numba keeps the byte loads in registers. A scalar
    column (one element per row, the common case) goes through a 1-D kernel: numba's
    2-D loop with an inner extent of 1 was 2.5x slower on a 40-byte-row output.
    """
    width = out.dtype.itemsize
    if out.shape[1] == 1:
        _UNSHUFFLE_COL[width](planes, out[:, 0])
    else:
        _UNSHUFFLE_VEC[width](planes, out)


@njit(cache=True, nogil=True)
def shuffle_values(values, width):
    """Byte planes (most significant first) of the unsigned integers ``values``."""
    n = values.size
    out = np.empty(n * width, dtype=np.uint8)
    for i in range(n):
        v = np.uint64(values[i])
        for k in range(width):
            out[k * n + i] = np.uint8((v >> np.uint64(8 * (width - 1 - k))) & np.uint64(0xFF))
    return out


# Shuffling a column of a structured array in place: ``values`` is the column viewed as
# unsigned integers (strided, maybe unaligned), ``flip`` (same type) is XORed into every
# value (the sign bit of TZERO-offset unsigned columns, else 0), and the big-endian byte
# planes go to ``out`` (a uint64 buffer, at least values.size * width bytes). When the
# number of values is a multiple of 8 every plane starts on a word, and the bytes of 8
# values are gathered in registers and stored as one uint64 per plane (little-endian
# machine order: value k of the group is byte k of the word); that is 2-4x faster than
# storing single bytes, which the kernels still do for a short last tile.


@njit(cache=True, nogil=True)
def _shuffle_field2(values, flip, out):
    n = values.size
    planes = out.view(np.uint8)
    if n % 8 or not _LITTLE:
        for i in range(n):
            v = values[i] ^ flip
            planes[i] = np.uint8(v >> np.uint16(8))
            planes[n + i] = np.uint8(v & np.uint16(0xFF))
        return
    m = n // 8
    for g in range(m):
        a0 = np.uint64(0)
        a1 = np.uint64(0)
        for k in range(8):
            v = np.uint64(values[8 * g + k] ^ flip)
            sh = np.uint64(8 * k)
            a0 |= (v >> np.uint64(8)) << sh
            a1 |= (v & np.uint64(0xFF)) << sh
        out[g] = a0
        out[m + g] = a1


@njit(cache=True, nogil=True)
def _shuffle_field4(values, flip, out):
    n = values.size
    planes = out.view(np.uint8)
    if n % 8 or not _LITTLE:
        for i in range(n):
            v = values[i] ^ flip
            planes[i] = np.uint8(v >> np.uint32(24))
            planes[n + i] = np.uint8((v >> np.uint32(16)) & np.uint32(0xFF))
            planes[2 * n + i] = np.uint8((v >> np.uint32(8)) & np.uint32(0xFF))
            planes[3 * n + i] = np.uint8(v & np.uint32(0xFF))
        return
    m = n // 8
    for g in range(m):
        a0 = np.uint64(0)
        a1 = np.uint64(0)
        a2 = np.uint64(0)
        a3 = np.uint64(0)
        for k in range(8):
            v = np.uint64(values[8 * g + k] ^ flip)
            sh = np.uint64(8 * k)
            a0 |= (v >> np.uint64(24)) << sh
            a1 |= ((v >> np.uint64(16)) & np.uint64(0xFF)) << sh
            a2 |= ((v >> np.uint64(8)) & np.uint64(0xFF)) << sh
            a3 |= (v & np.uint64(0xFF)) << sh
        out[g] = a0
        out[m + g] = a1
        out[2 * m + g] = a2
        out[3 * m + g] = a3


@njit(cache=True, nogil=True)
def _shuffle_field8(values, flip, out):
    n = values.size
    planes = out.view(np.uint8)
    if n % 8 or not _LITTLE:
        for i in range(n):
            v = values[i] ^ flip
            for k in range(8):
                planes[k * n + i] = np.uint8((v >> np.uint64(56 - 8 * k)) & np.uint64(0xFF))
        return
    m = n // 8
    for g in range(m):
        a0 = np.uint64(0)
        a1 = np.uint64(0)
        a2 = np.uint64(0)
        a3 = np.uint64(0)
        a4 = np.uint64(0)
        a5 = np.uint64(0)
        a6 = np.uint64(0)
        a7 = np.uint64(0)
        for k in range(8):
            v = np.uint64(values[8 * g + k] ^ flip)
            sh = np.uint64(8 * k)
            a0 |= (v >> np.uint64(56)) << sh
            a1 |= ((v >> np.uint64(48)) & np.uint64(0xFF)) << sh
            a2 |= ((v >> np.uint64(40)) & np.uint64(0xFF)) << sh
            a3 |= ((v >> np.uint64(32)) & np.uint64(0xFF)) << sh
            a4 |= ((v >> np.uint64(24)) & np.uint64(0xFF)) << sh
            a5 |= ((v >> np.uint64(16)) & np.uint64(0xFF)) << sh
            a6 |= ((v >> np.uint64(8)) & np.uint64(0xFF)) << sh
            a7 |= (v & np.uint64(0xFF)) << sh
        out[g] = a0
        out[m + g] = a1
        out[2 * m + g] = a2
        out[3 * m + g] = a3
        out[4 * m + g] = a4
        out[5 * m + g] = a5
        out[6 * m + g] = a6
        out[7 * m + g] = a7


_SHUFFLE_FIELD = {2: _shuffle_field2, 4: _shuffle_field4, 8: _shuffle_field8}


def shuffle_field(values: np.ndarray, flip: int, buf: np.ndarray) -> np.ndarray:
    """Big-endian byte planes of the unsigned 1-D ``values`` (2, 4 or 8 bytes, any stride),
    each XORed with ``flip`` first: the bytes GZIP_2/ZSTD_2 compress.

    ``buf`` is a uint64 scratch array of at least ``values.size * width`` bytes; the planes
    are written to it and returned as a uint8 view of its start.
    """
    width = values.dtype.itemsize
    _SHUFFLE_FIELD[width](values, values.dtype.type(flip), buf)
    return buf.view(np.uint8)[: values.size * width]


@njit(cache=True, nogil=True)
def random_planes(planes, width):
    """Which of the ``width`` equal planes of ``planes`` (uint8) look like random bytes:
    their sampled pair-collision rate (sum of p^2, at most ~1024 samples) is below 1/223,
    i.e. a Renyi entropy above 7.8 bits per byte (uniform bytes: 8). Deflate gains nothing
    on such planes. Planes under 512 bytes are never called random. Integer arithmetic, so
    the answer (and the bytes written) are the same on every machine."""
    n = planes.size // width
    out = np.zeros(width, np.bool_)
    if n < 512:
        return out
    step = max(1, n // 1024)
    counts = np.empty(256, np.int64)
    for k in range(width):
        counts[:] = 0
        m = 0
        for i in range(k * n, (k + 1) * n, step):
            counts[planes[i]] += 1
            m += 1
        pairs = 0
        for b in range(256):
            pairs += counts[b] * (counts[b] - 1)
        out[k] = pairs * 223 < m * (m - 1)
    return out


@njit(cache=True, nogil=True)
def constant_fields(words, offsets, sizes, out):
    """Which fields hold one value in every row of a tile: ``out[i]`` for the field of
    ``sizes[i]`` bytes at byte ``offsets[i]`` of the rows ``words`` (a 2-D contiguous view,
    one row of unsigned words per record). One pass over the rows, across all fields, instead
    of one strided pass per field: bytes that differ from the first row's are ORed into an
    accumulator row."""
    n, w = words.shape
    acc = np.zeros(w, words.dtype)
    for r in range(1, n):
        for j in range(w):
            acc[j] |= words[r, j] ^ words[0, j]
    differs = acc.view(np.uint8)
    for i in range(offsets.size):
        out[i] = True
        for k in range(offsets[i], offsets[i] + sizes[i]):
            if differs[k]:
                out[i] = False
                break


@njit(cache=True, nogil=True)
def all_equal(values):
    """Whether every element of a 1-D array (unsigned storage words) equals the first."""
    i, n = 1, values.shape[0]
    while i < n and values[i] == values[0]:
        i += 1
    return i >= n
