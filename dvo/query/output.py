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


def _json_rows(table) -> list[dict]:
    cols = {}
    for name in table.colnames:
        v = np.asarray(table[name])
        if v.dtype.kind == "S":
            v = v.astype(str)
        obj = v.astype(object)
        if v.dtype.kind == "f":
            obj[~np.isfinite(v)] = None
        cols[name] = obj.tolist()
    return [dict(zip(cols, row, strict=True)) for row in zip(*cols.values(), strict=True)]


def _text(table) -> str:
    lines = table.pformat(max_lines=-1, max_width=-1)
    return "\n".join(lines) + "\n"


def write(table, fmt: str = "text", path=None, *, stream=None) -> None:
    """Write an astropy Table as ``fmt`` to ``path`` (or to ``stream``, default stdout).

    Raises
    ------
    QueryError
        For an unknown format, or FITS/Parquet without a file.
    """
    if fmt not in FORMATS:
        raise QueryError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    if fmt in _BINARY and path is None:
        raise QueryError(f"--format {fmt} needs an output file (-o FILE)")
    if fmt == "fits":
        table.write(path, format="fits", overwrite=True)
        return
    if fmt == "parquet":
        _parquet(table, path)
        return
    if fmt == "csv":
        import io

        buf = io.StringIO()
        table.write(buf, format="ascii.csv")
        text = buf.getvalue()
    elif fmt == "json":
        text = json.dumps(_json_rows(table)) + "\n"
    else:
        text = _text(table)
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
