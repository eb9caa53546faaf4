"""SkyTable FITS round trips and rejection of bad files."""

from __future__ import annotations

import fitsio
import numpy as np
import pytest
from dvo.skytable import SkyTable

from dvo.errors import SkyTableError

COLUMNS = SkyTable._COLUMNS


def test_round_trip(st, tmp_path, rng, oracle):
    path = tmp_path / "SkyTable.fits"
    hosted = st.with_hosts(rng.integers(1, 5, len(st)), 7, host_flags=1)
    hosted.write(path)
    back = SkyTable.read(path)
    assert back.scheme is st.scheme and back.level == st.level and len(back) == len(st)
    for col in COLUMNS:
        assert np.array_equal(getattr(back, col), getattr(hosted, col)), col
    ra, dec = oracle.uniform_points(rng, 20_000)
    assert np.array_equal(back.lookup(ra, dec), st.lookup(ra, dec))
    hdr = fitsio.read_header(path, ext="SKYTABLE")
    assert hdr["SCHEME"] == st.scheme.value
    rec = fitsio.read(path, ext="SKYTABLE", rows=[0, len(st) - 1])
    for name in (
        "R_MIN",
        "R_MAX",
        "D_MIN",
        "D_MAX",
        "NAME",
        "INDEX",
        "DEPTH",
        "PARENT",
        "CHILD_S",
        "CHILD_E",
        "TABLE",
        "HOST_ID",
        "BACKUP_ID",
        "HOST_FLAGS",
    ):
        assert name in rec.dtype.names


def test_with_hosts_validates(gsc3):
    copy = gsc3.with_hosts(3, 4)
    assert (copy.host_id == 3).all() and (gsc3.host_id == 0).all()
    with pytest.raises(SkyTableError, match="0..255"):
        gsc3.with_hosts(256, 0)


def _rewrite(path, tmp_path, change):
    rec = fitsio.read(path, ext="SKYTABLE")
    hdr = fitsio.read_header(path, ext="SKYTABLE")
    rec = change(rec)
    out = tmp_path / "bad.fits"
    fitsio.write(
        out,
        rec,
        extname="SKYTABLE",
        header={"SCHEME": hdr["SCHEME"], "LEVEL": hdr["LEVEL"]},
        clobber=True,
    )
    return out


def _set(rec, col, row, value):
    rec[col][row] = value
    return rec


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda r: _set(r, "NAME", 5, b"../../etc"), "unsafe"),
        (lambda r: _set(r, "NAME", 5, r["NAME"][6]), "duplicate"),
        (lambda r: _set(r, "INDEX", 3, 99), "INDEX"),
        (lambda r: _set(r, "PARENT", 30, 7), "children and parents"),
        (lambda r: _set(r, "D_MIN", 2, np.nan), "bounds"),
        (lambda r: r[[n for n in r.dtype.names if n != "R_MAX"]], "missing"),
    ],
)
def test_bad_files_rejected(gsc3, tmp_path, change, match):
    path = tmp_path / "SkyTable.fits"
    gsc3.write(path)
    with pytest.raises(SkyTableError, match=match):
        SkyTable.read(_rewrite(path, tmp_path, change))


def test_not_a_skytable(tmp_path):
    with pytest.raises(SkyTableError, match="no such file"):
        SkyTable.read(tmp_path / "missing.fits")
    junk = tmp_path / "junk.fits"
    junk.write_bytes(b"not a fits file" * 100)
    with pytest.raises(SkyTableError, match="junk.fits"):
        SkyTable.read(junk)
    other = tmp_path / "other.fits"
    fitsio.write(other, np.zeros(3, dtype=[("A", "i4")]), extname="OTHER")
    with pytest.raises(SkyTableError, match="no SKYTABLE"):
        SkyTable.read(other)


def test_index_of_and_geometry(gsc3, hpx):
    i = gsc3.index_of("n0000/0001")
    assert gsc3.name[i] == "n0000/0001"
    ra, dec = gsc3.centre([i])
    assert gsc3.lookup(ra, dec)[0] == i
    with pytest.raises(SkyTableError, match="no partition"):
        gsc3.index_of("nowhere")
    j = hpx.partitions[100]
    ra, dec = hpx.centre([j])
    assert hpx.lookup(ra, dec)[0] == j
    assert hpx.area([j])[0] == pytest.approx(41252.96124941928 / (12 * 4**6))
