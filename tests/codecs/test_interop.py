"""cfitsio's files read by us: the fpack samples, and fpack -table on random tables."""

from __future__ import annotations

import zlib

import fitsio
import numpy as np
import pytest
from astropy.io import fits
from dvo.codecs import read_header, read_table, table_info, verify_checksums, write_table
from dvo.codecs._fitsfile import find_hdu
from dvo.codecs._schema import table_layout
from dvo.codecs._tiled import read_descriptors

SAMPLES = ["basic", "tiled", "algos", "extra"]


def _fitsio_column(name, arr, want):
    """fitsio returns A as str and VLAs padded: bring them to our form for comparison."""
    if arr.dtype.kind == "U":
        return np.char.encode(arr, "ascii")
    return arr


@pytest.mark.parametrize("sample", SAMPLES)
def test_fpack_samples_match_their_fits_twin(helpers, sample):
    fz, plain = helpers.samples / f"{sample}.fits.fz", helpers.samples / f"{sample}.fits"
    got = read_table(fz, verify=True)
    twin = fitsio.read(str(plain))
    with fits.open(plain) as hdul:
        astro = hdul[1].data
        for name in got.dtype.names:
            if got.dtype[name].kind == "O":  # VLAs: astropy gives the true lengths
                for a, b in zip(got[name], astro[name], strict=True):
                    assert np.array_equal(np.asarray(a), np.asarray(b))
            elif got.dtype[name].base.kind == "b" and got.dtype[name].shape:  # X bits
                assert (got[name] == np.asarray(astro[name])).all()
            else:
                want = _fitsio_column(name, twin[name], got[name])
                helpers.assert_same({name: got[name]}, {name: want})
    assert read_header(fz)["EXTNAME"] == "CATALOG"


def test_fpack_sample_header_translation(helpers):
    h = read_header(helpers.samples / "extra.fits.fz")
    plain = fitsio.read_header(str(helpers.samples / "extra.fits"), ext=1)
    for key in ("NAXIS1", "NAXIS2", "PCOUNT", "TFORM1", "TFORM9", "TZERO5", "EXTNAME"):
        assert h[key] == plain[key], key
    assert "ZTABLE" not in h and "ZFORM1" not in h
    assert h["DATASUM"] == plain["DATASUM"]  # ZDATASUM of the original comes back
    info = table_info(helpers.samples / "algos.fits.fz")
    assert info.tile_rows == 256 and info.algorithms["ID32"] == "GZIP_2"


@pytest.mark.parametrize("sample", ["nocomp", "small"])
def test_tables_fpack_left_plain(helpers, sample):
    path = helpers.samples / f"{sample}.fits"
    got, want = read_table(path), fitsio.read(str(path))
    for name in want.dtype.names:
        helpers.assert_same({name: got[name]}, {name: _fitsio_column(name, want[name], None)})


def test_verify_checksums_of_fpack_output(helpers):
    verify_checksums(helpers.samples / "extra.fits.fz")


def _heap_block(path, column, tile):
    """Raw heap bytes of one column of one tile, via our own descriptor reader."""
    import os

    fd = os.open(path, os.O_RDONLY)
    try:
        hdu = find_hdu(fd, str(path), 1)
        layout = table_layout(hdu.header, {})
        desc = read_descriptors(fd, hdu, layout, {})
        i = [c.name for c in layout.columns].index(column)
        start = hdu.data_start + hdu.header["NAXIS1"] * len(desc) + desc[tile, i, 1]
        return os.pread(fd, int(desc[tile, i, 0]), int(start)), layout.columns[i]
    finally:
        os.close(fd)


@pytest.mark.parametrize(
    ("sample", "column", "algo"),
    [
        ("basic", "ID32", "RICE_1"),
        ("algos", "SHORT", "RICE_1"),
        ("algos", "UBYTE", "RICE_1"),
        ("basic", "RA", "GZIP_2"),
        ("basic", "NAME", "GZIP_1"),
        ("algos", "ID32", "GZIP_2"),
    ],
)
def test_our_encoders_give_cfitsio_bytes(helpers, sample, column, algo):
    from dvo.codecs import ALGORITHMS
    from dvo.codecs._columns import user_to_storage

    fz = helpers.samples / f"{sample}.fits.fz"
    want, col = _heap_block(fz, column, 0)
    rows = table_info(fz).tile_rows
    values = read_table(fz, columns=[column], rows=(0, rows))[column]
    ours = ALGORITHMS[algo]().encode(user_to_storage(col, values).reshape(-1))
    if algo.startswith("GZIP"):  # zlib-ng deflates other bytes than cfitsio's zlib: both
        ours, want = zlib.decompress(ours, 31), zlib.decompress(want, 31)  # gzip streams
    assert ours == want


@pytest.mark.parametrize("seed", range(4))
def test_fpack_table_on_random_tables(tmp_path, helpers, cfitsio, seed):
    rng = np.random.default_rng(seed)
    kinds = [
        "bool",
        "uint8",
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
    data = helpers.make_table(rng, int(rng.integers(1500, 6000)), kinds)
    plain = tmp_path / "r.fits"
    tile = int(rng.integers(100, 2000))
    algos = {1: "GZIP_1", 2: "GZIP_2", 3: "RICE_1"}
    header = [("FZTILELN", tile, "")] + [
        (f"FZALG{i + 1}", algos[int(rng.integers(1, 4))], "") for i in range(len(kinds))
    ]
    write_table(plain, data, compression="none", header=header)
    res = helpers.run_tool("fpack", "-table", str(plain))
    assert res.returncode == 0, res.stderr
    fz = tmp_path / "r.fits.fz"
    assert table_info(fz).compressed and table_info(fz).tile_rows == tile
    helpers.assert_same(read_table(fz, verify=True), data)
    lo = int(rng.integers(0, len(data["int32"])))
    part = read_table(fz, columns=["float32", "S8"], rows=(lo, lo + 777))
    helpers.assert_same(part, {k: data[k][lo : lo + 777] for k in ("float32", "S8")})
    res = helpers.run_tool("fpack", "-table", "-C", "-O", str(tmp_path / "again.fz"), str(plain))
    assert res.returncode == 0


def test_plain_twin_with_vlas_reads_like_the_compressed_file(helpers):
    plain = read_table(helpers.samples / "extra.fits")
    packed = read_table(helpers.samples / "extra.fits.fz", rows=(100, 900))
    for name in plain.dtype.names:
        for a, b in zip(plain[name][100:900], packed[name], strict=True):
            assert np.array_equal(np.asarray(a), np.asarray(b)), name


def test_general_tscal_tzero_read_as_float(tmp_path):
    """Non-unsigned TSCAL/TZERO give float64 physical values (stored * TSCAL + TZERO)."""
    from dvo.codecs._fitsfile import hdu_bytes
    from dvo.codecs._header import Card

    cards = [
        Card("XTENSION", "BINTABLE"),
        Card("BITPIX", 8),
        Card("NAXIS", 2),
        Card("NAXIS1", 2),
        Card("NAXIS2", 5),
        Card("PCOUNT", 0),
        Card("GCOUNT", 1),
        Card("TFIELDS", 1),
        Card("TTYPE1", "x"),
        Card("TFORM1", "I"),
        Card("TSCAL1", 0.5),
        Card("TZERO1", 10.0),
    ]
    primary = [Card("SIMPLE", True), Card("BITPIX", 8), Card("NAXIS", 0)]
    body = np.arange(5, dtype=">i2").tobytes()
    path = tmp_path / "s.fits"
    path.write_bytes(hdu_bytes(primary, b"", checksum=True) + hdu_bytes(cards, body, checksum=True))
    got = read_table(path, verify=True)["x"]
    assert got.dtype == np.float64 and np.allclose(got, np.arange(5) * 0.5 + 10)
    with fits.open(path) as hdul:
        assert np.allclose(hdul[1].data["x"], got)


def test_1pb_descriptors_from_other_writers(tmp_path, rng, helpers):
    """A ZTABLE with 32-bit '1PB' descriptors (allowed by the standard) reads the same."""
    from dvo.codecs._fitsfile import hdu_bytes
    from dvo.codecs._header import Card, parse_header_block

    data = helpers.make_table(rng, 2500, ["int32", "float64", "S8"])
    path = tmp_path / "q.fits"
    write_table(path, data, tile_rows=1000)
    raw = path.read_bytes()
    start = raw.index(b"END" + b" " * 77, 2880) // 2880 * 2880 + 2880
    header, _ = parse_header_block(raw[2880:start])
    ntiles, ncols = header["NAXIS2"], header["TFIELDS"]
    desc = np.frombuffer(raw[start : start + 16 * ntiles * ncols], ">i8")
    heap = raw[start + 16 * ntiles * ncols : start + 16 * ntiles * ncols + header["PCOUNT"]]
    cards = [
        Card(c.key, 8 * ncols, c.comment)
        if c.key == "NAXIS1"
        else Card(c.key, c.value.replace("1QB", "1PB"), c.comment)
        if c.key.startswith("TFORM")
        else c
        for c in header.cards
    ]
    body = hdu_bytes(cards, desc.astype(">i4").tobytes() + heap, checksum=True)
    path.write_bytes(raw[:2880] + body)
    helpers.assert_same(read_table(path, verify=True), data)
