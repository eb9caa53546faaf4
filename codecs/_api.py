"""Public functions: write, read, append, inspect and verify binary FITS tables."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import partial

import numpy as np

from dvo.errors import CodecError

from . import direct, settings
from ._codecs import ALGORITHMS
from ._columns import (
    Column,
    ColumnFormatError,
    Field,
    column_for_array,
    field_of,
    user_columns,
    user_to_storage,
)
from ._fitsfile import HDU, all_hdus, data_unit, find_hdu, hdu_bytes, hdu_header, verify_hdu
from ._header import Card, Header, HeaderError, as_cards
from ._plain import encode_rows, output_dtype, read_plain
from ._schema import (
    Layout,
    check_user_cards,
    compressed_cards,
    table_cards,
    table_layout,
    uncompressed_header,
)
from ._tiled import descriptor_bytes, encode_tiles, read_tiles

Rows = slice | tuple[int, int] | None


@dataclass(frozen=True)
class TableInfo:
    """What :func:`table_info` reports about one table HDU."""

    nrows: int
    columns: tuple[str, ...]
    dtypes: dict[str, np.dtype]
    compressed: bool
    algorithms: dict[str, str]
    tile_rows: int | None


@contextlib.contextmanager
def _open(path, flags: int = os.O_RDONLY) -> Iterator[tuple[int, str]]:
    name = os.fspath(path)
    try:
        fd = os.open(name, flags)
    except OSError as exc:
        raise CodecError(f"cannot open file: {exc.strerror}", file=name) from exc
    try:
        yield fd, name
    finally:
        os.close(fd)


def _table_hdu(fd: int, name: str, ext: int | str, verify: bool) -> tuple[HDU, Layout, dict]:
    hdu = find_hdu(fd, name, ext)
    if verify:
        verify_hdu(fd, hdu, name)
    ctx = {"file": name, "hdu": hdu.index}
    return hdu, table_layout(hdu.header, ctx), ctx


def _resolve(name: str, col: Column) -> str:
    multi, single = settings.ALIASES.get(name, (name, name))
    return multi if col.storage_dtype.itemsize > 1 and col.code in "IJKED" else single


def choose_algorithms(columns: list[Column], compression, ctx: dict) -> list[str]:
    """ZCTYPn of every column for a ``compression`` argument of :func:`write_table`."""
    default = [settings.DEFAULT_ALGORITHM[c.code] for c in columns]
    if compression == "default":
        return default
    if isinstance(compression, str):
        name = compression.upper()
        if name not in ALGORITHMS and name not in settings.ALIASES:
            raise CodecError(f"unknown compression {compression!r}", **ctx)
        chosen = [_resolve(name, c) for c in columns]
        return [
            a if c.code in settings.ALLOWED_CODES[a] else d
            for a, c, d in zip(chosen, columns, default, strict=True)
        ]
    if not isinstance(compression, Mapping):
        raise CodecError(f"compression must be a name or a dict, not {compression!r}", **ctx)
    unknown = set(compression) - {c.name for c in columns}
    if unknown:
        raise CodecError(f"compression names unknown columns {sorted(unknown)}", **ctx)
    out = []
    for col, d in zip(columns, default, strict=True):
        algo = _resolve(str(compression.get(col.name, d)).upper(), col)
        if algo not in ALGORITHMS or col.code not in settings.ALLOWED_CODES[algo]:
            raise CodecError(
                f"algorithm {algo!r} cannot encode a {col.code} column", **ctx, column=col.name
            )
        out.append(algo)
    return out


def _columns_of(data, units, nulls, ctx: dict) -> tuple[list[Column], list[np.ndarray]]:
    try:
        pairs = user_columns(data)
        cols = [
            column_for_array(n, a, (units or {}).get(n), (nulls or {}).get(n)) for n, a in pairs
        ]
    except ColumnFormatError as exc:
        raise CodecError(str(exc), **ctx) from exc
    if len({c.name for c in cols}) != len(cols) or not all(c.name for c in cols):
        raise CodecError("column names must be unique and non-empty", **ctx)
    return cols, [a for _, a in pairs]


def _tile_storage(col: Column, values: np.ndarray, rows: slice) -> np.ndarray:
    return user_to_storage(col, values[rows])


def _table_hdu_parts(data, cols, arrays, cards, compression, tile_rows, checksum, ctx) -> list:
    """The table HDU as byte strings to write one after another (header, data unit)."""
    if compression is None or (isinstance(compression, str) and compression.lower() == "none"):
        return [hdu_bytes(cards, encode_rows(cols, arrays), checksum=checksum)]
    if isinstance(tile_rows, bool) or not isinstance(tile_rows, int) or tile_rows <= 0:
        raise CodecError(f"tile_rows must be a positive integer, not {tile_rows!r}", **ctx)
    algorithms = choose_algorithms(cols, compression, ctx)
    storage = [
        field_of(c, data, c.name) or partial(_tile_storage, c, a)
        for c, a in zip(cols, arrays, strict=True)
    ]
    nrows = len(arrays[0]) if arrays else 0
    rows = np.asarray(data) if any(isinstance(s, Field) for s in storage) else None
    desc, blocks = encode_tiles(storage, nrows, algorithms, tile_rows, rows)
    maxlens = desc[:, :, 0].max(axis=0).tolist() if len(desc) else [0] * len(cols)
    zcards = compressed_cards(
        cards,
        ntiles=len(desc),
        heap_size=sum(len(b) for b in blocks),
        maxlens=maxlens,
        algorithms=algorithms,
        tile_rows=tile_rows,
    )
    unit = data_unit([descriptor_bytes(desc), *blocks])
    return [hdu_header(zcards, unit, checksum=checksum), unit]


def _primary_cards(primary_header) -> list[Card]:
    cards = [
        Card("SIMPLE", True, "conforms to FITS standard"),
        Card("BITPIX", 8, "array data type"),
        Card("NAXIS", 0, "number of array dimensions"),
        Card("EXTEND", True),
    ]
    return cards + as_cards(primary_header)


def write_table(
    path,
    data,
    *,
    compression="default",
    tile_rows: int = settings.DEFAULT_TILE_ROWS,
    header=None,
    primary_header=None,
    units: Mapping | None = None,
    nulls: Mapping | None = None,
    extname: str | None = None,
    checksum: bool = True,
) -> None:
    """Write ``data`` as a FITS file: an empty primary HDU and one BINTABLE HDU.

    Parameters
    ----------
    path : str or os.PathLike
        Output file (replaced atomically).
    data : numpy structured array or dict of name -> array
        1-D arrays are scalar columns, 2-D arrays ``(nrows, r)`` are vector columns ``rX``.
    compression : {"default", "none", None, str, dict}
        ``"none"``/``None``: plain table. ``"default"``: floats GZIP_2, strings GZIP_1,
        integers RICE_1. A name (GZIP_1, GZIP_2, RICE_1, NOCOMPRESS, ZSTD, ZSTD_1, ZSTD_2)
        applies to every column it can encode. A dict maps column -> algorithm.
    tile_rows : int
        Rows per tile of a compressed table.
    header, primary_header : dict or list of (key, value[, comment]), optional
        Extra keywords for the table HDU and the primary HDU.
    units, nulls : dict, optional
        TUNITn and TNULLn per column name.
    extname : str, optional
        EXTNAME of the table.
    checksum : bool
        Write CHECKSUM/DATASUM on both HDUs.

    Raises
    ------
    CodecError
        If a column cannot be written or a keyword/argument is invalid.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "t.fits")
    >>> write_table(p, {"ra": np.arange(3.0), "id": np.arange(3, dtype=np.int32)})
    >>> read_table(p)["id"].tolist()
    [0, 1, 2]
    """
    name = os.fspath(path)
    ctx = {"file": name, "hdu": 1}
    cols, arrays = _columns_of(data, units, nulls, ctx)
    try:
        user = as_cards(header)
        check_user_cards(user, ctx)
        cards = table_cards(cols, len(arrays[0]) if arrays else 0, extname, user)
        parts = [hdu_bytes(_primary_cards(primary_header), b"", checksum=checksum)]
        parts += _table_hdu_parts(data, cols, arrays, cards, compression, tile_rows, checksum, ctx)
    except (HeaderError, ValueError, TypeError) as exc:
        if isinstance(exc, CodecError):
            raise
        raise CodecError(f"cannot write table: {exc}", **ctx) from exc
    _atomic_write(name, parts)


def _atomic_write(name: str, parts: list) -> None:
    """Write the byte strings ``parts`` to ``name`` through a temporary file (no join; with
    O_DIRECT where the filesystem allows, see :mod:`dvo.codecs.direct`)."""
    tmp = f"{name}.tmp{os.getpid()}"
    try:
        direct.write_file(tmp, parts)
        os.replace(tmp, name)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise CodecError(f"cannot write file: {exc.strerror}", file=name) from exc


def _row_range(rows: Rows, nrows: int, ctx: dict) -> tuple[int, int]:
    if rows is None:
        return 0, nrows
    if isinstance(rows, slice):
        if rows.step not in (None, 1):
            raise CodecError("rows must be a contiguous slice (step 1)", **ctx)
        start, stop, _ = rows.indices(nrows)
        return start, max(start, stop)
    if (
        isinstance(rows, tuple)
        and len(rows) == 2
        and all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in rows)
    ):
        return _row_range(slice(int(rows[0]), int(rows[1])), nrows, ctx)
    raise CodecError(f"rows must be a slice or a (start, stop) pair, not {rows!r}", **ctx)


def _select(layout: Layout, columns, ctx: dict) -> list[Column]:
    if columns is None:
        return list(layout.columns)
    if isinstance(columns, str):
        columns = [columns]
    by_name = {c.name: c for c in layout.columns}
    by_upper = {c.name.upper(): c for c in layout.columns}
    out = []
    for name in columns:
        col = by_name.get(name) or by_upper.get(str(name).upper())
        if col is None:
            raise CodecError(f"no column {name!r} in table", **ctx, column=str(name))
        out.append(col)
    return out


def read_table(
    path, *, columns=None, rows: Rows = None, ext: int | str = 1, verify: bool = False
) -> np.ndarray:
    """Read a plain or tile-compressed binary table into a native structured array.

    Parameters
    ----------
    path : str or os.PathLike
    columns : list of str, optional
        Columns to read (others are not decompressed). Default: all, in table order.
    rows : slice or (start, stop), optional
        Row range; only the tiles holding it are decompressed.
    ext : int or str
        HDU number (1 = first extension) or EXTNAME.
    verify : bool
        Check CHECKSUM/DATASUM of the HDU first.

    Returns
    -------
    numpy.ndarray
        One field per column: vectors as sub-arrays, A as ``S`` bytes, L as bool,
        TZERO-offset integers as unsigned, variable-length arrays as objects.

    Raises
    ------
    CodecError
        For a missing, truncated, corrupt or malformed file (file, HDU, column, tile named).
    """
    with _open(path) as (fd, name):
        hdu, layout, ctx = _table_hdu(fd, name, ext, verify)
        cols = _select(layout, columns, ctx)
        start, stop = _row_range(rows, layout.nrows, ctx)
        if layout.compressed:
            return read_tiles(fd, hdu, layout, cols, start, stop, ctx)
        return read_plain(fd, hdu, layout, cols, start, stop, ctx)


def read_header(path, ext: int | str = 1) -> Header:
    """Header of HDU ``ext``; for a compressed table, the uncompressed table's header."""
    with _open(path) as (fd, name):
        return uncompressed_header(find_hdu(fd, name, ext).header)


def table_info(path, ext: int | str = 1) -> TableInfo:
    """Rows, columns, dtypes, compression and tile length of a table HDU."""
    with _open(path) as (fd, name):
        _, layout, _ = _table_hdu(fd, name, ext, False)
    dtype = output_dtype(layout.columns)
    names = tuple(c.name for c in layout.columns)
    algos = dict(zip(names, layout.algorithms, strict=True)) if layout.compressed else {}
    return TableInfo(
        layout.nrows,
        names,
        {n: dtype[n] for n in names},
        layout.compressed,
        algos,
        layout.tile_rows if layout.compressed else None,
    )


def verify_checksums(path) -> None:
    """Verify CHECKSUM/DATASUM of every HDU; raise CodecError on a mismatch or absence."""
    with _open(path) as (fd, name):
        for hdu in all_hdus(fd, name):
            verify_hdu(fd, hdu, name)
