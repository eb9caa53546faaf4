"""Plain (uncompressed) BINTABLE data units: rows <-> structured arrays, and VLA heaps."""

from __future__ import annotations

import numpy as np

from dvo.errors import CodecError

from ._columns import Column, row_dtype, storage_to_user, user_to_storage
from ._fitsfile import HDU, pread_exact
from ._schema import Layout

CHUNK_ROWS = 16384


def output_dtype(columns: list[Column]) -> np.dtype:
    """The native structured dtype :func:`read_table` returns for these columns."""
    fields = []
    for col in columns:
        base, shape = col.user_dtype
        fields.append((col.name, base, shape) if shape else (col.name, base))
    return np.dtype(fields)


def encode_rows(columns: list[Column], arrays: list[np.ndarray]) -> bytes:
    """Big-endian row bytes of a plain table."""
    nrows = len(arrays[0]) if arrays else 0
    rec = np.empty(nrows, dtype=row_dtype(columns, sum(c.nbytes for c in columns)))
    for i, (col, arr) in enumerate(zip(columns, arrays, strict=True)):
        if col.nbytes:
            rec[f"f{i}"] = user_to_storage(col, arr)
    return rec.tobytes()


def read_plain(
    fd: int, hdu: HDU, layout: Layout, columns: list[Column], start: int, stop: int, ctx: dict
) -> np.ndarray:
    """Rows [start, stop) of the selected columns of a plain table."""
    nbytes = layout.row_bytes * (stop - start)
    raw = pread_exact(fd, nbytes, hdu.data_start + start * layout.row_bytes, ctx)
    rec = np.frombuffer(raw, dtype=row_dtype(layout.columns, layout.row_bytes))
    out = np.empty(stop - start, dtype=output_dtype(columns))
    for col in columns:
        i = layout.columns.index(col)
        if col.is_vla:
            out[col.name] = _read_vla(fd, hdu, layout, col, rec[f"f{i}"], ctx)
    for lo in range(0, len(rec), CHUNK_ROWS):  # row blocks keep both arrays in cache
        _convert_block(rec[lo : lo + CHUNK_ROWS], out[lo : lo + CHUNK_ROWS], layout, columns)
    return out


def _convert_block(rec: np.ndarray, out: np.ndarray, layout: Layout, columns) -> None:
    """Copy big-endian raw rows into the native output (one pass per plain column)."""
    for col in columns:
        if col.is_vla or not col.nbytes:
            continue
        raw = rec[f"f{layout.columns.index(col)}"]
        if col.direct:
            out[col.name] = raw if col.repeat > 1 else raw[:, 0]
        else:
            out[col.name] = storage_to_user(col, raw.astype(col.storage_dtype))


def _read_vla(
    fd: int, hdu: HDU, layout: Layout, col: Column, desc: np.ndarray, ctx: dict
) -> np.ndarray:
    """Object array of the variable-length arrays pointed to by ``desc`` (nelem, offset)."""
    heap_start = hdu.header.get("THEAP", layout.row_bytes * layout.nrows)
    if not isinstance(heap_start, int) or isinstance(heap_start, bool) or heap_start < 0:
        raise CodecError(f"THEAP={heap_start!r} is not a valid heap offset", **ctx)
    elem = Column(col.name, col.vla_code, 1, tzero=col.tzero, tscal=col.tscal)
    width = elem.nbytes if col.vla_code != "X" else 1
    nelem, offset = desc[:, 0].astype(np.int64), desc[:, 1].astype(np.int64)
    nbytes = nelem * width if col.vla_code != "X" else (nelem + 7) // 8
    if (
        (nelem < 0).any()
        or (offset < 0).any()
        or (len(desc) and (offset + nbytes).max() > hdu.data_size - heap_start)
    ):
        raise CodecError(
            "variable-length array descriptor points outside the heap", **ctx, column=col.name
        )
    out = np.empty(len(desc), dtype=object)
    heap_base = hdu.data_start + heap_start
    for r in range(len(desc)):  # one Python step per array: VLAs are read one by one
        raw = pread_exact(fd, int(nbytes[r]), heap_base + int(offset[r]), ctx)
        out[r] = vla_values(elem, raw, int(nelem[r]))
    return out


def vla_values(elem: Column, raw: bytes, nelem: int) -> np.ndarray:
    """User values of one variable-length array from its big-endian bytes."""
    dtype = elem.storage_dtype
    stored = np.frombuffer(raw, dtype=dtype.newbyteorder(">")).astype(dtype)
    if elem.code == "A":
        return raw
    if elem.code == "X":
        return np.unpackbits(stored)[:nelem].astype(bool)
    values = storage_to_user(elem, stored.reshape(-1, 1))
    return np.asarray(values).reshape(-1)
