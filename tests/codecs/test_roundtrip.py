"""Round trips through our writer, checked by independent readers (fitsio, astropy, funpack)."""

from __future__ import annotations

import warnings

import fitsio
import numpy as np
import pytest
from astropy.io import fits
from dvo.codecs import read_header, read_table, table_info, write_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvo.errors import CodecError

STANDARD = ["GZIP_1", "GZIP_2", "RICE_1"]
ALL_CODECS = [*STANDARD, "NOCOMPRESS", "ZSTD", "ZSTD_1", "default", "none"]
KINDS = [
    "bool",
    "uint8",
    "int8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "float32",
    "float64",
    "S8",
    "vec3f",
    "vec2i",
]


def _fitsio_equal(helpers, got, want):
    """fitsio returns A columns as str; compare them as bytes."""
    for name in want:
        a = got[name]
        if a.dtype.kind == "U":
            a = np.char.encode(a, "ascii")
        helpers.assert_same({name: a}, want, [name])


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("codec", ALL_CODECS)
def test_codec_by_dtype_round_trip(tmp_path, rng, helpers, codec, kind):
    data = helpers.make_table(rng, 2345, [kind])
    path = tmp_path / "t.fits"
    write_table(path, data, compression=codec, tile_rows=1000)
    helpers.assert_same(read_table(path, verify=True), data)
    info = table_info(path)
    assert info.nrows == 2345 and info.compressed == (codec != "none")


@pytest.mark.parametrize("kind", KINDS)
def test_plain_table_read_by_fitsio_and_astropy(tmp_path, rng, helpers, kind):
    data = helpers.make_table(rng, 500, [kind])
    path = tmp_path / "plain.fits"
    write_table(path, data, compression="none", units={kind: "mag"}, extname="MEAS")
    _fitsio_equal(helpers, fitsio.read(str(path), ext="MEAS"), data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with fits.open(path, checksum=True) as hdul:
            col = np.asarray(hdul[1].data[kind])
            assert hdul[1].header["TUNIT1"] == "mag"
    if col.dtype.kind == "U":
        col = np.char.encode(col, "ascii")
    helpers.assert_same({kind: col}, data)


@pytest.mark.parametrize("codec", [*STANDARD, "default"])
def test_funpack_reads_our_compressed_tables(tmp_path, rng, helpers, cfitsio, codec):
    data = helpers.make_table(rng, 3001)
    path, out = tmp_path / "t.fits.fz", tmp_path / "t.fits"
    write_table(path, data, compression=codec, tile_rows=1000, header={"SURVEY": "PS1"})
    res = helpers.run_tool("funpack", "-O", str(out), str(path))
    assert res.returncode == 0, res.stderr
    _fitsio_equal(helpers, fitsio.read(str(out)), data)
    assert fitsio.read_header(str(out), ext=1)["SURVEY"] == "PS1"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fits.open(path, checksum=True).close()  # astropy accepts our CHECKSUM/DATASUM


def test_header_keywords_units_nulls_round_trip(tmp_path, rng, helpers):
    data = helpers.make_table(rng, 100, ["int32", "float32"])
    path = tmp_path / "t.fits"
    extra = [
        ("SURVEY", "PS1", "the survey"),
        ("NIGHT", 57000, ""),
        ("ZP", 25.5, "zero point"),
        ("CALIB", True, ""),
    ]
    write_table(
        path,
        data,
        header=extra,
        primary_header={"ORIGIN": "dvo"},
        units={"float32": "mag"},
        nulls={"int32": -1},
        extname="MEASURE",
    )
    for ext in (1, "MEASURE", "measure"):
        h = read_header(path, ext=ext)
        assert [h[k] for k in ("SURVEY", "NIGHT", "ZP", "CALIB")] == ["PS1", 57000, 25.5, True]
        assert h.comments["SURVEY"] == "the survey"
        assert h["TUNIT2"] == "mag" and h["TNULL1"] == -1 and h["NAXIS2"] == 100
        assert h["TFORM1"] == "1J" and "ZTABLE" not in h
    assert read_header(path, ext=0)["ORIGIN"] == "dvo"
    helpers.assert_same(read_table(path, ext="MEASURE"), data)


def test_structured_array_input_and_native_output(tmp_path, rng):
    arr = np.zeros(50, dtype=[("ra", ">f8"), ("mag", "<f4", (4,)), ("id", ">u4")])
    arr["ra"], arr["id"] = rng.uniform(0, 360, 50), rng.integers(0, 2**32, 50)
    arr["mag"] = rng.normal(size=(50, 4))
    write_table(tmp_path / "s.fits", arr)
    got = read_table(tmp_path / "s.fits")
    assert all(got.dtype[n].base.isnative for n in got.dtype.names)
    assert got.dtype["mag"].shape == (4,) and got.dtype["id"] == np.uint32
    for name in arr.dtype.names:
        assert (got[name] == arr[name]).all()


def test_per_column_choice_and_fallbacks(tmp_path, rng, helpers):
    data = helpers.make_table(rng, 300, ["int32", "float64", "S8", "int64", "uint8"])
    path = tmp_path / "t.fits"
    write_table(path, data, compression={"int32": "GZIP_2", "float64": "zstd"})
    algos = table_info(path).algorithms
    assert algos == {
        "int32": "GZIP_2",
        "float64": "ZSTD_2",
        "S8": "GZIP_1",
        "int64": "GZIP_2",
        "uint8": "RICE_1",
    }
    write_table(path, data, compression="RICE_1")  # applied where it can be
    assert table_info(path).algorithms["float64"] == "GZIP_2"
    with pytest.raises(CodecError, match="cannot encode"):
        write_table(path, data, compression={"float64": "RICE_1"})
    with pytest.raises(CodecError, match="unknown compression"):
        write_table(path, data, compression="LZMA")
    with pytest.raises(CodecError, match="unknown columns"):
        write_table(path, data, compression={"nope": "GZIP_1"})


def test_bad_writer_input_is_a_codec_error(tmp_path):
    path = tmp_path / "t.fits"
    with pytest.raises(CodecError, match="different lengths"):
        write_table(path, {"a": np.arange(3), "b": np.arange(4)})
    with pytest.raises(CodecError, match="unsupported dtype"):
        write_table(path, {"a": np.array([1 + 2j], dtype=np.complex256)})
    with pytest.raises(CodecError, match="set by the writer"):
        write_table(path, {"a": np.arange(3)}, header={"NAXIS2": 5})
    with pytest.raises(CodecError, match="tile_rows"):
        write_table(path, {"a": np.arange(3)}, tile_rows=0)
    with pytest.raises(CodecError, match="non-finite"):
        write_table(path, {"a": np.arange(3)}, header={"X": float("nan")})


def test_empty_table(tmp_path):
    for codec in ("none", "default"):
        write_table(tmp_path / "e.fits", {"a": np.zeros(0, np.float32)}, compression=codec)
        got = read_table(tmp_path / "e.fits", verify=True)
        assert len(got) == 0 and got.dtype["a"] == np.float32


_column_kind = st.sampled_from(KINDS)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    kinds=st.lists(_column_kind, min_size=1, max_size=5, unique=True),
    n=st.integers(0, 700),
    tile_rows=st.integers(1, 300),
    codec=st.sampled_from(ALL_CODECS),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_tables_round_trip(tmp_path, helpers, kinds, n, tile_rows, codec, seed):
    data = helpers.make_table(np.random.default_rng(seed), n, kinds)
    path = tmp_path / "h.fits"
    write_table(path, data, compression=codec, tile_rows=tile_rows)
    helpers.assert_same(read_table(path, verify=True), data)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    kinds=st.lists(st.sampled_from(KINDS), min_size=1, max_size=6, unique=True),
    n=st.integers(0, 3000),
    tile_rows=st.integers(1, 5000),
    codec=st.sampled_from([*STANDARD, "default"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_funpack_accepts_random_tables(
    tmp_path_factory, helpers, cfitsio, kinds, n, tile_rows, codec, seed
):
    data = helpers.make_table(np.random.default_rng(seed), n, kinds)
    work = tmp_path_factory.mktemp("fz")
    write_table(work / "t.fz", data, compression=codec, tile_rows=tile_rows)
    res = helpers.run_tool("funpack", "-O", str(work / "t.fits"), str(work / "t.fz"))
    assert res.returncode == 0, res.stderr
    if n:
        _fitsio_equal(helpers, fitsio.read(str(work / "t.fits")), data)
