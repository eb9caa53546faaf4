"""write_table's file bytes equal an independent, slow numpy writer's (and fpack's heap).

The fast write path takes columns straight out of structured arrays (fused extraction,
byte swap, shuffle) and assembles the HDU without joins; these tests pin its output to a
plain reference: each column converted to FITS storage with numpy, made big-endian with
``astype``, shuffled with a transpose, compressed with zlib-ng / zstandard / the Rice
kernel (itself checked against cfitsio's bytes in test_interop), and the heap laid out tile
by tile, column by column, as cfitsio does. fpack's file is a second reference: the same
tiles, descriptors of the same layout, and blocks that inflate (with Python's zlib) or are
(Rice) the same bytes.
"""

from __future__ import annotations

import itertools
import struct
import zlib

import numpy as np
import pytest
import zstandard
from dvo.codecs import read_table, settings, table_info, write_table
from dvo.codecs._api import _primary_cards, choose_algorithms
from dvo.codecs._columns import column_for_array
from dvo.codecs._fitsfile import hdu_bytes
from dvo.codecs._kernels import rice_encode
from dvo.codecs._schema import compressed_cards, table_cards
from zlib_ng import zlib_ng

COMPRESSIONS = ["ZSTD", "ZSTD_1", "GZIP_2", "GZIP_1", "RICE_1", "NOCOMPRESS", "default"]
FIELDS = [
    ("f4", "f4"),
    ("f8", "f8"),
    ("i2", "i2"),
    ("i4", "i4"),
    ("i8", "i8"),
    ("u2", "u2"),
    ("u4", "u4"),
    ("u8", "u8"),
    ("u1", "u1"),
    ("i1", "i1"),
    ("s5", "S5"),
    ("s1", "S1"),
    ("flag", "?"),
    ("v3f", "f4", (3,)),
    ("v2i", "i4", (2,)),
    ("v2u", "u2", (2,)),
    ("v2d", "f8", (2,)),
    # byte planes that look random (stored, not deflated, by GZIP_2): last, first, in a vector
    ("noise_f8", "f8"),
    ("noise_u2", "u2"),
    ("noise_v2f", "f4", (2,)),
]


def _values(rng, dt: np.dtype, n: int) -> np.ndarray:
    """Values with full-range bits: extremes, NaN/-0/inf for floats, slowly varying ints."""
    base, shape = dt.subdtype or (dt, ())
    base = base.newbyteorder("=")
    size = n * int(np.prod(shape, dtype=int))
    if base.kind == "f":
        v = rng.normal(18, 3, size).astype(base)
        v[::7] = np.nan
        v[3::11] = -0.0
        v[5::13] = np.inf
        v[: min(size, 40)] = 1.5  # a constant run
    elif base.kind in "iu":
        info = np.iinfo(base)
        v = np.cumsum(rng.integers(-3, 9, size)).astype(base)
        v[::17] = info.max
        v[1::19] = info.min
        v[2::23] = rng.integers(info.min, info.max, len(v[2::23]), dtype=base, endpoint=True)
    elif base.kind == "S":
        v = np.array([b"ab", b"", b"xyzzy", b"\x01\xff", b"q"], dtype=base)[
            rng.integers(0, 5, size)
        ]
    else:
        v = rng.integers(0, 2, size).astype(bool)
    return v.reshape((n, *shape))


def make_struct(rng, n: int, fields=FIELDS, byteorder: str = "=", align: bool = False):
    """A structured array with the given fields (packed unless ``align``)."""
    dtype = np.dtype(
        [(f[0], np.dtype(f[1]).newbyteorder(byteorder), *f[2:]) for f in fields], align=align
    )
    out = np.zeros(n, dtype=dtype)
    for name in dtype.names:
        make = _noise if name.startswith("noise") else _values
        out[name] = make(rng, dtype[name], n)
    return out


def _noise(rng, dt: np.dtype, n: int) -> np.ndarray:
    """Floats with random low mantissa bytes; for integers, a random high byte only."""
    base, shape = dt.subdtype or (dt, ())
    if base.kind == "f":
        return rng.uniform(1, 2, (n, *shape)).astype(base.newbyteorder("="))
    return (rng.integers(0, 256, (n, *shape)) << 8).astype(base.newbyteorder("="))


# ---- the reference writer: numpy only, one column of one tile at a time ----


def _storage(values: np.ndarray) -> np.ndarray:
    """FITS storage elements of one user column, flattened in row order (native order)."""
    v = np.array(values)  # a copy, native layout
    n = len(v)
    if v.dtype.kind == "b":
        return np.where(v, 84, 70).astype(np.uint8).reshape(-1)
    if v.dtype.kind == "S":
        width = v.dtype.itemsize
        return np.frombuffer(v.tobytes(), np.uint8).reshape(n * width)
    v = v.astype(v.dtype.newbyteorder("="))
    if v.dtype == np.int8:
        return (v.view(np.uint8) ^ np.uint8(0x80)).reshape(-1)
    if v.dtype.kind == "u" and v.dtype.itemsize > 1:
        bits = 8 * v.dtype.itemsize
        signed = (v.astype(object) - 2 ** (bits - 1)).astype(f"i{v.dtype.itemsize}")
        return signed.reshape(-1)
    return v.reshape(-1)


def _reference_block(algo: str, flat: np.ndarray) -> bytes:
    width = flat.dtype.itemsize
    be = flat.astype(flat.dtype.newbyteorder(">")).tobytes()
    if algo in ("GZIP_2", "ZSTD_2"):
        be = np.frombuffer(be, np.uint8).reshape(-1, width).T.tobytes()
    if algo == "GZIP_2":
        return _reference_gzip2(be, width)
    if algo == "GZIP_1":
        return zlib_ng.compress(be, settings.GZIP_LEVEL, 31)
    if algo in ("ZSTD_1", "ZSTD_2"):
        cctx = zstandard.ZstdCompressor(level=settings.ZSTD_LEVEL, write_checksum=True)
        return cctx.compress(be)
    if algo == "NOCOMPRESS":
        return be
    assert algo == "RICE_1"
    return rice_encode(np.ascontiguousarray(flat).view(f"u{width}"), width).tobytes()


def _looks_random(plane: np.ndarray) -> bool:
    """At least 512 bytes, and a sample of ~1024 of them has a pair-collision rate < 1/223."""
    if len(plane) < 512:
        return False
    sample = plane[:: max(1, len(plane) // 1024)]
    counts = np.bincount(sample, minlength=256).astype(np.int64)
    return int((counts * (counts - 1)).sum()) * 223 < len(sample) * (len(sample) - 1)


def _reference_gzip2(shuffled: bytes, width: int) -> bytes:
    """One gzip member: random-looking planes as stored blocks (<= 65535 bytes each), each
    run of the other planes deflated by zlib-ng and sync-flushed (finished if last)."""
    planes = np.frombuffer(shuffled, np.uint8).reshape(width, -1)
    flags = [_looks_random(p) for p in planes]
    if not any(flags):
        return zlib_ng.compress(shuffled, settings.GZIP_LEVEL, 31)
    out = bytearray(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x04\x03")  # XFL 4: fastest
    runs = [list(g) for _, g in itertools.groupby(range(width), key=flags.__getitem__)]
    for run in runs:
        data, final = planes[run].tobytes(), run[-1] == width - 1
        if flags[run[0]]:
            chunks = [data[i : i + 65535] for i in range(0, len(data), 65535)]
            for j, chunk in enumerate(chunks):
                out += bytes([final and j == len(chunks) - 1])
                out += struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF) + chunk
        else:
            deflate = zlib_ng.compressobj(settings.GZIP_LEVEL, zlib_ng.DEFLATED, -15)
            out += deflate.compress(data)
            out += deflate.flush(zlib_ng.Z_FINISH if final else zlib_ng.Z_SYNC_FLUSH)
    return bytes(out + struct.pack("<II", zlib.crc32(shuffled), len(shuffled)))


def reference_file(data, compression, tile_rows: int) -> bytes:
    """The bytes write_table must produce, built the slow, obvious way."""
    if isinstance(data, dict):
        pairs = [(k, np.asarray(v)) for k, v in data.items()]
    else:
        pairs = [(k, data[k]) for k in data.dtype.names]
    cols = [column_for_array(k, v, None, None) for k, v in pairs]
    nrows = len(pairs[0][1])
    algos = choose_algorithms(cols, compression, {})
    blocks, desc = [], []
    for start in range(0, nrows, tile_rows):
        row = []
        for (_, v), algo in zip(pairs, algos, strict=True):
            blk = _reference_block(algo, _storage(v[start : start + tile_rows]))
            row.append((len(blk), sum(len(b) for b in blocks)))
            blocks.append(blk)
        desc.append(row)
    heap = b"".join(blocks)
    desc_bytes = np.array(desc, dtype=">i8").reshape(-1, len(cols), 2).tobytes()
    cards = compressed_cards(
        table_cards(cols, nrows, None, []),
        ntiles=len(desc),
        heap_size=len(heap),
        maxlens=[max((d[i][0] for d in desc), default=0) for i in range(len(cols))],
        algorithms=algos,
        tile_rows=tile_rows,
    )
    primary = hdu_bytes(_primary_cards(None), b"", checksum=True)
    return primary + hdu_bytes(cards, desc_bytes + heap, checksum=True)


def _check(tmp_path, data, compression, tile_rows):
    path = tmp_path / "t.fits"
    write_table(path, data, compression=compression, tile_rows=tile_rows)
    want = reference_file(data, compression, tile_rows)
    got = path.read_bytes()
    assert len(got) == len(want)
    assert got == want
    return path


# ---- the tests ----


@pytest.mark.parametrize("compression", COMPRESSIONS)
@pytest.mark.parametrize(
    "layout",
    ["native", "big", "aligned", "sliced", "reversed", "dict", "recarray", "masked", "readonly"],
)
def test_file_bytes_equal_the_reference(tmp_path, rng, compression, layout):
    n = 2503  # tiles of 1000 and a short last tile, none a multiple of 8 rows
    if layout == "big":
        data = make_struct(rng, n, byteorder=">")
    elif layout == "aligned":
        data = make_struct(rng, n, align=True)
    elif layout == "sliced":
        data = make_struct(rng, 3 * n)[1::3]
    elif layout == "reversed":
        data = make_struct(rng, n)[::-1]
    else:
        data = make_struct(rng, n)
    if layout == "dict":
        data = {k: data[k] for k in data.dtype.names}
    elif layout == "readonly":
        data = np.frombuffer(data.tobytes(), dtype=data.dtype)
    elif layout == "recarray":
        data = data.view(np.recarray)
    elif layout == "masked":  # written as its data, masked values included
        data = np.ma.masked_array(
            data, mask=np.zeros(n, dtype=[(k, bool) for k in data.dtype.names])
        )
        data.mask["f4"][::3] = True
    path = _check(tmp_path, data, compression, 1000)
    got = read_table(path, verify=True)
    for name in got.dtype.names:
        a, b = got[name], np.ma.getdata(data[name])
        assert np.array_equal(a, b, equal_nan=a.dtype.kind == "f"), name


@pytest.mark.parametrize("compression", ["ZSTD", "default", "GZIP_1", "NOCOMPRESS"])
@pytest.mark.parametrize(("n", "tile_rows"), [(0, 10), (1, 10), (7, 3), (64, 8), (100, 100)])
def test_small_and_exact_tiles(tmp_path, rng, compression, n, tile_rows):
    _check(tmp_path, make_struct(rng, n), compression, tile_rows)


@pytest.mark.parametrize("compression", ["GZIP_2", "default"])
def test_random_planes_judged_on_a_sample(tmp_path, rng, compression):
    """DVO's tiles of 10000 rows: a plane is judged on every 9th byte (every 4th in a last
    tile of 5000 rows). ``sampled`` has random low bytes on exactly those rows of its
    first tiles, and zeros elsewhere, so another sample would deflate that plane."""
    fields = [("noise_f8", "f8"), ("noise_u2", "u2"), ("f4", "f4"), ("sampled", "u4")]
    data = make_struct(rng, 25000, fields)
    rows = np.arange(25000) % 10000
    picked = rows % 9 == 0
    data["sampled"] = np.where(picked, rng.integers(0, 256, 25000), 0)
    path = _check(tmp_path, data, compression, 10000)
    assert np.array_equal(read_table(path)["sampled"], data["sampled"])


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_constant_tiles_equal_the_reference(tmp_path, rng, compression):
    """Tiles whose column holds one value (NaN, zero, a flipped unsigned, a column constant
    in some tiles only) reuse one compressed block: the bytes must not change, in the
    first table written and in a second one that finds the blocks already made."""
    data = make_struct(rng, 2503)
    data["f4"], data["i2"], data["u4"] = np.nan, 0, 7
    data["f8"][:1000] = -0.0  # the first tile only
    data["i4"][2000:] = 12345  # the short last tile only
    for _ in range(2):
        _check(tmp_path, data, compression, 1000)
        _check(tmp_path, data[:2001], compression, 1000)  # a last tile of one row


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_columns_that_vary_in_one_byte_next_to_constant_ones(tmp_path, rng, compression):
    """The writer finds constant columns from the bytes of whole records: a column whose
    values differ only in its first or its last byte, beside constant columns, must not be
    taken for constant (nor make its neighbours look varying). Each tile starts with the
    same values, so a tile wrongly taken for constant would get the first tile's block."""
    dtype = np.dtype([("k0", "<f4"), ("lo", "<i4"), ("k1", "<i2"), ("hi", "<u2"), ("k2", "<f8"),
                      ("top", "<i8"), ("k3", "<u1"), ("mid", "<f4")])  # fmt: skip
    data = np.zeros(2503, dtype)
    data["k0"], data["k1"], data["k2"], data["k3"] = np.nan, -3, 1.5, 9
    vary = rng.integers(1, 100, len(data))
    vary[::1000] = 0
    data["lo"] = vary  # only the first (low) byte varies
    data["hi"] = vary << 8  # only the last byte varies
    data["top"] = vary.astype(np.int64) << 56
    data["mid"] = np.where(vary % 2, 1.0, 1.0000001)  # a middle bit
    for _ in range(2):
        path = _check(tmp_path, data, compression, 1000)
        assert read_table(path).tobytes() == data.tobytes()


def test_per_column_algorithms_and_wide_rows(tmp_path, rng):
    fields = [(f"c{i}", dt) for i, dt in enumerate(["f4", "f8", "i2", "i4", "u4", "i8"] * 12)]
    data = make_struct(rng, 5000, fields=fields)
    choice = {"c0": "GZIP_1", "c1": "ZSTD_1", "c2": "GZIP_2", "c3": "RICE_1", "c4": "ZSTD"}
    _check(tmp_path, data, choice, 1024)
    _check(tmp_path, data, "ZSTD", 10000)


@pytest.mark.parametrize("keep", [0, 1 << 22])
def test_threads_and_scratch_buffers_give_the_same_bytes(tmp_path, rng, monkeypatch, keep):
    from dvo.codecs import _codecs

    data = make_struct(rng, 9000)
    monkeypatch.setattr(settings, "THREADS", 2)
    monkeypatch.setattr(_codecs, "_KEEP_BYTES", keep)  # 0: a new scratch buffer per block
    for compression in ("ZSTD", "default", "GZIP_1"):
        _check(tmp_path, data, compression, 1000)


def test_fpack_heap_equals_ours(tmp_path, rng, helpers, cfitsio):
    """cfitsio as a second, independent reference for the standard algorithms."""
    fields = [f for f in FIELDS if f[1] not in ("u8",)]  # fpack has no TZERO=2**63 K columns
    data = make_struct(rng, 2503, fields=fields)
    ours = tmp_path / "ours.fits"
    write_table(ours, data, compression="default", tile_rows=1000)
    algos = table_info(ours).algorithms
    plain = tmp_path / "plain.fits"
    header = [("FZTILELN", 1000, "")] + [
        (f"FZALG{i}", algos[name], "") for i, name in enumerate(data.dtype.names, 1)
    ]
    write_table(plain, data, compression="none", header=header)
    fz = tmp_path / "plain.fits.fz"
    res = helpers.run_tool("fpack", "-table", "-O", str(fz), str(plain))
    assert res.returncode == 0, res.stderr
    assert table_info(fz).algorithms == algos
    theirs, ours_blocks = _blocks(fz), _blocks(ours)
    assert theirs.keys() == ours_blocks.keys()
    for (tile, name), block in ours_blocks.items():
        want = theirs[tile, name]
        if algos[name].startswith("GZIP"):  # cfitsio's zlib and our zlib-ng deflate apart
            block, want = zlib.decompress(block, 31), zlib.decompress(want, 31)
        assert block == want, (tile, name, algos[name])


def _blocks(path) -> dict[tuple[int, str], bytes]:
    """Heap block of each (tile, column), found through the file's descriptors."""
    import os

    from dvo.codecs._fitsfile import find_hdu
    from dvo.codecs._schema import table_layout
    from dvo.codecs._tiled import read_descriptors

    fd = os.open(path, os.O_RDONLY)
    try:
        hdu = find_hdu(fd, str(path), 1)
        layout = table_layout(hdu.header, {})
        desc = read_descriptors(fd, hdu, layout, {})
        heap = hdu.data_start + hdu.header["NAXIS1"] * len(desc)
        return {
            (t, col.name): os.pread(fd, int(desc[t, i, 0]), heap + int(desc[t, i, 1]))
            for t in range(len(desc))
            for i, col in enumerate(layout.columns)
        }
    finally:
        os.close(fd)
