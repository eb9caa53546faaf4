"""Partial reads touch only the columns and tiles asked for; appends add tiles in place."""

from __future__ import annotations

import os
import shutil

import dvo.codecs._tiled as tiled
import dvo.codecs.settings as codec_settings
import fitsio
import numpy as np
import pytest
from dvo.codecs import (
    append_table,
    read_header,
    read_table,
    table_info,
    verify_checksums,
    write_table,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvo.errors import CodecError

KINDS = ["int32", "float32", "float64", "S8", "int16", "vec3f"]


@pytest.fixture(scope="module")
def big(tmp_path_factory, helpers):
    """A 10-tile compressed table and its data."""
    data = helpers.make_table(np.random.default_rng(3), 9500, KINDS)
    path = tmp_path_factory.mktemp("big") / "big.fits"
    write_table(path, data, tile_rows=1000)
    return path, data


def _spy(monkeypatch) -> list[tuple[str, int]]:
    seen: list[tuple[str, int]] = []
    real = tiled.decode_cell

    def spy(buf, algorithm, col, nr, ctx, fetch, **kw):
        seen.append((col.name, ctx["tile"]))
        return real(buf, algorithm, col, nr, ctx, fetch, **kw)

    monkeypatch.setattr(tiled, "decode_cell", spy)
    return seen


def _count_bytes(monkeypatch) -> list[int]:
    counts: list[int] = []
    real, real_v = os.pread, os.preadv

    def pread(fd, n, offset):
        counts.append(n)
        return real(fd, n, offset)

    def preadv(fd, buffers, offset):
        counts.append(sum(memoryview(b).nbytes for b in buffers))
        return real_v(fd, buffers, offset)

    monkeypatch.setattr(os, "pread", pread)
    monkeypatch.setattr(os, "preadv", preadv)
    return counts


def test_only_needed_columns_and_tiles_are_decoded(big, monkeypatch, helpers):
    path, data = big
    seen = _spy(monkeypatch)
    got = read_table(path, columns=["float32"], rows=(2500, 4100))
    assert sorted(seen) == [("float32", 2), ("float32", 3), ("float32", 4)]
    helpers.assert_same(got, {"float32": data["float32"][2500:4100]})


def test_partial_read_reads_few_bytes(big, monkeypatch):
    path, _ = big
    counts = _count_bytes(monkeypatch)
    read_table(path, columns=["int16"], rows=(5000, 5001))
    heap_bytes = sum(counts) - 3 * 2880  # headers
    assert heap_bytes < os.path.getsize(path) / 20


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    start=st.integers(-10000, 10000),
    stop=st.integers(-10000, 10000),
    cols=st.lists(st.sampled_from(KINDS), min_size=1, max_size=3, unique=True),
)
def test_slice_read_equals_slice_of_full_read(big, helpers, start, stop, cols):
    path, data = big
    got = read_table(path, columns=cols, rows=slice(start, stop))
    helpers.assert_same(got, {k: data[k][start:stop] for k in cols})
    assert got.dtype.names == tuple(cols)


@pytest.mark.parametrize("threads", [1, 3])
@pytest.mark.parametrize("read_bytes", [1, 20000])
def test_reads_in_groups_of_tiles(big, helpers, monkeypatch, read_bytes, threads):
    """The heap is read a few tiles at a time into a reused buffer (one tile per read with
    read_bytes=1); every group is decoded before the buffer is refilled, threads or not."""
    monkeypatch.setattr(codec_settings, "READ_BYTES", read_bytes)
    monkeypatch.setattr(codec_settings, "THREADS", threads)
    path, data = big
    single = []  # reads outside the groups' buffered spans (besides the descriptor table)
    real = tiled.pread_exact
    monkeypatch.setattr(tiled, "pread_exact", lambda *a: single.append(a[1]) or real(*a))
    helpers.assert_same(read_table(path), data)
    assert len(single) == 1
    got = read_table(path, columns=["S8", "vec3f"], rows=(1234, 8765))
    helpers.assert_same(got, {k: data[k][1234:8765] for k in ("S8", "vec3f")})


def test_plain_table_partial_read(tmp_path, rng, helpers):
    data = helpers.make_table(rng, 777, KINDS)
    write_table(tmp_path / "p.fits", data, compression="none")
    got = read_table(tmp_path / "p.fits", columns=["S8", "vec3f"], rows=(100, 200))
    helpers.assert_same(got, {k: data[k][100:200] for k in ("S8", "vec3f")})


@pytest.mark.parametrize("codec", ["none", "default", "ZSTD", "GZIP_1"])
@pytest.mark.parametrize("sizes", [(2500, 1700, 800), (1000, 1000), (10, 3, 2990)])
def test_append_round_trip(tmp_path, rng, helpers, codec, sizes):
    parts = [helpers.make_table(rng, n, KINDS) for n in sizes]
    path = tmp_path / "a.fits"
    write_table(path, parts[0], compression=codec, tile_rows=1000, header={"KEEP": "me"})
    for part in parts[1:]:
        append_table(path, part)
    verify_checksums(path)
    want = {k: np.concatenate([p[k] for p in parts]) for k in KINDS}
    helpers.assert_same(read_table(path, verify=True), want)
    assert read_header(path)["KEEP"] == "me" and table_info(path).nrows == sum(sizes)


def test_append_does_not_reencode_full_tiles(tmp_path, rng, helpers, monkeypatch):
    data = helpers.make_table(rng, 2500, ["int32", "float64"])
    path = tmp_path / "a.fits"
    write_table(path, data, tile_rows=1000)
    encoded: list[int] = []
    real = tiled.encode_tiles

    def spy(storage, nrows, algorithms, tile_rows):
        encoded.append(nrows)
        return real(storage, nrows, algorithms, tile_rows)

    monkeypatch.setattr("dvo.codecs._append.encode_tiles", spy)
    append_table(path, helpers.make_table(rng, 100, ["int32", "float64"]))
    assert encoded == [600]  # the short last tile (500 rows) + 100 new rows


def test_funpack_reads_appended_file(tmp_path, rng, helpers, cfitsio):
    parts = [helpers.make_table(rng, n, ["int32", "float32", "S8"]) for n in (1500, 900)]
    path = tmp_path / "a.fits.fz"
    write_table(path, parts[0], tile_rows=1000)
    append_table(path, parts[1])
    res = helpers.run_tool("funpack", "-O", str(tmp_path / "a.fits"), str(path))
    assert res.returncode == 0, res.stderr
    got = fitsio.read(str(tmp_path / "a.fits"))
    assert (got["int32"] == np.concatenate([p["int32"] for p in parts])).all()


def test_append_to_fpack_written_file(tmp_path, helpers):
    path = tmp_path / "tiled.fits.fz"
    shutil.copy(helpers.samples / "tiled.fits.fz", path)
    os.chmod(path, 0o644)
    first = read_table(path)
    append_table(path, first[:450])
    got = read_table(path, verify=True)
    assert len(got) == 1450 and got[1000:].tobytes() == first[:450].tobytes()


def test_append_errors(tmp_path, rng, helpers):
    data = helpers.make_table(rng, 10, ["int32", "float32"])
    path = tmp_path / "a.fits"
    write_table(path, data)
    with pytest.raises(CodecError, match="differ"):
        append_table(path, {"int32": data["int32"]})
    with pytest.raises(CodecError, match="shape"):
        append_table(path, {"int32": data["int32"], "float32": np.zeros((10, 2))})
    with pytest.raises(CodecError, match="not a BINTABLE"):
        append_table(path, data, ext=0)
    with pytest.raises(CodecError, match="VLA|variable-length"):
        shutil.copy(helpers.samples / "extra.fits.fz", tmp_path / "x.fz")
        os.chmod(tmp_path / "x.fz", 0o644)
        append_table(tmp_path / "x.fz", read_table(tmp_path / "x.fz"))


def test_short_reads_are_continued(big, helpers, monkeypatch):
    """The OS may return fewer bytes than asked before the end of a file (Linux: ~2 GB per
    call); reads go on until they have them all, and a truly short file is still an error."""
    path, data = big
    real, real_v = os.pread, os.preadv
    monkeypatch.setattr(os, "pread", lambda fd, n, offset: real(fd, min(n, 1000), offset))
    monkeypatch.setattr(
        os, "preadv", lambda fd, bufs, offset: real_v(fd, [memoryview(bufs[0])[:1000]], offset)
    )
    helpers.assert_same(read_table(path), data)
    cut = path.with_name("cut.fits")
    cut.write_bytes(path.read_bytes()[: os.path.getsize(path) - 5000])
    with pytest.raises(CodecError, match="truncated"):
        read_table(cut)
