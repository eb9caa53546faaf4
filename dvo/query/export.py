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

With ``margin_arcsec`` each table also gets a HATS margin catalogue (``<table>_margin``,
``dataproduct_type=margin``): for each pixel, the rows of other pixels that may lie within the
margin of it (a superset chosen with order-``margin_order`` neighbours; extra rows never change
a crossmatch). lsdb uses it to match across pixel edges.

The export streams: a first pass reads positions to choose K, a second writes each DVO
partition's rows into per-pixel fragments, a third joins the fragments of each pixel (memory is
bounded by the largest pixel, not by the database).
"""

from __future__ import annotations

import shutil
import tempfile
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from dvo.errors import QueryError
from dvo.query import tables
from dvo.query.execute import InProcess, ScanTask
from dvo.query.scan import ScanRequest

__all__ = ["export", "healpix29", "choose_order", "pixel_path", "margin_order", "margin_pixels"]

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
    """(index, rows) of every partition for an export (columns always include ra, dec), in
    order; partitions pushed to hosts are scanned there, like a query's."""
    from dvo.hosts.executor import host_executor

    indices = [int(i) for i in indices]
    executor = host_executor(db, indices) or InProcess()
    task = ScanTask(ScanRequest(table=table, columns=tuple(columns)))
    with closing(executor.map(str(db.catdir), [(i, task) for i in indices])) as stream:
        yield from stream


def export(
    db,
    out,
    *,
    fmt: str = "hats",
    tables_: tuple[str, ...] = ("objects", "measures"),
    columns: dict | None = None,
    max_rows: int = 1_000_000,
    margin_arcsec: float | None = None,
    progress=None,
) -> dict:
    """Write each query table of ``tables_`` to ``out/<table>`` (see the module docstring).

    ``columns`` maps a table to its columns (default: all, ``"*"``). With ``margin_arcsec``
    a HATS margin catalogue is written next to each table (``out/<table>_margin``). Returns
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
    if margin_arcsec is not None and not 0 < margin_arcsec <= 3600:
        raise QueryError(f"margin must lie in (0, 3600] arcsec, got {margin_arcsec}")
    out.mkdir(parents=True, exist_ok=True)
    done = {}
    for table in tables_:
        want = (columns or {}).get(table, "*")
        job = _Export(db, out, table, fmt, max_rows, margin_arcsec)
        with db.reader():
            done[table] = job.run(want, progress)
    return done


def margin_order(order: int, margin_arcsec: float) -> int:
    """The order whose pixels are at least twice the margin wide (and not below ``order``).

    Examples
    --------
    >>> margin_order(3, 1.0)
    16
    """
    size = 3600.0 * np.degrees(np.sqrt(4 * np.pi / 12))  # order-0 pixel, arcsec
    return max(order, int(np.floor(np.log2(size / (2.0 * margin_arcsec)))))


def margin_pixels(hpx: np.ndarray, order: int, margin_arcsec: float):
    """(row, pixel) pairs: rows that may lie within the margin of another order-``order`` pixel.

    A superset: a row is in the margin of every pixel its order-``margin_order`` pixel's eight
    neighbours belong to (those pixels are at least twice the margin wide).
    """
    import healpy as hp

    k = margin_order(order, margin_arcsec)
    fine = hpx >> (2 * (29 - k))
    own = hpx >> (2 * (29 - order))
    nb = hp.get_all_neighbours(1 << k, fine, nest=True) if len(hpx) else np.zeros((8, 0), int)
    nb = np.where(nb >= 0, nb >> (2 * (k - order)), -1)
    row = np.broadcast_to(np.arange(len(hpx)), nb.shape)
    keep = (nb >= 0) & (nb != own)
    pairs = np.unique(np.stack([row[keep], nb[keep]], axis=1), axis=0)
    return pairs[:, 0], pairs[:, 1]


class _Export:
    """One table's export: pick the order, write fragments, join them, write metadata."""

    def __init__(self, db, out: Path, table: str, fmt: str, max_rows: int, margin) -> None:
        self.db, self.table, self.fmt, self.max_rows, self.margin = db, table, fmt, max_rows, margin
        self.dest, self.mdest = out / table, out / f"{table}_margin"

    def run(self, columns, progress):
        db, table = self.db, self.table
        sec = tuple(db.photcodes.sec_names)
        names = tables.resolve_columns(table, sec, columns)
        names += [c for c in ("ra", "dec") if c not in names]
        indices = db.populated()
        hpx = [
            healpix29(a["ra"], a["dec"]) for _, a in _scan_all(db, table, ("ra", "dec"), indices)
        ]
        hpx = np.concatenate(hpx) if hpx else np.zeros(0, np.int64)
        self.order = choose_order(hpx, self.max_rows)
        self.units = tables.units(table, sec, names)
        self.dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".fragments", dir=self.dest))
        try:
            main, margin = self._fragments(names, indices, tmp, progress)
            collector, schema = _join_fragments(main, self.dest, self.order)
            _write_metadata(self, self.dest, sorted(main), collector, schema, len(hpx))
            if self.margin is not None:
                margin = {p: v for p, v in margin.items() if p in main}
                collector, schema = _join_fragments(margin, self.mdest, self.order)
                nrows = sum(c.num_rows for c in collector)
                _write_metadata(self, self.mdest, sorted(margin), collector, schema, nrows)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return self.dest, len(hpx), self.order

    def _fragments(self, names, indices, tmp: Path, progress):
        main: dict[int, list[Path]] = {}
        margin: dict[int, list[Path]] = {}
        for index, arr in _scan_all(self.db, self.table, names, indices):
            h = healpix29(arr["ra"], arr["dec"])
            _split(arr, h, h >> (2 * (29 - self.order)), tmp / f"m{index}", main, self.units)
            if self.margin is not None:
                rows, pix = margin_pixels(h, self.order, self.margin)
                _split(arr[rows], h[rows], pix, tmp / f"g{index}", margin, self.units)
            if progress is not None:
                progress(1)
        return main, margin


def _split(arr, h, pix, stem: Path, fragments: dict, units) -> None:
    """Write the rows of each pixel as a fragment file and record it."""
    import pyarrow.parquet as pq

    if len(pix) == 0:
        return
    o = np.argsort(pix, kind="stable")
    uniq, starts = np.unique(pix[o], return_index=True)
    ends = np.append(starts[1:], len(o))
    for p, s, e in zip(uniq.tolist(), starts, ends, strict=True):
        path = stem.with_name(f"{stem.name}_{p}.parquet")
        pq.write_table(_arrow(arr[o[s:e]], h[o[s:e]], units), path)
        fragments.setdefault(p, []).append(path)


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


def _write_metadata(job: _Export, dest: Path, pixels, collector, schema, nrows: int) -> None:
    import pyarrow.parquet as pq

    dest.mkdir(parents=True, exist_ok=True)
    lines = ["Norder,Npix"] + [f"{job.order},{p}" for p in pixels]
    (dest / "partition_info.csv").write_text("\n".join(lines) + "\n")
    if job.fmt != "hats":
        return
    (dest / "dataset").mkdir(exist_ok=True)
    if schema is not None:
        pq.write_metadata(schema, dest / "dataset" / "_common_metadata")
        pq.write_metadata(schema, dest / "dataset" / "_metadata", metadata_collector=collector)
    is_margin = dest == job.mdest
    props = {
        "obs_collection": f"dvo_{dest.name}",
        "dataproduct_type": "margin"
        if is_margin
        else "object"
        if job.table == "objects"
        else "source",
        "hats_nrows": nrows,
        "hats_col_ra": "ra",
        "hats_col_dec": "dec",
        "hats_col_healpix": HPX_COL,
        "hats_col_healpix_order": 29,
        "hats_max_rows": job.max_rows,
        "hats_npix_suffix": ".parquet",
        "hats_order": job.order,
        "hats_builder": "dvo export",
        "hats_creation_date": datetime.now(tz=UTC).strftime("%Y-%m-%dT%H:%M%Z"),
        "hats_version": "v1.0",
    }
    if is_margin:
        props["hats_primary_table_url"] = job.table
        props["hats_margin_threshold"] = job.margin
    text = "#HATS catalog\n" + "".join(f"{k}={v}\n" for k, v in props.items())
    (dest / "properties").write_text(text)
    (dest / "hats.properties").write_text(text)
