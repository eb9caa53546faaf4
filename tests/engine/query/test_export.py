"""HATS/Parquet export, opened with pyarrow and checked against the database."""

from __future__ import annotations

import numpy as np
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from dvo.errors import QueryError
from dvo.query.export import choose_order, export, healpix29


def _props(path):
    lines = (path / "properties").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def test_hats_export_round_trips(tiny, tiny_objects, tmp_path):
    out = tmp_path / "hats"
    done = export(
        tiny, out, max_rows=800, columns={"objects": "*", "measures": "obj_id,mjd,ra,dec,mag_cal"}
    )
    objects_dir, nrows, order = done["objects"]
    assert nrows == len(tiny_objects["obj_id"])
    props = _props(objects_dir)
    assert props["dataproduct_type"] == "object" and int(props["hats_nrows"]) == nrows
    assert props["hats_col_ra"] == "ra" and props["hats_col_healpix"] == "_healpix_29"
    files = sorted(objects_dir.glob("dataset/Norder=*/Dir=*/Npix=*.parquet"))
    info = (objects_dir / "partition_info.csv").read_text().split()
    assert info[0] == "Norder,Npix" and len(info) - 1 == len(files)
    total = 0
    for f in files:
        t = pq.read_table(f)
        n = int(f.stem.split("=")[1])
        assert f.parent.parent.name == f"Norder={order}"
        assert f.parent.name == f"Dir={n // 10000 * 10000}"
        h = t["_healpix_29"].to_numpy()
        assert np.all(np.diff(h) >= 0) and np.all(h >> (2 * (29 - order)) == n)
        assert np.array_equal(h, healpix29(t["ra"].to_numpy(), t["dec"].to_numpy()))
        assert t.num_rows <= 800
        total += t.num_rows
    assert total == nrows
    meta = pq.read_metadata(objects_dir / "dataset" / "_metadata")
    assert meta.num_rows == nrows and meta.num_row_groups == len(files)
    table = ds.dataset(
        objects_dir / "dataset", format="parquet", exclude_invalid_files=True
    ).to_table()
    got = np.sort(table["obj_id"].to_numpy())
    assert np.array_equal(got, np.sort(tiny_objects["obj_id"]))
    assert table.schema.field("g").metadata[b"unit"] == b"mag"
    meas = ds.dataset(done["measures"][0] / "dataset", format="parquet").to_table()
    assert meas.num_rows == int(tiny.stats()["NMEASURE"].sum())
    assert _props(done["measures"][0])["dataproduct_type"] == "source"


def test_parquet_export_has_no_hats_metadata(tiny, tmp_path):
    done = export(
        tiny,
        tmp_path / "pq",
        fmt="parquet",
        tables_=("objects",),
        columns={"objects": "obj_id,ra,dec"},
    )
    path = done["objects"][0]
    assert not (path / "properties").exists() and (path / "partition_info.csv").exists()
    assert sorted(pq.read_schema(next(path.glob("dataset/**/*.parquet"))).names) == [
        "_healpix_29",
        "dec",
        "obj_id",
        "ra",
    ]


def test_export_errors(tiny, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(QueryError, match="not empty"):
        export(tiny, tmp_path / "full")
    with pytest.raises(QueryError, match="format"):
        export(tiny, tmp_path / "a", fmt="csv")
    with pytest.raises(QueryError, match="unknown column"):
        export(tiny, tmp_path / "b", columns={"objects": "nope"}, tables_=("objects",))


def test_choose_order_is_lowest_within_limit():
    hpx = np.repeat(np.arange(4, dtype=np.int64) << 56, 10)  # 4 order-1 pixels of 10 rows
    assert choose_order(hpx, 40) == 0
    assert choose_order(hpx, 10) == 1
    assert choose_order(hpx, 9) == 12  # cannot split equal positions: capped


def test_margin_holds_every_neighbour_within_the_margin(rng):
    from scipy.spatial import cKDTree

    from dvo.query.export import margin_pixels

    n, order = 120000, 10
    ra, dec = rng.uniform(10, 10.6, n), rng.uniform(20, 20.6, n)
    h = healpix29(ra, dec)
    rows, pix = margin_pixels(h, order, 2.0)
    have = set(zip(rows.tolist(), pix.tolist(), strict=True))
    r, d = np.radians(ra), np.radians(dec)
    v = np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=1)
    pairs = cKDTree(v).query_pairs(np.radians(2.0 / 3600), output_type="ndarray")
    own = h >> (2 * (29 - order))
    cross = pairs[own[pairs[:, 0]] != own[pairs[:, 1]]]
    assert len(cross) > 30
    for a, b in cross:
        assert (a, own[b]) in have and (b, own[a]) in have


def test_margin_catalogue_is_written(tiny, tmp_path):
    export(
        tiny,
        tmp_path / "m",
        tables_=("objects",),
        columns={"objects": "obj_id,ra,dec"},
        max_rows=300,
        margin_arcsec=1.0,
    )
    props = _props(tmp_path / "m" / "objects_margin")
    assert props["dataproduct_type"] == "margin" and props["hats_primary_table_url"] == "objects"
    assert float(props["hats_margin_threshold"]) == 1.0
