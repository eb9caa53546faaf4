"""Writers for query results: aligned text, CSV, FITS, Parquet, JSON.

Examples
--------
>>> from astropy.table import Table
>>> import io
>>> buf = io.StringIO()
>>> write(Table({"a": [1, 2], "b": [0.5, float("nan")]}), "json", stream=buf)
>>> buf.getvalue()
'[{"a": 1, "b": 0.5}, {"a": 2, "b": null}]\\n'
"""

from __future__ import annotations

import json
import sys

import numpy as np

from dvo.errors import QueryError

__all__ = ["FORMATS", "write"]

FORMATS = ("text", "csv", "fits", "parquet", "json")
_BINARY = ("fits", "parquet")


def _names(table) -> list[str]:
    return list(table.colnames) if hasattr(table, "colnames") else list(table.dtype.names)


def _json_rows(table) -> list[dict]:
    cols = {}
    for name in _names(table):
        v = np.asarray(table[name])
        if v.dtype.kind == "S":
            v = v.astype(str)
        obj = v.astype(object)
        if v.dtype.kind == "f":
            obj[~np.isfinite(v)] = None
        cols[name] = obj.tolist()
    return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _strings(v: np.ndarray) -> np.ndarray:
    """Column values as strings (vectorised): all significant digits of float32/float64."""
    if v.dtype.kind == "S":
        return v.astype(str)
    if v.dtype.kind == "f":
        return np.char.mod("%.7g" if v.dtype.itemsize == 4 else "%.12g", v)
    return v.astype(str)


def _text(table, units: dict[str, str]) -> str:
    """An aligned text table: header, units, rule, rows (right-aligned columns)."""
    cols = []
    for name in _names(table):
        v = np.asarray(table[name])
        if v.ndim > 1:
            continue
        body = _strings(v)
        head = np.array([name, units.get(name, "")])
        width = max(int(np.char.str_len(np.r_[head, body]).max()), 1)
        cols.append(np.char.rjust(np.r_[head, np.array(["-" * width]), body], width))
    if not cols:
        return ""
    lines = cols[0]
    for c in cols[1:]:
        lines = np.char.add(np.char.add(lines, " "), c)
    if not any(units.values()):
        lines = np.delete(lines, 1)
    return "\n".join(lines.tolist()) + "\n"


def _csv(table) -> str:
    names = _names(table)
    cols = [_strings(np.asarray(table[n])) for n in names]
    if not cols:
        return ""
    lines = cols[0]
    for c in cols[1:]:
        lines = np.char.add(np.char.add(lines, ","), c)
    return "\n".join([",".join(names), *lines.tolist()]) + "\n"


def _units_of(table) -> dict[str, str]:
    if not hasattr(table, "colnames"):
        return {}
    return {n: str(table[n].unit) for n in table.colnames if table[n].unit is not None}


def write(table, fmt: str = "text", path=None, *, stream=None, units=None) -> None:
    """Write a table as ``fmt`` to ``path`` (or to ``stream``, default stdout).

    ``table`` is an astropy Table, or a numpy structured array with ``units`` (column ->
    unit); text, CSV and JSON are written without importing astropy (fast command start).

    Raises
    ------
    QueryError
        For an unknown format, or FITS/Parquet without a file.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt in _BINARY and path is None:
        raise QueryError(f"--format {fmt} needs an output file (-o FILE)")
    units = units if units is not None else _units_of(table)
    if fmt in _BINARY and not hasattr(table, "colnames"):
        from dvo.query.engine import to_output

        table = to_output(table, units)
    if fmt == "fits":
        table.write(path, format="fits", overwrite=True)
        return
    if fmt == "parquet":
        _parquet(table, path)
        return
    if fmt == "csv":
        text = _csv(table)
    elif fmt == "json":
        text = json.dumps(_json_rows(table)) + "\n"
    else:
        text = _text(table, units)
    if path is not None:
        with open(path, "w") as fh:
            fh.write(text)
    else:
        (stream or sys.stdout).write(text)


def _parquet(table, path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols, fields = {}, []
    for name in table.colnames:
        v = np.asarray(table[name])
        v = v.astype(str) if v.dtype.kind == "S" else v
        unit = str(table[name].unit) if table[name].unit is not None else None
        cols[name] = pa.array(v)
        fields.append(pa.field(name, cols[name].type, metadata={"unit": unit} if unit else None))
    pq.write_table(pa.table(cols, schema=pa.schema(fields)), path)
