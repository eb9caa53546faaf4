"""Table headers <-> column lists, and the ZTABLE header translation (table-driven)."""

from __future__ import annotations

from dataclasses import dataclass

from dvo.errors import CodecError

from . import settings
from ._columns import Column, ColumnFormatError, parse_tform, tform_of
from ._header import Card, Header

# compressed keyword -> keyword of the uncompressed table it stands for
_Z_TO_TABLE = {"ZNAXIS1": "NAXIS1", "ZNAXIS2": "NAXIS2", "ZPCOUNT": "PCOUNT"}
_Z_RENAMED = {"ZHECKSUM": "CHECKSUM", "ZDATASUM": "DATASUM"}
_Z_DROPPED = ("ZTABLE", "ZTILELEN", "ZHEAPPTR", "ZTHEAP", "CHECKSUM", "DATASUM", "THEAP")
_Z_COMMENTS = {"ZTABLE": "this is a compressed table", "ZTILELEN": "number of rows in each tile"}


@dataclass
class Layout:
    """What a table HDU holds, in uncompressed terms."""

    columns: list[Column]
    nrows: int
    row_bytes: int
    heap_size: int
    compressed: bool
    tile_rows: int = 0
    algorithms: tuple[str, ...] = ()


def _get(header: Header, key: str, kind: type | tuple, ctx: dict, default=None):
    value = header.get(key, default)
    if value is None and default is None:
        raise CodecError(f"keyword {key} is missing", **ctx)
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise CodecError(f"keyword {key} has the wrong type ({value!r})", **ctx)
    return value


def _column(header: Header, i: int, compressed: bool, ctx: dict) -> Column:
    name = header.get(f"TTYPE{i}") or f"col{i}"
    tform = _get(header, f"ZFORM{i}" if compressed else f"TFORM{i}", str, ctx)
    extra = {
        "tzero": header.get(f"TZERO{i}"),
        "tscal": header.get(f"TSCAL{i}"),
        "unit": header.get(f"TUNIT{i}"),
        "null": header.get(f"TNULL{i}"),
    }
    for key in ("tzero", "tscal"):
        if extra[key] is not None and (isinstance(extra[key], bool | str)):
            raise CodecError(f"T{key[1:].upper()}{i} is not a number", **ctx, column=name)
    try:
        return parse_tform(str(name).strip(), tform, **extra)
    except ColumnFormatError as exc:
        raise CodecError(str(exc), **ctx, column=name) from exc


def table_layout(header: Header, ctx: dict) -> Layout:
    """Read the column list and sizes of a (plain or ZTABLE) BINTABLE header."""
    if str(header.get("XTENSION", "")).strip() != "BINTABLE":
        raise CodecError("HDU is not a BINTABLE", **ctx)
    compressed = header.get("ZTABLE") is True
    tfields = _get(header, "TFIELDS", int, ctx)
    if not 0 <= tfields <= 999:
        raise CodecError(f"TFIELDS={tfields} out of range", **ctx)
    columns = [_column(header, i, compressed, ctx) for i in range(1, tfields + 1)]
    if len({c.name for c in columns}) != len(columns):
        raise CodecError("duplicate column names", **ctx)
    p = "Z" if compressed else ""
    layout = Layout(
        columns,
        _get(header, f"{p}NAXIS2", int, ctx),
        _get(header, f"{p}NAXIS1", int, ctx),
        _get(header, f"{p}PCOUNT", int, ctx, 0),
        compressed,
    )
    if layout.nrows < 0 or layout.row_bytes != sum(c.nbytes for c in columns):
        raise CodecError(f"{p}NAXIS1={layout.row_bytes} does not match the column formats", **ctx)
    if compressed:
        _check_expansion(header, layout, ctx)
        layout.tile_rows = _get(header, "ZTILELEN", int, ctx)
        if layout.tile_rows <= 0:
            raise CodecError(f"ZTILELEN={layout.tile_rows} must be positive", **ctx)
        layout.algorithms = tuple(
            _get(header, f"ZCTYP{i}", str, ctx, "GZIP_2").strip() for i in range(1, tfields + 1)
        )
    return layout


def _check_expansion(header: Header, layout: Layout, ctx: dict) -> None:
    """Refuse ZNAXIS1 * ZNAXIS2 absurdly larger than the compressed data (corrupt keywords)."""
    stored = _get(header, "NAXIS1", int, ctx) * _get(header, "NAXIS2", int, ctx)
    stored += _get(header, "PCOUNT", int, ctx, 0)
    if layout.row_bytes * layout.nrows > max(settings.MAX_EXPANSION * stored, 1 << 26):
        raise CodecError(
            f"ZNAXIS1 x ZNAXIS2 = {layout.row_bytes * layout.nrows} bytes cannot "
            f"come from {stored} compressed bytes",
            **ctx,
        )


def uncompressed_header(header: Header) -> Header:
    """The header of the table a ZTABLE HDU stands for (user keywords kept in order)."""
    if header.get("ZTABLE") is not True:
        return header.copy()
    cards = []
    for card in header.cards:
        key = card.key
        if key in ("NAXIS1", "NAXIS2", "PCOUNT") and f"Z{key}" in header:
            cards.append(Card(key, header[f"Z{key}"], card.comment))
        elif key.startswith("TFORM") and f"Z{key[1:]}" in header:
            cards.append(Card(key, header[f"Z{key[1:]}"], card.comment))
        elif key in _Z_RENAMED:
            cards.append(Card(_Z_RENAMED[key], card.value, card.comment))
        elif not (key in _Z_DROPPED or key in _Z_TO_TABLE or key.startswith(("ZFORM", "ZCTYP"))):
            cards.append(card)
    return Header(cards)


def check_user_cards(cards: list[Card], ctx: dict) -> None:
    """Refuse user keywords that would contradict the table layout."""
    for card in cards:
        key = card.key
        if key in settings.RESERVED_KEYWORDS or key.startswith(settings.RESERVED_PREFIXES):
            raise CodecError(f"keyword {key} is set by the writer, not through header=", **ctx)


def table_cards(
    columns: list[Column], nrows: int, extname: str | None, user: list[Card]
) -> list[Card]:
    """Header cards of an uncompressed BINTABLE (structure, columns, EXTNAME, user keys)."""
    cards = [
        Card("XTENSION", "BINTABLE", "binary table extension"),
        Card("BITPIX", 8, "array data type"),
        Card("NAXIS", 2, "number of array dimensions"),
        Card("NAXIS1", sum(c.nbytes for c in columns), "length of dimension 1"),
        Card("NAXIS2", nrows, "length of dimension 2"),
        Card("PCOUNT", 0, "number of group parameters"),
        Card("GCOUNT", 1, "number of groups"),
        Card("TFIELDS", len(columns), "number of table fields"),
    ]
    for i, col in enumerate(columns, 1):
        cards += [Card(f"TTYPE{i}", col.name), Card(f"TFORM{i}", tform_of(col))]
        if col.unit is not None:
            cards.append(Card(f"TUNIT{i}", col.unit))
        if col.null is not None:
            cards.append(Card(f"TNULL{i}", col.null))
        if col.tzero is not None:
            cards.append(Card(f"TZERO{i}", col.tzero))
    if extname is not None:
        cards.append(Card("EXTNAME", extname, "extension name"))
    return cards + user


def compressed_cards(
    table: list[Card],
    *,
    ntiles: int,
    heap_size: int,
    maxlens: list[int],
    algorithms: list[str],
    tile_rows: int,
) -> list[Card]:
    """Translate uncompressed table cards to the ZTABLE header, in cfitsio's order."""
    ncols = len(maxlens)
    values = {"NAXIS1": 16 * ncols, "NAXIS2": ntiles, "PCOUNT": heap_size}
    out, zcards, zforms = (
        [],
        [
            Card("ZTABLE", True, _Z_COMMENTS["ZTABLE"]),
            Card("ZTILELEN", tile_rows, _Z_COMMENTS["ZTILELEN"]),
        ],
        [],
    )
    for card in table:
        if card.key in values:
            zcards.append(Card(f"Z{card.key}", card.value, card.comment))
            out.append(Card(card.key, values[card.key], card.comment))
        elif card.key.startswith("TFORM"):
            n = int(card.key[5:])
            zforms.append(Card(f"ZFORM{n}", card.value))
            out.append(Card(card.key, f"1QB({maxlens[n - 1]})", card.comment))
        else:
            out.append(card)
    ztypes = [
        Card(f"ZCTYP{i}", a, "compression algorithm for column")
        for i, a in enumerate(algorithms, 1)
    ]
    return out + zcards + zforms + ztypes
