"""The query tables: their columns, units, and how each is built from the stored tables.

Three tables can be queried:

``objects``
    Average and SecFilt as one table. Average columns keep their names in lower case
    (``ra``, ``dec``, ``nmeasure``, ``flags``...; the internal ``off_*`` offsets are left out);
    ``obj_id`` is the 64-bit public id (:func:`dvo.ids.object_id`) and ``cat_id`` the partition.
    Each average filter ``f`` contributes ``f`` (SecFilt ``MAG``), ``f_err`` (``MAG_ERR``) and
    ``f_<rest>`` for every other SecFilt column, with a leading ``mag_`` dropped: ``g_nused``,
    ``g_stdev``, ``g_ap``, ``g_kron_err``, ``g_flags``...
``measures``
    Measure columns in lower case plus ``obj_id``, ``mjd`` (Images ``MJD_OBS``), ``photcode``
    (name), ``photcode_id``, ``filter`` (average filter name) and ``mag_cal`` (the calibrated
    magnitude of :func:`dvo.photometry.calibrated_mag`).
``lensing``
    Lensing columns in lower case plus ``obj_id``.

Region searches on ``measures`` and ``lensing`` select rows by their *object's* position, so
a lightcurve is always complete.

Examples
--------
>>> cols = table_columns("objects", ("g", "r"))
>>> [c for c in ("obj_id", "g", "g_err", "g_nused", "r_ap") if c in cols]
['obj_id', 'g', 'g_err', 'g_nused', 'r_ap']
>>> cols["g"].unit
'mag'
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from dvo.errors import QueryError
from dvo.schema import AVERAGE, LENSING, MEASURE, SECFILT

__all__ = ["TABLES", "Column", "table_columns", "default_columns", "resolve_columns"]

TABLES = ("objects", "measures", "lensing")

#: query table -> (stored kind, Average offset column, Average count column)
LINKS = {
    "measures": ("measure", "OFF_MEASURE", "NMEASURE"),
    "lensing": ("lensing", "OFF_LENSING", "NLENSING"),
}

#: raw Average columns every scan reads to place objects (and find their rows)
POSITION = ("RA", "DEC")


@dataclass(frozen=True)
class Column:
    """One query column.

    ``build`` says how it is made: ``raw`` (copy ``source`` of table ``kind``), ``sec``
    (SecFilt ``source`` of filter ``slot``), or a derived name (``obj_id``, ``mjd``,
    ``photcode``, ``filter``, ``mag_cal``).
    """

    name: str
    dtype: str
    unit: str
    build: str
    kind: str = ""
    source: str = ""
    slot: int = -1


def _sec_name(filt: str, source: str) -> str:
    if source == "MAG":
        return filt
    rest = source.lower()
    rest = rest[4:] if rest.startswith("mag_") else rest
    return f"{filt}_{rest}"


def _raw(schema, kind: str, skip=()) -> list[Column]:
    return [
        Column(c.lower(), schema.dtype[c].str, u, "raw", kind, c)
        for c, _, u in schema.columns
        if c not in skip and not c.startswith("OFF_")
    ]


@lru_cache(maxsize=16)
def table_columns(table: str, sec_names: tuple[str, ...]) -> dict[str, Column]:
    """Every column of a query table, in output order."""
    if table == "objects":
        cols = [Column("obj_id", "<i8", "", "obj_id")]
        cols += _raw(AVERAGE, "average", skip=("OBJ_ID",))
        for slot, filt in enumerate(sec_names):
            cols += [
                Column(_sec_name(filt, c), SECFILT.dtype[c].str, u, "sec", "secfilt", c, slot)
                for c, _, u in SECFILT.columns
            ]
    elif table == "measures":
        cols = [Column("obj_id", "<i8", "", "obj_id")]
        cols += [
            Column("mjd", "<f8", "d", "mjd"),
            Column("filter", "<U8", "", "filter"),
            Column("photcode", "<U32", "", "photcode"),
            Column("photcode_id", "<u2", "", "raw", "measure", "PHOTCODE"),
            Column("mag_cal", "<f8", "mag", "mag_cal"),
        ]
        cols += _raw(MEASURE, "measure", skip=("PADDING", "PHOTCODE", "OBJ_ID"))
    elif table == "lensing":
        cols = [Column("obj_id", "<i8", "", "obj_id")]
        cols += _raw(LENSING, "lensing", skip=("OBJ_ID",))
    else:
        raise QueryError(f"unknown table {table!r}; choose from {', '.join(TABLES)}")
    return {c.name: c for c in cols}


def default_columns(table: str, sec_names: tuple[str, ...]) -> list[str]:
    """The columns a query returns when it names none."""
    if table == "objects":
        per = [n for f in sec_names for n in (f, f"{f}_err", f"{f}_nused")]
        return ["obj_id", "ra", "dec", "nmeasure", *per]
    if table == "measures":
        return [
            "obj_id",
            "mjd",
            "filter",
            "photcode",
            "mag_cal",
            "mag_err",
            "mag",
            "ra",
            "dec",
            "image_id",
            "db_flags",
        ]
    return list(table_columns(table, sec_names))


def resolve_columns(table: str, sec_names: tuple[str, ...], columns) -> list[str]:
    """Validate a column request: None (defaults), ``"*"`` (all), a name or a list of names.

    Raises
    ------
    QueryError
        Naming the first unknown column and the closest known one.
    """
    known = table_columns(table, sec_names)
    if columns is None:
        return default_columns(table, sec_names)
    if isinstance(columns, str):
        columns = list(known) if columns == "*" else [c.strip() for c in columns.split(",")]
    columns = list(dict.fromkeys(columns))
    unknown = [c for c in columns if c not in known]
    if unknown:
        import difflib

        near = difflib.get_close_matches(unknown[0], list(known), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise QueryError(f"unknown column {unknown[0]!r} in table {table}{hint}")
    if not columns:
        raise QueryError("no columns requested")
    return columns


def raw_needs(table: str, sec_names: tuple[str, ...], names) -> dict[str, list[str]]:
    """The stored columns (per table kind) needed to build query columns ``names``."""
    known = table_columns(table, sec_names)
    need: dict[str, set[str]] = {"average": set(POSITION)}
    extra = {
        "mjd": ("IMAGE_ID", "TIME"),
        "filter": ("PHOTCODE",),
        "photcode": ("PHOTCODE",),
        "mag_cal": ("MAG", "PHOTCODE", "AIRMASS", "MCAL_PSF", "M_FLAT"),
    }
    for name in names:
        col = known[name]
        if col.build in ("raw", "sec"):
            need.setdefault(col.kind, set()).add(col.source)
        elif col.build == "obj_id":
            need["average"].add("OBJ_ID")
        else:
            need.setdefault("measure", set()).update(extra[col.build])
    if table in LINKS:
        kind, off, count = LINKS[table]
        need["average"].update(("OBJ_ID", off, count))
        need.setdefault(kind, set())
    return {k: sorted(v) for k, v in need.items()}


def as_structured(cols: dict[str, np.ndarray], names, known: dict[str, Column]) -> np.ndarray:
    """Pack named column arrays into one structured array with the query dtypes."""
    n = len(cols[names[0]]) if names else 0
    out = np.empty(n, np.dtype([(c, known[c].dtype) for c in names]))
    for c in names:
        out[c] = cols[c]
    return out


def empty_result(table: str, sec_names: tuple[str, ...], names) -> np.ndarray:
    """A result with no rows and the right dtype."""
    known = table_columns(table, sec_names)
    return np.empty(0, np.dtype([(c, known[c].dtype) for c in names]))


def units(table: str, sec_names: tuple[str, ...], names) -> dict[str, str]:
    """Unit of each named column (columns without one are left out)."""
    known = table_columns(table, sec_names)
    return {c: known[c].unit for c in names if known[c].unit}
