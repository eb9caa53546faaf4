"""Result writers: text, CSV and JSON from numpy or astropy; FITS and Parquet files."""

from __future__ import annotations

import io
import json

import numpy as np
import pyarrow.parquet as pq
import pytest
from astropy.table import Table

from dvo.errors import QueryError
from dvo.query.output import write


@pytest.fixture
def arr():
    out = np.zeros(3, [("obj_id", "i8"), ("ra", "f8"), ("g", "f4"), ("filter", "U2"), ("t", "S3")])
    out["obj_id"] = [1, 22, 333]
    out["ra"] = [0.1, 359.123456789012, 180.0]
    out["g"] = [19.5, np.nan, 21.25]
    out["filter"] = ["g", "r", "i"]
    out["t"] = [b"ab", b"c", b""]
    return out


def test_text_is_aligned_with_units(arr):
    buf = io.StringIO()
    write(arr, "text", stream=buf, units={"ra": "deg", "g": "mag"})
    lines = buf.getvalue().splitlines()
    assert len(lines) == 3 + 3 and len({len(line) for line in lines}) == 1
    assert lines[0].split() == ["obj_id", "ra", "g", "filter", "t"]
    assert lines[1].split() == ["deg", "mag"] and set(lines[2]) <= {"-", " "}
    assert "359.123456789" in lines[4] and "nan" in lines[4]


def test_csv_and_json_round_trip(arr, tmp_path):
    write(arr, "csv", tmp_path / "a.csv")
    back = Table.read(tmp_path / "a.csv", format="ascii.csv")
    assert list(back["obj_id"]) == [1, 22, 333] and np.allclose(back["ra"], arr["ra"])
    buf = io.StringIO()
    write(Table(arr), "json", stream=buf)
    rows = json.loads(buf.getvalue())
    assert rows[1]["g"] is None and rows[2]["filter"] == "i" and rows[0]["t"] == "ab"


def test_binary_formats_need_a_file(arr, tmp_path):
    with pytest.raises(QueryError, match="needs an output file"):
        write(arr, "fits")
    with pytest.raises(QueryError, match="unknown format"):
        write(arr, "xml")
    write(arr, "fits", tmp_path / "a.fits", units={"ra": "deg"})
    t = Table.read(tmp_path / "a.fits")
    assert str(t["ra"].unit) == "deg" and list(t["obj_id"]) == [1, 22, 333]
    write(Table(arr), "parquet", tmp_path / "a.parquet")
    assert pq.read_table(tmp_path / "a.parquet").column("filter").to_pylist() == ["g", "r", "i"]
