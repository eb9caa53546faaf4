"""Appending rows to the last table HDU of a file, in place.

Plain tables: the old rows are read and written back followed by the new rows (simple,
and DATASUM needs the whole data unit anyway); NAXIS2 and the checksums are updated.
Compressed tables: existing tiles are never decoded or re-encoded, except a partially filled
last tile, which is decoded, merged with the first new rows and re-encoded (ZTILELEN is
fixed, so only the last tile may be short). Because the descriptor table grows by one row per
new tile and cfitsio's layout has no THEAP gap, the existing heap bytes are moved forward by
``NAXIS1`` bytes per added tile (copied as they are, not re-encoded); the heap is held in
memory while that happens. The header keeps its size, so the data unit does not move.
The update is done in place and is not atomic; callers that need atomicity copy first.
"""

from __future__ import annotations

import os

import numpy as np

from dvo.errors import CodecError

from ._api import _columns_of, _open, _table_hdu
from ._columns import user_to_storage
from ._fitsfile import HDU, hdu_bytes, padded, pread_exact
from ._header import Card, HeaderError
from ._plain import encode_rows
from ._schema import Layout
from ._tiled import descriptor_bytes, encode_tiles, heap_bounds, read_descriptors, read_tiles


def append_table(path, data, *, ext: int | str = 1) -> None:
    """Append the rows of ``data`` to table HDU ``ext`` (which must be the file's last HDU).

    Parameters
    ----------
    path : str or os.PathLike
    data : numpy structured array or dict of name -> array
        Must have exactly the table's columns (any order); values are cast to their types.
    ext : int or str
        HDU number or EXTNAME.

    Raises
    ------
    CodecError
        If the columns do not match, the HDU is not the last one, or the file is corrupt.
    """
    with _open(path, os.O_RDWR) as (fd, name):
        hdu, layout, ctx = _table_hdu(fd, name, ext, False)
        if hdu.end < os.fstat(fd).st_size:
            raise CodecError("can only append to the last HDU of a file", **ctx)
        arrays = _matching_arrays(data, layout, ctx)
        if not arrays or len(arrays[0]) == 0:
            return
        if layout.compressed:
            cards, blob = _append_tiles(fd, hdu, layout, arrays, ctx)
        else:
            cards, blob = _append_rows(fd, hdu, layout, arrays, ctx)
        _rewrite(fd, hdu, cards, blob, ctx)


def _matching_arrays(data, layout: Layout, ctx: dict) -> list[np.ndarray]:
    cols, arrays = _columns_of(data, None, None, ctx)
    given = {c.name: a for c, a in zip(cols, arrays, strict=True)}
    names = [c.name for c in layout.columns]
    if set(given) != set(names):
        raise CodecError(
            f"appended columns {sorted(given)} differ from the table's {sorted(names)}", **ctx
        )
    for col in layout.columns:
        if col.is_vla:
            raise CodecError(
                "cannot append to a table with variable-length columns", **ctx, column=col.name
            )
        base, shape = col.user_dtype
        if given[col.name].shape[1:] != shape:
            raise CodecError(
                f"shape {given[col.name].shape[1:]} does not match {shape}", **ctx, column=col.name
            )
    return [given[n] for n in names]


def _append_rows(fd: int, hdu: HDU, layout: Layout, arrays, ctx):
    if layout.heap_size or "THEAP" in hdu.header:
        raise CodecError("cannot append to a plain table with a heap", **ctx)
    old = pread_exact(fd, hdu.data_size, hdu.data_start, ctx)
    blob = old + encode_rows(layout.columns, arrays)
    cards = _updated(hdu, {"NAXIS2": layout.nrows + len(arrays[0])})
    return cards, blob


def _append_tiles(fd: int, hdu: HDU, layout: Layout, arrays, ctx):
    L, nrows = layout.tile_rows, layout.nrows
    desc = read_descriptors(fd, hdu, layout, ctx)
    heap_start, data_end = heap_bounds(hdu, hdu.header["NAXIS1"] * len(desc), ctx)
    keep = nrows // L  # full tiles stay as they are
    storage = [user_to_storage(c, a) for c, a in zip(layout.columns, arrays, strict=True)]
    if keep < len(desc):  # a short last tile: decode it and put its rows first
        last = read_tiles(fd, hdu, layout, layout.columns, keep * L, nrows, ctx)
        storage = [
            np.concatenate([user_to_storage(c, last[c.name]), s])
            for c, s in zip(layout.columns, storage, strict=True)
        ]
    heap = pread_exact(fd, data_end - heap_start, heap_start, ctx)
    if keep < len(desc) and desc[keep:, :, 1].min() >= (
        desc[:keep, :, :].sum(-1).max() if keep else 0
    ):
        heap = heap[: int(desc[keep:, :, 1].min())]  # drop the old last tile's blocks
    new_desc, blocks = encode_tiles(
        [s.__getitem__ for s in storage], len(storage[0]), list(layout.algorithms), L
    )
    new_desc[:, :, 1] += len(heap)
    all_desc = np.concatenate([desc[:keep], new_desc])
    new_heap = heap + b"".join(blocks)
    maxlens = all_desc[:, :, 0].max(axis=0)
    cards = _updated(
        hdu,
        {
            "NAXIS1": 16 * len(layout.columns),
            "NAXIS2": len(all_desc),
            "PCOUNT": len(new_heap),
            "ZNAXIS2": nrows + len(arrays[0]),
        },
    )
    cards = [
        Card(c.key, f"1QB({maxlens[int(c.key[5:]) - 1]})", c.comment)
        if c.key.startswith("TFORM")
        else c
        for c in cards
        if c.key != "THEAP"
    ]
    return cards, descriptor_bytes(all_desc) + new_heap


def _updated(hdu: HDU, values: dict) -> list[Card]:
    return [
        Card(c.key, values[c.key], c.comment) if c.key in values else c for c in hdu.header.cards
    ]


def _rewrite(fd: int, hdu: HDU, cards: list[Card], blob: bytes, ctx: dict) -> None:
    """Write the new header and data unit over the old HDU and truncate the file.

    The header keeps its number of 2880-byte blocks (blank cards fill any space left), so
    the data unit starts where it did.
    """
    checksum = "CHECKSUM" in hdu.header or "DATASUM" in hdu.header
    old_len = hdu.data_start - hdu.header_start
    ncards = len([c for c in cards if c.key not in ("CHECKSUM", "DATASUM")]) + 2 * checksum
    blanks = old_len // 80 - 1 - ncards
    if blanks < 0:
        raise CodecError("the updated header does not fit in place", **ctx)
    try:
        new = hdu_bytes(cards + [Card("", None, "")] * blanks, blob, checksum=checksum)
    except HeaderError as exc:
        raise CodecError(f"cannot rewrite the header: {exc}", **ctx) from exc
    if len(new) - padded(len(blob)) != old_len:
        raise CodecError("the updated header does not fit in place", **ctx)
    os.pwrite(fd, new, hdu.header_start)
    os.ftruncate(fd, hdu.header_start + len(new))
