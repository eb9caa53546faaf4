"""dvo codecs: plain and tile-compressed binary FITS tables (the ZTABLE convention).

Algorithms: GZIP_1, GZIP_2, RICE_1, NOCOMPRESS and our ZSTD_1/ZSTD_2 extension (keyword
values in :mod:`dvo.codecs.settings`; cfitsio cannot read ZSTD_n or NOCOMPRESS columns).
Files written with GZIP_1/GZIP_2/RICE_1 have cfitsio's layout for the same data, tile length
and algorithms (tiles, descriptors, heap order); RICE_1 blocks are cfitsio's bytes, GZIP
blocks are standard gzip streams deflated by zlib-ng (see :mod:`._codecs`), not zlib's bytes.

Every problem with a file or an argument raises :class:`dvo.errors.CodecError` naming the
file, HDU, column and tile where known. What is detected when:

* always: truncated files, malformed or inconsistent keywords (NAXISn, PCOUNT, TFORMn,
  ZFORMn, ZTILELEN, ZNAXISn, THEAP), unknown ZCTYPn, descriptors outside the heap,
  undecodable Rice streams, GZIP data failing its CRC32 or length, ZSTD frames failing
  their content checksum or length;
* only with ``verify=True`` (CHECKSUM/DATASUM): damage that still decodes, i.e. flipped bits
  inside RICE_1 or NOCOMPRESS data, in plain (uncompressed) tables, in gzip header fields
  outside the CRC, or in header values such as TZEROn or TTYPEn.
"""

from ._api import (
    TableInfo,
    read_header,
    read_table,
    table_info,
    verify_checksums,
    write_table,
)
from ._append import append_table
from ._codecs import ALGORITHMS
from ._fitsfile import data_size
from ._header import Header

__all__ = [
    "ALGORITHMS",
    "Header",
    "TableInfo",
    "append_table",
    "data_size",
    "read_header",
    "read_table",
    "table_info",
    "verify_checksums",
    "write_table",
]
