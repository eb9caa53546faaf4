"""dvo codecs: plain and tile-compressed binary FITS tables (the ZTABLE convention).

Algorithms: GZIP_1, GZIP_2, RICE_1, NOCOMPRESS and our ZSTD_1/ZSTD_2 extension (see
:mod:`dvo.codecs.settings`). Every error is a :class:`dvo.errors.CodecError`.
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
from ._header import Header

__all__ = [
    "ALGORITHMS",
    "Header",
    "TableInfo",
    "append_table",
    "read_header",
    "read_table",
    "table_info",
    "verify_checksums",
    "write_table",
]
