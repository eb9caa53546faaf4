"""Bad input: every problem is a CodecError naming the file (and HDU, column, tile)."""

from __future__ import annotations

import os
import re
import shutil

import numpy as np
import pytest
from dvo.codecs import read_table, table_info, verify_checksums, write_table
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dvo.errors import CodecError

KINDS = ["int32", "float32", "float64", "S8", "int16"]


@pytest.fixture
def table(tmp_path, rng, helpers):
    """A 3-tile default-compressed table and its data."""
    data = helpers.make_table(rng, 2500, KINDS)
    path = tmp_path / "t.fits"
    write_table(path, data, tile_rows=1000, compression="GZIP_2")
    return path, data


def _edit_card(path, key: str, new_value: str | None):
    """Rewrite (or blank out) one header card of HDU 1 in place."""
    raw = bytearray(path.read_bytes())
    start = raw.index(b"XTENSION")
    pos = raw.index(f"{key:<8}=".encode(), start)
    card = f"{key:<8}= {new_value:>20}" if new_value is not None else ""
    raw[pos : pos + 80] = f"{card:<80}".encode()
    path.write_bytes(bytes(raw))


def _heap_offset(path) -> int:
    """Start of the data unit of HDU 1 (the descriptor table of a compressed table)."""
    raw = path.read_bytes()
    return raw.index(b"END" + b" " * 77, raw.index(b"XTENSION")) // 2880 * 2880 + 2880


def test_missing_file(tmp_path):
    with pytest.raises(CodecError, match="cannot open"):
        read_table(tmp_path / "nope.fits")


def test_not_a_fits_file(tmp_path):
    (tmp_path / "x.fits").write_bytes(b"hello" * 1000)
    with pytest.raises(CodecError, match="x.fits"):
        read_table(tmp_path / "x.fits")


@pytest.mark.parametrize("keep", [100, 2880, 5000, 5760 + 100, -1])
def test_truncated_file(table, keep):
    path, _ = table
    raw = path.read_bytes()
    cut = len(raw) - 2880 - 10 if keep == -1 else keep
    path.write_bytes(raw[:cut])
    with pytest.raises(CodecError, match=r"t\.fits: .*(truncated|no HDU 1)"):
        read_table(path)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ZTILELEN", "0", "ZTILELEN"),
        ("ZTILELEN", "7", "NAXIS2=3 does not match"),
        ("ZNAXIS2", "99999", "does not match"),
        ("ZNAXIS1", "3", "ZNAXIS1=3"),
        ("ZFORM2", "'9Y'", "unsupported TFORM"),
        ("ZFORM1", None, "ZFORM1 is missing"),
        ("ZCTYP3", "'LZMA_9'", "unknown compression algorithm 'LZMA_9'"),
        ("TFORM1", "'1QJ(9)'", "not a 1QB/1PB"),
        ("NAXIS1", "999", "data unit needs"),
        ("ZNAXIS2", "'abc'", "wrong type"),
    ],
)
def test_wrong_or_missing_z_keywords(table, key, value, message):
    path, _ = table
    _edit_card(path, key, value)
    with pytest.raises(CodecError, match=re.escape(message)) as err:
        read_table(path)
    assert err.value.file == str(path) and err.value.hdu == 1


def test_unknown_algorithm_names_the_column(table):
    path, _ = table
    _edit_card(path, "ZCTYP3", "'LZMA_9'")
    read_table(path, columns=["int32", "float32"])  # other columns still readable
    with pytest.raises(CodecError) as err:
        read_table(path, columns=["float64"])
    assert err.value.column == "float64" and err.value.tile == 0


def test_descriptor_pointing_outside_the_heap(table):
    path, _ = table
    raw = bytearray(path.read_bytes())
    start = _heap_offset(path)
    # tile 1, column 2 (float32): its offset field
    pos = start + 1 * 16 * len(KINDS) + 16 * 1 + 8
    raw[pos : pos + 8] = (10**9).to_bytes(8, "big")
    path.write_bytes(bytes(raw))
    with pytest.raises(CodecError, match="outside the heap") as err:
        read_table(path)
    assert (err.value.column, err.value.tile) == ("float32", 1)
    read_table(path, rows=(0, 1000))  # tile 0 does not need that descriptor


def test_corrupt_gzip_block_is_caught_without_verify(table):
    path, _ = table
    raw = bytearray(path.read_bytes())
    start = _heap_offset(path)
    desc = np.frombuffer(bytes(raw[start : start + 3 * 16 * len(KINDS)]), ">i8")
    desc = desc.reshape(3, len(KINDS), 2)
    heap = start + 3 * 16 * len(KINDS)
    length, offset = desc[2, 2]
    raw[heap + offset + length // 2] ^= 0x10
    path.write_bytes(bytes(raw))
    with pytest.raises(CodecError, match="gzip") as err:
        read_table(path)
    assert (err.value.column, err.value.tile) == ("float64", 2)
    with pytest.raises(CodecError, match="DATASUM mismatch"):
        read_table(path, verify=True)
    with pytest.raises(CodecError, match="DATASUM"):
        verify_checksums(path)


def test_rice_flip_needs_verify(tmp_path, rng, helpers):
    """A flip inside Rice data may decode to other values: only CHECKSUM detects that."""
    data = {"id": np.arange(20000, dtype=np.int32)}
    path = tmp_path / "r.fits"
    write_table(path, data, compression="RICE_1")
    raw = bytearray(path.read_bytes())
    raw[_heap_offset(path) + 16 + 50] ^= 0x01
    path.write_bytes(bytes(raw))
    try:
        got = read_table(path)
        assert not (got["id"] == data["id"]).all()  # silently different: documented
    except CodecError:
        pass
    with pytest.raises(CodecError, match="mismatch"):
        read_table(path, verify=True)


def test_header_change_breaks_checksum(table):
    path, _ = table
    _edit_card(path, "ZTILELEN", "1000")  # same value, different formatting keeps data
    raw = path.read_bytes().replace(b"float32 ", b"float33 ")
    path.write_bytes(raw)
    with pytest.raises(CodecError, match="CHECKSUM mismatch"):
        read_table(path, verify=True)


def test_verify_without_checksums(tmp_path):
    write_table(tmp_path / "n.fits", {"a": np.arange(5)}, checksum=False)
    with pytest.raises(CodecError, match="no CHECKSUM"):
        read_table(tmp_path / "n.fits", verify=True)
    assert len(read_table(tmp_path / "n.fits")) == 5


def test_bad_arguments(table):
    path, _ = table
    with pytest.raises(CodecError, match="no column"):
        read_table(path, columns=["nope"])
    with pytest.raises(CodecError, match="rows"):
        read_table(path, rows=slice(0, 10, 2))
    with pytest.raises(CodecError, match="no HDU"):
        read_table(path, ext=5)
    with pytest.raises(CodecError, match="no HDU"):
        table_info(path, ext="NOPE")
    with pytest.raises(CodecError, match="not a BINTABLE"):
        read_table(path, ext=0)


def _outcome(path, data, verify):
    try:
        got = read_table(path, verify=verify)
    except CodecError as err:
        assert str(path) in str(err)
        return "error"
    same = all(
        np.array_equal(got[k], data[k], equal_nan=got[k].dtype.kind == "f")
        for k in data
        if k in (got.dtype.names or ())
    )
    return "same" if same and got.dtype.names == tuple(data) else "different"


_SETTINGS = settings(
    max_examples=60, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(
    codec=st.sampled_from(["GZIP_1", "GZIP_2", "RICE_1", "ZSTD", "NOCOMPRESS", "none"]),
    where=st.floats(0, 1, exclude_max=True),
    bit=st.integers(0, 7),
)
def test_random_bit_flip_anywhere(tmp_path_factory, helpers, codec, where, bit):
    """Without verify: CodecError or a result, never another exception; with verify the
    flip is always caught unless it is outside the HDU read (the primary HDU)."""
    data = helpers.make_table(np.random.default_rng(7), 1200, KINDS)
    path = tmp_path_factory.mktemp("flip") / "f.fits"
    write_table(path, data, compression=codec, tile_rows=500)
    raw = bytearray(path.read_bytes())
    pos = int(where * len(raw))
    raw[pos] ^= 1 << bit
    path.write_bytes(bytes(raw))
    _outcome(path, data, verify=False)
    assert _outcome(path, data, verify=True) in (("error", "same") if pos < 2880 else ("error",))


@_SETTINGS
@given(
    codec=st.sampled_from(["GZIP_1", "GZIP_2", "ZSTD"]),
    where=st.floats(0, 1, exclude_max=True),
    value=st.integers(0, 255),
)
def test_random_heap_corruption_of_checked_codecs(tmp_path_factory, helpers, codec, where, value):
    """GZIP (CRC32) and ZSTD (content checksum) detect heap damage even without verify.

    A change that leaves the data intact (gzip header mtime/OS bytes) may pass unnoticed.
    """
    data = helpers.make_table(np.random.default_rng(8), 1200, KINDS)
    path = tmp_path_factory.mktemp("heap") / "h.fits"
    write_table(path, data, compression=codec, tile_rows=500)
    start = _heap_offset(path) + 3 * 16 * len(KINDS)
    raw = bytearray(path.read_bytes())
    pcount = int(re.search(rb"PCOUNT  =\s+(\d+)", raw[2880:]).group(1))
    pos = start + int(where * pcount)
    if raw[pos] == value:
        return
    raw[pos] = value
    path.write_bytes(bytes(raw))
    assert _outcome(path, data, verify=False) in ("error", "same")


@settings(
    max_examples=30, deadline=5000, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frac=st.floats(0, 1, exclude_max=True))
def test_random_truncation(tmp_path_factory, helpers, frac):
    data = helpers.make_table(np.random.default_rng(9), 1500, KINDS)
    path = tmp_path_factory.mktemp("cut") / "c.fits"
    write_table(path, data, tile_rows=500)
    raw = path.read_bytes()
    path.write_bytes(raw[: int(frac * len(raw))])
    assert _outcome(path, data, verify=False) in ("error", "same")


def test_copy_of_sample_with_broken_vla_descriptor(tmp_path, helpers):
    path = tmp_path / "extra.fits.fz"
    shutil.copy(helpers.samples / "extra.fits.fz", path)
    os.chmod(path, 0o644)
    raw = bytearray(path.read_bytes())
    start = _heap_offset(path)
    pos = start + 16 * 6 + 8  # column 7 (VLAJ) descriptor offset of tile 0
    raw[pos : pos + 8] = (2**40).to_bytes(8, "big")
    path.write_bytes(bytes(raw))
    with pytest.raises(CodecError, match="outside the heap") as err:
        read_table(path, columns=["VLAJ"])
    assert err.value.column == "VLAJ"
