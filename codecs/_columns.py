"""Binary table columns: TFORM parsing, numpy dtypes, and storage <-> user conversions.

A column has a *storage* form (what FITS stores: flat native-endian integers, floats or
bytes, before byte-swapping) and a *user* form (what :func:`read_table` returns: bool for L,
unsigned ints for TZERO-offset columns, ``S`` bytes for A, bool bit arrays for X).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

_TFORM_RE = re.compile(r"^\s*(\d*)([LXBIJKAEDCMPQ])(.*?)\s*$")
_VLA_RE = re.compile(r"^([LXBIJKAEDCM])(?:\((\d+)\))?$")

# code -> (storage dtype, bytes per element)
STORAGE = {
    "L": ("u1", 1),
    "X": ("u1", 1),
    "B": ("u1", 1),
    "A": ("u1", 1),
    "I": ("i2", 2),
    "J": ("i4", 4),
    "K": ("i8", 8),
    "E": ("f4", 4),
    "D": ("f8", 8),
    "C": ("c8", 8),
    "M": ("c16", 16),
}
# code -> TZERO that maps the stored signed type onto the unsigned one (and back)
UNSIGNED_ZERO = {"B": -128, "I": 32768, "J": 2**31, "K": 2**63}
_UNSIGNED_DTYPE = {"B": "i1", "I": "u2", "J": "u4", "K": "u8"}
_SIGN_BIT = {"B": 0x80, "I": 0x8000, "J": 0x80000000, "K": 0x8000000000000000}


class ColumnFormatError(ValueError):
    """A TFORM or an input array cannot be mapped (translated to CodecError by callers)."""


@dataclass(frozen=True)
class Column:
    """One binary-table column as described by its header keywords."""

    name: str
    code: str  # L X B I J K A E D C M, or P/Q for variable-length arrays
    repeat: int
    vla_code: str = ""  # element type of a P/Q column
    vla_max: int = 0
    tzero: float | int | None = None
    tscal: float | int | None = None
    unit: str | None = None
    null: int | None = None

    @property
    def is_vla(self) -> bool:
        return self.code in "PQ"

    @property
    def elem_code(self) -> str:
        """The element type code (the VLA element type for P/Q)."""
        return self.vla_code if self.is_vla else self.code

    @property
    def nbytes(self) -> int:
        """Bytes per row in the table (descriptor size for P/Q)."""
        if self.code == "P":
            return 8 * (self.repeat > 0)
        if self.code == "Q":
            return 16 * (self.repeat > 0)
        if self.code == "X":
            return (self.repeat + 7) // 8
        return self.repeat * STORAGE[self.code][1]

    @property
    def count(self) -> int:
        """Storage elements per row (bytes for X, characters for A)."""
        return self.nbytes // STORAGE[self.code][1] if not self.is_vla else 1

    @property
    def storage_dtype(self) -> np.dtype:
        """Native dtype of one stored element."""
        return np.dtype(STORAGE[self.elem_code][0])

    @property
    def unsigned(self) -> bool:
        """True if TZERO maps the stored signed integers to unsigned ones."""
        zero = UNSIGNED_ZERO.get(self.elem_code)
        return zero is not None and self.tzero == zero and self.tscal in (None, 1)

    @property
    def scaled(self) -> bool:
        """True for a general (non-unsigned) TSCAL/TZERO scaling of a numeric column."""
        if self.unsigned or self.elem_code in "LXA":
            return False
        return (self.tzero not in (None, 0)) or (self.tscal not in (None, 1))

    @property
    def direct(self) -> bool:
        """True if the user form is the storage form (plain numbers, no TZERO/TSCAL)."""
        return self.code in "BIJKEDCM" and not self.unsigned and not self.scaled

    @property
    def user_dtype(self) -> tuple:
        """The (dtype, shape) of the field :func:`read_table` returns."""
        if self.is_vla:
            return (np.dtype(object), ())
        code, r = self.code, self.repeat
        if code == "A":
            return (np.dtype(f"S{max(r, 1)}"), ())
        if code in "LX":
            base = np.dtype(bool)
        elif self.unsigned:
            base = np.dtype(_UNSIGNED_DTYPE[code])
        elif self.scaled:
            base = np.dtype("f8")
        else:
            base = self.storage_dtype
        return (base, () if r == 1 and code != "X" else (r,))


def parse_tform(name: str, tform: str, **extra) -> Column:
    """Parse a TFORM value such as ``'14E'``, ``'20A'``, ``'PJ(6)'`` or ``'1QB(757)'``."""
    m = _TFORM_RE.match(tform)
    if not m:
        raise ColumnFormatError(f"unsupported TFORM {tform!r} for column {name!r}")
    repeat = int(m.group(1)) if m.group(1) else 1
    code, rest = m.group(2), m.group(3)
    if code in "PQ":
        v = _VLA_RE.match(rest)
        if not v or repeat > 1:
            raise ColumnFormatError(f"unsupported TFORM {tform!r} for column {name!r}")
        return Column(name, code, repeat, v.group(1), int(v.group(2) or 0), **extra)
    if rest and not (code == "A" and rest.isdigit()):
        raise ColumnFormatError(f"unsupported TFORM {tform!r} for column {name!r}")
    return Column(name, code, repeat, **extra)


def tform_of(col: Column) -> str:
    """TFORM text of a fixed-width column."""
    return f"{col.repeat}{col.code}"


def row_dtype(columns: list[Column], row_bytes: int) -> np.dtype:
    """Big-endian structured dtype of one raw table row (P/Q as descriptor pairs)."""
    names, formats, offsets, off = [], [], [], 0
    for i, col in enumerate(columns):
        if col.nbytes:
            names.append(f"f{i}")
            formats.append(_raw_format(col))
            offsets.append(off)
        off += col.nbytes
    if off > row_bytes:
        raise ColumnFormatError(f"columns need {off} bytes per row, NAXIS1 is {row_bytes}")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": row_bytes})


def _raw_format(col: Column) -> tuple | str:
    if col.code == "P":
        return (">i4", (2,))
    if col.code == "Q":
        return (">i8", (2,))
    base = col.storage_dtype.newbyteorder(">") if col.storage_dtype.itemsize > 1 else "u1"
    return (base, (col.count,))


def storage_to_user(col: Column, raw: np.ndarray) -> np.ndarray:
    """Turn stored elements of shape (nrows, count) into the user form of the column."""
    code = col.code
    if code == "A":
        return np.ascontiguousarray(raw).view(f"S{col.count}").reshape(-1)
    if code == "L":
        out = raw == ord("T")
    elif code == "X":
        out = np.unpackbits(raw, axis=1)[:, : col.repeat].astype(bool)
        return out
    elif col.unsigned and code == "B":
        out = (raw ^ np.uint8(0x80)).view("i1")
    elif col.unsigned:
        udt = np.dtype(_UNSIGNED_DTYPE[code])
        out = raw.view(udt) ^ udt.type(_SIGN_BIT[code])
    elif col.scaled:
        out = raw * float(col.tscal if col.tscal is not None else 1) + float(col.tzero or 0)
    else:
        out = raw
    return out.reshape(-1) if col.repeat == 1 else out


def user_to_storage(col: Column, values: np.ndarray) -> np.ndarray:
    """Turn a user column (as given to :func:`write_table`) into (nrows, count) storage."""
    n = len(values)
    code = col.code
    if code == "A":
        return np.ascontiguousarray(values, dtype=f"S{col.count}").view("u1").reshape(n, col.count)
    if code == "L":
        return np.where(np.asarray(values, dtype=bool), np.uint8(84), np.uint8(70)).reshape(
            n, col.count
        )
    if code == "X":
        return np.packbits(np.asarray(values, dtype=bool).reshape(n, col.repeat), axis=1)
    arr = np.asarray(values)
    if col.unsigned and code == "B":
        arr = np.asarray(arr, "i1").view("u1") ^ np.uint8(0x80)
    elif col.unsigned:
        udt = np.dtype(_UNSIGNED_DTYPE[code])
        arr = (np.asarray(arr, udt) ^ udt.type(_SIGN_BIT[code])).view(col.storage_dtype)
    return np.ascontiguousarray(arr, dtype=col.storage_dtype).reshape(n, col.count)


def column_for_array(name: str, arr: np.ndarray, unit: str | None, null: int | None) -> Column:
    """Choose the FITS column (code, repeat, TZERO) for a numpy array (rows first)."""
    if arr.ndim not in (1, 2) or (arr.ndim == 2 and arr.dtype.kind in "SU"):
        raise ColumnFormatError(f"column {name!r}: shape {arr.shape} is not 1-D or (n, r)")
    repeat = arr.shape[1] if arr.ndim == 2 else 1
    kind, size = arr.dtype.kind, arr.dtype.itemsize
    base = Column(name, "L", repeat, unit=unit, null=null)
    if kind == "b":
        return base
    if kind in "SU":
        width = size if kind == "S" else size // 4
        return replace(base, code="A", repeat=max(width, 1))
    codes = {
        ("u", 1): "B",
        ("i", 2): "I",
        ("i", 4): "J",
        ("i", 8): "K",
        ("f", 4): "E",
        ("f", 8): "D",
        ("c", 8): "C",
        ("c", 16): "M",
        ("i", 1): "B",
        ("u", 2): "I",
        ("u", 4): "J",
        ("u", 8): "K",
    }
    code = codes.get((kind, size))
    if code is None:
        raise ColumnFormatError(f"column {name!r}: unsupported dtype {arr.dtype}")
    tzero = UNSIGNED_ZERO[code] if (kind == "u") != (code == "B") else None
    return replace(base, code=code, tzero=tzero)


def user_columns(data) -> list[tuple[str, np.ndarray]]:
    """Split a structured array or a dict of arrays into (name, rows-first array) pairs."""
    if isinstance(data, np.ndarray) and data.dtype.names:
        return [(name, data[name]) for name in data.dtype.names]
    if isinstance(data, dict):
        cols = [(str(k), np.asarray(v)) for k, v in data.items()]
        lengths = {len(v) if v.ndim else -1 for _, v in cols}
        if len(lengths) > 1 or -1 in lengths:
            raise ColumnFormatError(f"columns have different lengths: {sorted(lengths)}")
        return cols
    raise ColumnFormatError("data must be a structured numpy array or a dict of arrays")


@dataclass(frozen=True)
class Field:
    """A column of a structured array, read in place (no copy) by the tiled writer.

    ``values`` is the field viewed as native unsigned integers of the storage width (1-D,
    strided, maybe unaligned), or for an A column the (nrows, width) bytes; ``flip`` is
    the sign bit XORed into the values of a TZERO-offset unsigned column (else 0);
    ``offset`` the field's byte offset in its record (-1: unknown).
    """

    values: np.ndarray
    flip: int
    offset: int = -1

    def storage(self, start: int, stop: int) -> np.ndarray:
        """Flat native storage elements of rows [start, stop) (codecs without a fast path)."""
        v = self.values[start:stop]
        return (v ^ v.dtype.type(self.flip) if self.flip else v).reshape(-1)


def field_of(col: Column, data, name: str) -> Field | None:
    """The :class:`Field` of column ``col`` of the structured array ``data``, or None where
    the writer keeps its general path: dict input, non-native byte order, vector, bool,
    complex or scaled columns."""
    if not isinstance(data, np.ndarray) or data.ndim != 1 or data.dtype.names is None:
        return None
    data = np.asarray(data)  # a recarray or masked array: its plain data, as np.asarray gives
    dt = data.dtype.fields[name][0]
    if dt.subdtype is not None or not (dt.isnative or dt.itemsize == 1) or col.scaled:
        return None
    if col.code == "A" and dt.kind == "S" and dt.itemsize == col.count:
        return Field(data[name][:, np.newaxis].view(np.uint8), 0)  # (not checked: offset -1)
    if col.code not in "BIJKED" or col.repeat != 1 or dt.itemsize != col.storage_dtype.itemsize:
        return None
    flip = _SIGN_BIT[col.code] if col.unsigned else 0
    return Field(data[name].view(f"u{dt.itemsize}"), flip, data.dtype.fields[name][1])
