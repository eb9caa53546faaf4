"""FITS CHECKSUM/DATASUM: 32-bit ones' complement sums and their ASCII encoding."""

from __future__ import annotations

import numpy as np

_EXCLUDE = frozenset(range(0x3A, 0x41)) | frozenset(range(0x5B, 0x61))
ZERO_CHECKSUM = "0000000000000000"


def ones_sum(data: bytes | bytearray | memoryview | np.ndarray, start: int = 0) -> int:
    """Ones' complement sum of big-endian 32-bit words, added to ``start``.

    ``data`` must be a multiple of 4 bytes long (FITS units are multiples of 2880).

    Examples
    --------
    >>> ones_sum(b"\\xff\\xff\\xff\\xff\\x00\\x00\\x00\\x01")
    1
    """
    words = np.frombuffer(data, dtype=">u4")
    total = int(words.sum(dtype=np.uint64)) + start
    while total >> 32:
        total = (total & 0xFFFFFFFF) + (total >> 32)
    return total


def encode_checksum(value: int) -> str:
    """Encode the complement of a 32-bit sum as the 16 ASCII characters of CHECKSUM."""
    value = 0xFFFFFFFF - value
    asc = [0] * 16
    for i in range(4):
        byte = (value >> (24 - 8 * i)) & 0xFF
        ch = [byte // 4 + 0x30] * 4
        ch[0] += byte % 4
        changed = True
        while changed:
            changed = False
            for j in (0, 2):
                if ch[j] in _EXCLUDE or ch[j + 1] in _EXCLUDE:
                    ch[j] += 1
                    ch[j + 1] -= 1
                    changed = True
        for j in range(4):
            asc[4 * j + i] = ch[j]
    return "".join(chr(asc[(i + 15) % 16]) for i in range(16))
