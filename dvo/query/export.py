"""Export query tables as Parquet partitioned the HATS way (``lsdb.read_hats`` opens it).

Layout of one exported table (``OUT/objects``, ``OUT/measures``)::

    properties, hats.properties     java-style key=value: obs_collection, dataproduct_type
                                    (object / source), hats_nrows, hats_col_ra/dec,
                                    hats_col_healpix=_healpix_29, hats_max_rows, ...
    partition_info.csv              Norder,Npix of every data file
    dataset/Norder=K/Dir=D/Npix=N.parquet   rows of HEALPix pixel N (nested) at order K,
                                    D = N // 10000 * 10000, sorted by _healpix_29
    dataset/_metadata, dataset/_common_metadata   Parquet footers / schema

Every file uses one order K: the lowest order at which no pixel holds more than ``max_rows``
rows (HATS allows mixed orders; one order is a valid special case). ``_healpix_29`` is the
order-29 nested pixel of each row's own position. ``fmt="parquet"`` writes the same data
files and ``partition_info.csv`` without the HATS properties and ``_metadata``.

The export streams: a first pass reads positions to choose K, a second writes each DVO
partition's rows into per-pixel fragments, a third joins the fragments of each pixel (memory is
bounded by the largest pixel, not by the database).
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dvo.errors import QueryError
from dvo.query import tables
from dvo.query.scan import ScanRequest, scan_partition

__all__ = ["export", "healpix29", "choose_order", "pixel_path"]

HPX_COL = "_healpix_29"
EXPORT_FORMATS = ("hats", "parquet")


def healpix29(ra: np.ndarray, dec: np.ndarray) -> np.ndarray:
    """Order-29 nested HEALPix index of each position (int64).

    Examples
    --------
    >>> (healpix29(np.array([45.0, 135.0]), np.array([41.8, 41.8])) >> 58).tolist()  # order 0
    [0, 1]
    """
    import healpy as hp

    if len(ra) == 0:
        return np.zeros(0, np.int64)
    return hp.ang2pix(1 << 29, ra, dec, nest=True, lonlat=True).astype(np.int64)


def choose_order(hpx29: np.ndarray, max_rows: int, highest: int = 12) -> int:
    """The lowest order whose pixels all hold at most ``max_rows`` rows (capped at ``highest``).

    Examples
    --------
    >>> choose_order(np.arange(100, dtype=np.int64) << 40, 30)
    7
    """
    for order in range(0, highest + 1):
        counts = np.unique(hpx29 >> (2 * (29 - order)), return_counts=True)[1]
        if len(counts) == 0 or counts.max() <= max_rows:
            return order
    return highest


def pixel_path(order: int, pixel: int) -> str:
    """Relative path of one data file, e.g. ``dataset/Norder=3/Dir=0/Npix=42.parquet``."""
    return f"dataset/Norder={order}/Dir={pixel // 10000 * 10000}/Npix={pixel}.parquet"


def _arrow(arr: np.ndarray, hpx: np.ndarray, units: dict[str, str]):
    import pyarrow as pa

    cols = {
        n: (arr[n].astype(str) if arr.dtype[n].kind == "S" else arr[n]) for n in arr.dtype.names
    }
    cols[HPX_COL] = hpx
    fields = [
        pa.field(n, pa.array(v[:0]).type, metadata={"unit": units[n]} if n in units else None)
        for n, v in cols.items()
    ]
    return pa.table(cols, schema=pa.schema(fields))


def _scan_all(db, table: str, columns, indices):
    """(index, rows) of every partition for an export (columns always include ra, dec)."""
    req = ScanRequest(table=table, columns=tuple(columns))
    for index in indices:
        yield int(index), scan_partition(db.catdir, int(index), req)


def export(
    db,
    out,
    *,
    fmt: str = "hats",
    tables_: tuple[str, ...] = ("objects", "measures"),
    columns: dict | None = None,
    max_rows: int = 1_000_000,
    progress=None,
) -> dict:
    """Write each query table of ``tables_`` to ``out/<table>`` (see the module docstring).

    ``columns`` maps a table to its columns (default: all, ``"*"``). Returns
    ``{table: (path, rows, order)}``.

    Raises
    ------
    QueryError
        Unknown format or table, or ``out`` exists and is not empty.
    """
    if fmt not in EXPORT_FORMATS:
        raise QueryError(f"export format must be one of {', '.join(EXPORT_FORMATS)}, got {fmt!r}")
    out = Path(out)
    if out.exists() and any(out.iterdir()):
        raise QueryError(f"{out}: exists and is not empty")
    if not isinstance(max_rows, int) or max_rows <= 0:
        raise QueryError(f"max_rows must be a positive integer, got {max_rows!r}")
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for table in tables_:
        want = (columns or {}).get(table, "*")
        done[table] = export_table(db, out / table, table, want, fmt, max_rows, progress)
    return done


def export_table(db, dest: Path, table: str, columns, fmt: str, max_rows: int, progress=None):
    """Export one table; returns (dest, rows, order)."""
    sec = tuple(db.photcodes.sec_names)
    names = tables.resolve_columns(table, sec, columns)
    names += [c for c in ("ra", "dec") if c not in names]
    indices = db.populated()
    hpx = [healpix29(a["ra"], a["dec"]) for _, a in _scan_all(db, table, ("ra", "dec"), indices)]
    hpx = np.concatenate(hpx) if hpx else np.zeros(0, np.int64)
    order = choose_order(hpx, max_rows)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".fragments", dir=dest))
    try:
        units = tables.units(table, sec, names)
        fragments = _write_fragments(db, table, names, indices, order, tmp, units, progress)
        collector, schema = _join_fragments(fragments, dest, order)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _write_metadata(
        dest, table, fmt, order, sorted(fragments), collector, schema, len(hpx), max_rows
    )
    return dest, len(hpx), order


def _write_fragments(db, table, names, indices, order, tmp: Path, units, progress) -> dict:
    import pyarrow.parquet as pq

    fragments: dict[int, list[Path]] = {}
    shift = 2 * (29 - order)
    for index, arr in _scan_all(db, table, names, indices):
        h = healpix29(arr["ra"], arr["dec"])
        pix = h >> shift
        o = np.argsort(pix, kind="stable")
        uniq, starts = np.unique(pix[o], return_index=True)
        ends = np.append(starts[1:], len(o))
        for p, s, e in zip(uniq.tolist(), starts, ends, strict=True):
            path = tmp / f"{p}_{index}.parquet"
            pq.write_table(_arrow(arr[o[s:e]], h[o[s:e]], units), path)
            fragments.setdefault(p, []).append(path)
        if progress is not None:
            progress(1)
    return fragments


def _join_fragments(fragments: dict, dest: Path, order: int):
    import pyarrow as pa
    import pyarrow.parquet as pq

    collector, schema = [], None
    for p in sorted(fragments):
        t = pa.concat_tables([pq.read_table(f) for f in fragments[p]]).sort_by(HPX_COL)
        rel = pixel_path(order, p)
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(t, dest / rel, metadata_collector=collector)
        collector[-1].set_file_path(rel.removeprefix("dataset/"))
        schema = t.schema
    return collector, schema


def _write_metadata(dest, table, fmt, order, pixels, collector, schema, nrows, max_rows) -> None:
    import pyarrow.parquet as pq

    lines = ["Norder,Npix"] + [f"{order},{p}" for p in pixels]
    (dest / "partition_info.csv").write_text("\n".join(lines) + "\n")
    if fmt != "hats":
        return
    (dest / "dataset").mkdir(exist_ok=True)
    if schema is not None:
        pq.write_metadata(schema, dest / "dataset" / "_common_metadata")
        pq.write_metadata(schema, dest / "dataset" / "_metadata", metadata_collector=collector)
    props = {
        "obs_collection": f"dvo_{table}",
        "dataproduct_type": "object" if table == "objects" else "source",
        "hats_nrows": nrows,
        "hats_col_ra": "ra",
        "hats_col_dec": "dec",
        "hats_col_healpix": HPX_COL,
        "hats_col_healpix_order": 29,
        "hats_max_rows": max_rows,
        "hats_npix_suffix": ".parquet",
        "hats_order": order,
        "hats_builder": "dvo export",
        "hats_creation_date": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M%Z"),
        "hats_version": "v1.0",
    }
    text = "#HATS catalog\n" + "".join(f"{k}={v}\n" for k, v in props.items())
    (dest / "properties").write_text(text)
    (dest / "hats.properties").write_text(text)
