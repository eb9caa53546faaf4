"""The tile loop of ZTABLE compression: column tiles <-> heap blocks and descriptors.

Heap order is cfitsio's: tile by tile, and within a tile column by column. Descriptors are
``1QB`` (two big-endian int64: compressed length, offset from the heap start). Readers use
the descriptors only, so any heap order (and ``1PB`` descriptors) is accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from zlib_ng import zlib_ng

from dvo.errors import CodecError

from . import settings
from ._codecs import ALGORITHMS, DecodeError, Gzip1, Rice1, _Shuffled
from ._columns import Column, ColumnFormatError, Field, parse_tform, storage_to_user
from ._fitsfile import HDU, pread_exact, pread_into
from ._plain import output_dtype, vla_values
from ._schema import Layout


def _pool_map(func, items: list) -> Iterator:
    """Lazy ``map``, over threads if settings.THREADS > 1 (zlib, zstd and the numba kernels
    release the GIL)."""
    if settings.THREADS <= 1 or len(items) < 4:
        yield from map(func, items)
        return
    with ThreadPoolExecutor(settings.THREADS) as pool:
        yield from pool.map(func, items)


#: Blocks of constant tiles by (codec, storage word type, sign flip, value, rows).
_CONSTANT_BLOCKS: dict[tuple, bytes] = {}


def _encode_field(
    codec, key: tuple, field: Field, start: int, stop: int, constant: bool | None = None
) -> bytes:
    """``codec.encode_field``, except that a tile whose column holds one value throughout is
    compressed once per codec, value and length, and its block reused (the same bytes: the
    codecs are deterministic). Wide tables hold many such columns: SecFilt's stack and warp
    columns, which addstar never fills, are half its bytes. ``constant`` says whether the
    tile's column is constant when the caller knows (else it is checked here)."""
    values = field.values
    if stop - start < 2 or not _reuses_constant(codec, field):
        return codec.encode_field(field, start, stop)
    if constant is None:
        from . import _kernels

        constant = _kernels.all_equal(values[start:stop])
    if not constant:
        return codec.encode_field(field, start, stop)
    k = (key, values.dtype.str, field.flip, int(values[start]), stop - start)
    block = _CONSTANT_BLOCKS.get(k)
    if block is None:
        block = codec.encode_field(field, start, stop)
        if len(_CONSTANT_BLOCKS) >= 4096:
            _CONSTANT_BLOCKS.clear()
        _CONSTANT_BLOCKS[k] = block
    return block


def _reuses_constant(codec, field: Field) -> bool:
    """Whether :func:`_encode_field` reuses the block of a tile holding one value: 1-D
    fields, for the codecs that have numba loaded (their constant check is a kernel)."""
    return field.values.ndim == 1 and isinstance(codec, (_Shuffled, Rice1))


class _ConstantColumns:
    """Which Field columns of a tile are constant, for all of them in one pass over the
    tile's records (:func:`_kernels.constant_fields`) rather than one strided pass per
    column: the columns :func:`_encode_field` would check, of a contiguous table."""

    def __init__(self, rows: np.ndarray | None, fields: list, codecs: list) -> None:
        self.columns = [
            i
            for i, (f, c) in enumerate(zip(fields, codecs, strict=True))
            if f is not None and f.offset >= 0 and _reuses_constant(c, f)
        ]
        self.words = None
        if rows is None or not self.columns or rows.ndim != 1 or not rows.flags.c_contiguous:
            return
        size = rows.dtype.itemsize
        word = next(w for w in (8, 4, 2, 1) if size % w == 0)
        self.words = rows.view(f"u{word}").reshape(len(rows), size // word)
        self.offsets = np.array([fields[i].offset for i in self.columns], np.int64)
        self.sizes = np.array([fields[i].values.itemsize for i in self.columns], np.int64)

    def of_tile(self, ncols: int, start: int, stop: int) -> list:
        """Per column: True/False for the checked ones, None for the others."""
        flags: list = [None] * ncols
        if self.words is None or stop - start < 2:
            return flags
        from . import _kernels

        out = np.empty(len(self.columns), np.bool_)
        _kernels.constant_fields(self.words[start:stop], self.offsets, self.sizes, out)
        for i, constant in zip(self.columns, out.tolist(), strict=True):
            flags[i] = constant
        return flags


def encode_tiles(
    storage: list[Callable[[slice], np.ndarray] | Field],
    nrows: int,
    algorithms: list[str],
    tile_rows: int,
    rows: np.ndarray | None = None,
) -> tuple[np.ndarray, list[bytes]]:
    """Compress each column of each tile; return (descriptors (ntiles, ncols, 2), blocks).

    ``storage[i]`` is column i as a :class:`Field` of a structured array (read in place:
    the codec takes the tile's values out, byte-swaps and shuffles them in one pass), or a
    function giving its storage values of a slice of rows. Columns are converted tile by
    tile: a tile of a structured array stays in cache while its columns are taken out,
    where whole-column conversion streams the table from memory once per column. ``rows``
    is the structured array the Fields are columns of, if any.
    """
    ntiles = -(-nrows // tile_rows)
    codecs = [ALGORITHMS[a]() for a in algorithms]
    fields = [s if isinstance(s, Field) else None for s in storage]
    keys = [(type(c).__name__, tuple(sorted(vars(c).items()))) for c in codecs]
    constant = _ConstantColumns(rows, fields, codecs)

    def one_tile(t: int) -> list[bytes]:
        a, b = t * tile_rows, min((t + 1) * tile_rows, nrows)
        flags = constant.of_tile(len(codecs), a, b)
        return [
            c.encode(get(slice(a, b)).reshape(-1))
            if f is None
            else _encode_field(c, k, f, a, b, const)
            for c, k, get, f, const in zip(codecs, keys, storage, fields, flags, strict=True)
        ]

    tiles = list(_pool_map(one_tile, list(range(ntiles))))
    blocks = [b for tile in tiles for b in tile]
    lengths = np.array([len(b) for b in blocks], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]) if len(blocks) else lengths
    desc = np.stack([lengths, offsets], axis=-1).reshape(ntiles, len(storage), 2)
    return desc, blocks


def descriptor_bytes(desc: np.ndarray) -> bytes:
    """The 1QB descriptor table (one row per tile) as big-endian bytes."""
    return desc.astype(">i8").tobytes()


def read_descriptors(fd: int, hdu: HDU, layout: Layout, ctx: dict) -> np.ndarray:
    """The (ntiles, ncols, 2) int64 descriptors of a ZTABLE HDU, validated."""
    header = hdu.header
    ntiles, naxis1 = header.get("NAXIS2"), header.get("NAXIS1")
    if ntiles != -(-layout.nrows // layout.tile_rows):
        raise CodecError(f"NAXIS2={ntiles} does not match ZNAXIS2/ZTILELEN", **ctx)
    kinds = []
    for i, col in enumerate(layout.columns, 1):
        try:
            d = parse_tform(col.name, str(header.get(f"TFORM{i}", "")))
        except ColumnFormatError as exc:
            raise CodecError(f"bad compressed TFORM: {exc}", **ctx, column=col.name) from exc
        if not d.is_vla or d.vla_code != "B":
            raise CodecError(
                "compressed column is not a 1QB/1PB byte array", **ctx, column=col.name
            )
        kinds.append(d)
    if naxis1 != sum(k.nbytes for k in kinds):
        raise CodecError(f"NAXIS1={naxis1} does not match the 1QB/1PB columns", **ctx)
    raw = pread_exact(fd, naxis1 * ntiles, hdu.data_start, ctx)
    rec = np.frombuffer(raw, dtype=_desc_dtype(kinds, naxis1))
    desc = np.empty((ntiles, len(kinds), 2), dtype=np.int64)
    for i in range(len(kinds)):
        desc[:, i, :] = rec[f"f{i}"]
    return desc


def _desc_dtype(kinds: list[Column], naxis1: int) -> np.dtype:
    formats = [(">i8" if k.code == "Q" else ">i4", (2,)) for k in kinds]
    offsets = np.cumsum([0] + [k.nbytes for k in kinds])[:-1].tolist()
    return np.dtype(
        {
            "names": [f"f{i}" for i in range(len(kinds))],
            "formats": formats,
            "offsets": offsets,
            "itemsize": naxis1,
        }
    )


def heap_bounds(hdu: HDU, layout_ntiles_bytes: int, ctx: dict) -> tuple[int, int]:
    """(absolute heap start, absolute end of the data unit)."""
    theap = hdu.header.get("THEAP", layout_ntiles_bytes)
    if not isinstance(theap, int) or theap < layout_ntiles_bytes or theap > hdu.data_size:
        raise CodecError(f"THEAP={theap!r} is outside the data unit", **ctx)
    return hdu.data_start + theap, hdu.data_start + hdu.data_size


def read_tiles(
    fd: int, hdu: HDU, layout: Layout, columns: list[Column], start: int, stop: int, ctx: dict
) -> np.ndarray:
    """Rows [start, stop) of the selected columns, decompressing only the tiles needed."""
    out = np.empty(stop - start, dtype=output_dtype(columns))
    if stop <= start or not columns:
        return out
    desc = read_descriptors(fd, hdu, layout, ctx)
    heap_start, data_end = heap_bounds(hdu, hdu.header["NAXIS1"] * len(desc), ctx)
    L = layout.tile_rows
    tiles = range(start // L, (stop - 1) // L + 1)
    cols = [_column_plan(layout, c, out) for c in columns]
    jobs = [(t, *plan) for t in tiles for plan in cols]
    fetch = _Fetcher(fd, desc, [(t, i) for t, i, *_ in jobs], heap_start, data_end, ctx, layout)

    def decode(job: tuple) -> np.ndarray | None:
        t, i, col, codec, field = job
        nr = min(L, layout.nrows - t * L)
        cctx = dict(ctx, column=col.name, tile=t)
        target = None
        if field is not None and start <= t * L and t * L + nr <= stop:
            target = field[t * L - start : t * L - start + nr]  # decode straight into out
        return decode_cell(
            fetch(t, i), layout.algorithms[i], col, nr, cctx, fetch, target=target, codec=codec
        )

    for first, end in fetch.groups(settings.READ_BYTES):
        group = jobs[first:end]
        for (t, _, col, *_), values in zip(group, _pool_map(decode, group), strict=True):
            if values is not None:
                a, b = max(start, t * L), min(stop, (t + 1) * L)
                out[col.name][a - start : b - start] = values[a - t * L : b - t * L]
    return out


def _column_plan(layout: Layout, col: Column, out: np.ndarray) -> tuple:
    """(index, column, codec instance or None, 2-D storage view of the output field or None),
    worked out once per column rather than once per tile."""
    i = layout.columns.index(col)
    codec = ALGORITHMS.get(layout.algorithms[i])
    field = None
    if col.direct:
        field = out[col.name]
        field = field.reshape(len(out), col.count) if field.ndim == 2 else field[:, None]
    return i, col, codec() if codec is not None else None, field


class _Fetcher:
    """Reads heap blocks, a group of whole tiles at a time (:meth:`groups`): each group's
    blocks in one read into a reused buffer when they lie densely in the heap, else each
    block on its own. A few MB per read keep the compressed bytes in cache until they are
    decoded, and spare a read of the whole table the page faults of a heap-sized buffer."""

    def __init__(self, fd, desc, cells, heap_start, data_end, ctx, layout) -> None:
        self.fd, self.desc, self.heap_start, self.ctx = fd, desc, heap_start, ctx
        self.data_end, self.layout, self.span, self.base = data_end, layout, None, 0
        self.buf = np.empty(0, dtype=np.uint8)
        t_idx, i_idx = np.array(cells, dtype=np.int64).reshape(-1, 2).T
        lens, offs = desc[t_idx, i_idx, 0], desc[t_idx, i_idx, 1]
        bad = (lens < 0) | (offs < 0) | (heap_start + offs + lens > data_end)
        if bad.any():
            k = int(np.argmax(bad))
            raise CodecError(
                f"descriptor (length {lens[k]}, offset {offs[k]}) points outside the heap",
                **ctx,
                column=layout.columns[i_idx[k]].name,
                tile=int(t_idx[k]),
            )
        self.lens, self.offs, self.tiles = lens, offs, t_idx

    def groups(self, nbytes: int) -> Iterator[tuple[int, int]]:
        """Ranges [a, b) of the cells (in tile order), whole tiles of about ``nbytes``
        compressed bytes each (at least one tile); each group's blocks are read before it
        is yielded and stay valid until the next one is asked for."""
        n = len(self.lens)
        if n == 0:
            return
        edges = np.concatenate([[0], np.flatnonzero(np.diff(self.tiles)) + 1, [n]])
        cum = np.concatenate([[0], np.cumsum(self.lens)])[edges]
        k = 0
        while k < len(edges) - 1:
            k2 = max(int(np.searchsorted(cum, cum[k] + nbytes, side="right")) - 1, k + 1)
            a, b = int(edges[k]), int(edges[k2])
            self._read_span(a, b)
            yield a, b
            k = k2

    def _read_span(self, a: int, b: int) -> None:
        lens, offs = self.lens[a:b], self.offs[a:b]
        lo, hi = int(offs.min()), int((offs + lens).max())
        self.span = None
        if lens.sum() * 2 >= hi - lo:
            if len(self.buf) < hi - lo:
                self.buf = np.empty(hi - lo, dtype=np.uint8)
            self.span, self.base = self.buf[: hi - lo], lo
            pread_into(self.fd, self.span, self.heap_start + lo, self.ctx)

    def __call__(self, t: int, i: int) -> bytes | np.ndarray:
        length, offset = int(self.desc[t, i, 0]), int(self.desc[t, i, 1])
        return self.at(offset, length)

    def at(self, offset: int, length: int) -> bytes | np.ndarray:
        """Heap bytes [offset, offset + length) (offset from the heap start): a uint8 view
        of the span read up front, or bytes read on their own."""
        span = self.span
        if span is not None and self.base <= offset and offset + length <= self.base + len(span):
            return span[offset - self.base : offset - self.base + length]
        return pread_exact(self.fd, length, self.heap_start + offset, self.ctx)


def decode_cell(
    buf: bytes,
    algorithm: str,
    col: Column,
    nr: int,
    ctx: dict,
    fetch: _Fetcher,
    target: np.ndarray | None = None,
    codec=None,
) -> np.ndarray | None:
    """Decode one column of one tile.

    With ``target`` (a (nr, count) view of the output in storage form) the values are
    decoded straight into it and None is returned; otherwise the user form is returned.
    ``codec`` is an instance of the algorithm's class to reuse (else one is made).
    """
    if codec is None:
        cls = ALGORITHMS.get(algorithm)
        if cls is None:
            raise CodecError(f"unknown compression algorithm {algorithm!r}", **ctx)
        codec = cls()
    if col.is_vla:
        return _decode_vla_cell(buf, codec, col, nr, ctx, fetch)
    try:
        if target is not None:
            codec.decode_into(buf, target)
            return None
        values = codec.decode(buf, dtype=col.storage_dtype, count=nr * col.count)
    except DecodeError as exc:
        raise CodecError(str(exc), **ctx) from exc
    return storage_to_user(col, values.reshape(nr, col.count))


def _decode_vla_cell(
    buf: bytes, codec, col: Column, nr: int, ctx: dict, fetch: _Fetcher
) -> np.ndarray:
    """Variable-length arrays of one tile (fpack's layout, reference section 5)."""
    dsize = 8 if col.code == "P" else 16
    try:
        raw = Gzip1().decode(buf, dtype=np.dtype("u1"), count=nr * (dsize + 16)).tobytes()
    except DecodeError as exc:
        raise CodecError(f"VLA descriptor block: {exc}", **ctx) from exc
    old = np.frombuffer(raw[: nr * dsize], dtype=">i4" if dsize == 8 else ">i8").reshape(nr, 2)
    new = np.frombuffer(raw[nr * dsize :], dtype=">i8").reshape(nr, 2)
    elem = Column(col.name, col.vla_code, 1, tzero=col.tzero, tscal=col.tscal)
    out = np.empty(nr, dtype=object)
    for r in range(nr):  # each array is compressed on its own: one step per array
        nelem, clen, off = int(old[r, 0]), int(new[r, 0]), int(new[r, 1])
        out[r] = _decode_one_vla(elem, codec, nelem, clen, off, ctx, fetch)
    return out


def _decode_one_vla(
    elem: Column, codec, nelem: int, clen: int, off: int, ctx: dict, fetch: _Fetcher
):
    width = elem.storage_dtype.itemsize
    count = (nelem + 7) // 8 if elem.code == "X" else nelem
    if nelem < 0 or clen < 0 or off < 0 or off + clen > fetch.data_end - fetch.heap_start:
        raise CodecError("VLA descriptor points outside the heap", **ctx)
    if count * width > fetch.layout.heap_size:
        raise CodecError(f"VLA of {nelem} elements does not fit in ZPCOUNT", **ctx)
    data = bytes(fetch.at(off, clen)) if clen else b""
    if clen == count * width:
        return vla_values(elem, data, nelem)
    try:
        values = codec.decode(data, dtype=elem.storage_dtype, count=count)
    except (DecodeError, zlib_ng.error) as exc:
        raise CodecError(f"variable-length array: {exc}", **ctx) from exc
    be = values.astype(elem.storage_dtype.newbyteorder(">")).tobytes()
    return vla_values(elem, be, nelem)
