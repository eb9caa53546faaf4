"""A small FITS header card parser and writer (no astropy in the read/write path).

Only the fixed-format subset dvo needs: logical, integer, float and string values, blank
keywords, COMMENT/HISTORY commentary cards. Long strings (CONTINUE) and HIERARCH keywords are
refused when writing and kept as raw text when reading.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

CARD = 80
BLOCK = 2880
Value = bool | int | float | str | None

_KEY_RE = re.compile(r"^[A-Z0-9_-]{0,8}$")
_INT_RE = re.compile(r"^[+-]?\d+$")
_FLOAT_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([EeDd][+-]?\d+)?$")
COMMENTARY = ("COMMENT", "HISTORY", "")


class HeaderError(ValueError):
    """A header card cannot be parsed or formatted (translated to CodecError by callers)."""


@dataclass(frozen=True)
class Card:
    """One header card: keyword, value and comment."""

    key: str
    value: Value = None
    comment: str = ""


class Header(Mapping):
    """An ordered mapping keyword -> value, with ``comments`` keyword -> comment.

    Commentary cards (COMMENT, HISTORY) are kept in ``cards`` in order; the mapping view
    returns the first card of a repeated keyword.

    Examples
    --------
    >>> h = Header([Card("EXTNAME", "CATALOG", "name")])
    >>> h["EXTNAME"], h.comments["EXTNAME"]
    ('CATALOG', 'name')
    """

    def __init__(self, cards: Iterable[Card] = ()) -> None:
        self.cards: list[Card] = list(cards)

    def _index(self, key: str) -> int:
        key = key.upper()
        cards = self.cards
        stamp = (id(cards), len(cards))
        if getattr(self, "_stamp", None) != stamp:  # (re)build the first-position index
            first: dict[str, int] = {}
            for i, card in enumerate(cards):
                first.setdefault(card.key, i)
            self._first, self._stamp = first, stamp
        i = self._first.get(key)
        if i is None:
            raise KeyError(key)
        if cards[i].key == key:
            return i
        for i, card in enumerate(cards):  # a card was replaced in place since: scan
            if card.key == key:
                return i
        raise KeyError(key)

    def __getitem__(self, key: str) -> Value:
        return self.cards[self._index(key)].value

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for card in self.cards:
            if card.key not in seen:
                seen.add(card.key)
                yield card.key

    def __len__(self) -> int:
        return len({c.key for c in self.cards})

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and any(c.key == key.upper() for c in self.cards)

    @property
    def comments(self) -> dict[str, str]:
        """Keyword -> comment (first card of each keyword)."""
        out: dict[str, str] = {}
        for card in self.cards:
            out.setdefault(card.key, card.comment)
        return out

    def set(self, key: str, value: Value, comment: str | None = None) -> None:
        """Replace the value of ``key`` in place, or append a new card."""
        key = key.upper()
        try:
            i = self._index(key)
        except KeyError:
            self.cards.append(Card(key, value, comment or ""))
            return
        old = self.cards[i]
        self.cards[i] = Card(key, value, old.comment if comment is None else comment)

    def remove(self, key: str) -> None:
        """Remove every card with keyword ``key`` (no error if absent)."""
        self.cards = [c for c in self.cards if c.key != key.upper()]

    def copy(self) -> Header:
        """A shallow copy."""
        return Header(self.cards)

    def __repr__(self) -> str:
        return "\n".join(format_card(c).rstrip() for c in self.cards)


def format_value(value: Value) -> str:
    """Format a value the fixed-format way (right-justified to column 30 for numbers)."""
    if isinstance(value, bool):
        return f"{'T' if value else 'F':>20}"
    if isinstance(value, int):
        return f"{value:>20d}"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise HeaderError(f"cannot write non-finite float {value!r} in a header")
        text = repr(value).upper()
        if "." not in text and "E" not in text:
            text += ".0"
        elif "." not in text:
            mant, exp = text.split("E")
            text = f"{mant}.0E{exp}"
        return f"{text:>20}"
    if isinstance(value, str):
        if not value.isascii() or not value.isprintable():
            raise HeaderError(f"header string {value!r} is not printable ASCII")
        quoted = "'" + f"{value.replace(chr(39), chr(39) * 2):<8}" + "'"
        if len(quoted) > 70:
            raise HeaderError(f"header string too long ({len(value)} characters)")
        return quoted
    if value is None:
        return ""
    raise HeaderError(f"unsupported header value type {type(value).__name__}")


_FORMATTED: dict[tuple, str] = {}  # card -> its 80 characters (tables repeat their cards)


def format_card(card: Card) -> str:
    """Format one card as exactly 80 ASCII characters.

    A table's header repeats from file to file (TTYPEn, TFORMn, ZCTYPn... of the same
    schema), so formatted cards are remembered: addstar's checkpoint formats ~110k cards.
    Float values are not (0.0 and -0.0 are equal keys but different cards), and the type
    is part of the key (True == 1)."""
    value = card.value
    if isinstance(value, float):
        return _format_card(card)
    key = (card.key, type(value), value, card.comment)
    text = _FORMATTED.get(key)
    if text is None:
        text = _format_card(card)
        if len(_FORMATTED) >= 1 << 16:  # a bound for long-lived processes
            _FORMATTED.clear()
        _FORMATTED[key] = text
    return text


def _format_card(card: Card) -> str:
    key = card.key.upper()
    if not _KEY_RE.match(key):
        raise HeaderError(f"invalid header keyword {card.key!r}")
    if key in COMMENTARY:
        text = f"{key:<8}{card.value if card.value is not None else card.comment}"
        return f"{text[:CARD]:<80}"
    text = f"{key:<8}= {format_value(card.value):<20}"
    if card.comment:
        text += f" / {card.comment}"
    if len(text) > CARD and len(text) - len(card.comment) - 3 > CARD:
        raise HeaderError(f"header card for {key} is longer than 80 characters")
    if not text.isascii():
        raise HeaderError(f"header card for {key} is not ASCII")
    return f"{text[:CARD]:<80}"


def format_header(cards: Iterable[Card]) -> bytes:
    """Cards + END, padded with blanks to a multiple of 2880 bytes."""
    text = "".join(format_card(c) for c in cards) + f"{'END':<80}"
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")


def _parse_string(text: str) -> tuple[str, str]:
    """Parse a quoted string value at the start of ``text``; return (value, rest)."""
    i, out = 1, []
    while True:
        j = text.find("'", i)
        if j < 0:
            raise HeaderError("unterminated string value")
        out.append(text[i:j])
        if text[j + 1 : j + 2] == "'":
            out.append("'")
            i = j + 2
            continue
        return "".join(out).rstrip(), text[j + 1 :]


def parse_value(text: str) -> tuple[Value, str]:
    """Parse the value field of a card; return (value, comment)."""
    stripped = text.strip()
    if stripped.startswith("'"):
        value, rest = _parse_string(stripped)
        rest = rest.strip()
        return value, rest[1:].strip() if rest.startswith("/") else ""
    raw, _, comment = stripped.partition("/")
    raw, comment = raw.strip(), comment.strip()
    if raw == "T" or raw == "F":
        return raw == "T", comment
    if _INT_RE.match(raw):
        return int(raw), comment
    if _FLOAT_RE.match(raw):
        return float(raw.replace("D", "E").replace("d", "e")), comment
    if raw == "":
        return None, comment
    return raw, comment  # complex or non-standard values are kept as text


def parse_card(text: str) -> Card:
    """Parse one 80-character card."""
    key = text[:8].strip().upper()
    if text[8:10] != "= " or key in COMMENTARY or key == "CONTINUE":
        return Card(key, None, text[8:].rstrip())
    value, comment = parse_value(text[10:])
    return Card(key, value, comment)


def parse_header_block(data: bytes) -> tuple[Header, bool]:
    """Parse cards from whole 2880-byte blocks; return (header, END seen)."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise HeaderError("header contains non-ASCII bytes") from exc
    cards = []
    for i in range(0, len(text), CARD):
        chunk = text[i : i + CARD]
        if chunk[:8] == "END     " and not chunk[8:].strip():
            return Header(cards), True
        card = parse_card(chunk)
        if card.key or card.comment:
            cards.append(card)
    return Header(cards), False


def as_cards(header: Mapping | Iterable | None) -> list[Card]:
    """Normalise user keywords (dict, Header, or (key, value[, comment]) tuples) to cards."""
    if header is None:
        return []
    if isinstance(header, Header):
        return list(header.cards)
    if isinstance(header, Mapping):
        return [Card(str(k).upper(), _plain(v), "") for k, v in header.items()]
    cards = []
    for item in header:
        if isinstance(item, Card):
            cards.append(item)
            continue
        key, value, *rest = item
        cards.append(Card(str(key).upper(), value, str(rest[0]) if rest else ""))
    return [Card(c.key, _plain(c.value), c.comment) for c in cards]


def _plain(value: object) -> Value:
    """NumPy scalars -> Python scalars."""
    item = getattr(value, "item", None)
    return item() if callable(item) else value  # type: ignore[return-value]
