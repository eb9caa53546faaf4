"""Named defaults of dvo.codecs.

ZSTD keyword values (our extension; cfitsio, funpack, astropy and fitsio cannot read them):

* ``ZCTYPn = 'ZSTD_1'``: the tile's column bytes (big-endian, as for GZIP_1) in one Zstandard
  frame (RFC 8878) with the content size and a content checksum.
* ``ZCTYPn = 'ZSTD_2'``: byte-shuffled exactly as GZIP_2, then one Zstandard frame.

Asking for ``"ZSTD"`` picks ZSTD_2 for multi-byte numeric columns and ZSTD_1 otherwise. The
compression level is not stored (Zstandard frames decode without it).
"""

from __future__ import annotations

DEFAULT_TILE_ROWS = 10000  # rows per tile, as DVO writes
GZIP_LEVEL = 1  # Z_BEST_SPEED, as cfitsio (whose zlib writes other bytes than our zlib-ng)
ZSTD_LEVEL = 1  # zstd's fast end: ~30% faster writes than 3 for ~7% more bytes (addstar)

# DVO defaults by storage code: floats GZIP_2, strings GZIP_1, integers RICE_1.
DEFAULT_ALGORITHM = {
    "B": "RICE_1",
    "I": "RICE_1",
    "J": "RICE_1",
    "K": "GZIP_2",  # cfitsio's Rice coder has no 8-byte integers
    "E": "GZIP_2",
    "D": "GZIP_2",
    "A": "GZIP_1",
    "L": "GZIP_1",
    "X": "GZIP_1",
    "C": "GZIP_1",  # cfitsio mislabels unshuffled complex columns as GZIP_2 (bug); GZIP_1 is safe
    "M": "GZIP_1",
}

# Which storage codes each algorithm can encode (GZIP_2 and RICE_1 as cfitsio accepts them).
ALLOWED_CODES = {
    "GZIP_1": "LXBIJKAEDCM",
    "GZIP_2": "IJKED",
    "RICE_1": "BIJ",
    "NOCOMPRESS": "LXBIJKAEDCM",
    "ZSTD_1": "LXBIJKAEDCM",
    "ZSTD_2": "IJKED",
}
# User-facing names that pick a variant by column type: name -> (multi-byte, one-byte).
ALIASES = {"GZIP": ("GZIP_1", "GZIP_1"), "ZSTD": ("ZSTD_2", "ZSTD_1")}

# Keywords that describe the table layout; users cannot set them through ``header=``.
RESERVED_KEYWORDS = frozenset(
    [
        "SIMPLE",
        "BITPIX",
        "NAXIS",
        "NAXIS1",
        "NAXIS2",
        "EXTEND",
        "XTENSION",
        "PCOUNT",
        "GCOUNT",
        "TFIELDS",
        "THEAP",
        "END",
        "CHECKSUM",
        "DATASUM",
        "ZTABLE",
        "ZTILELEN",
        "ZNAXIS1",
        "ZNAXIS2",
        "ZPCOUNT",
        "ZHEAPPTR",
        "ZTHEAP",
        "ZHECKSUM",
        "ZDATASUM",
    ]
)
RESERVED_PREFIXES = (
    "TTYPE",
    "TFORM",
    "TUNIT",
    "TNULL",
    "TZERO",
    "TSCAL",
    "TDIM",
    "ZFORM",
    "ZCTYP",
    "NAXIS",
)

# Compressed bytes read at a time by a tile-compressed read (whole tiles; the buffer is reused).
READ_BYTES = 2 << 20

# Threads for tile encode/decode (zlib, zstd and the numba kernels release the GIL).
THREADS = 1

# Largest believable ratio uncompressed / compressed bytes (zstd on constant data reaches
# a few thousand); anything larger means corrupt ZNAXIS keywords, not data.
MAX_EXPANSION = 100000
