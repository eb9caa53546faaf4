"""Bad input is rejected per file with a one-line message, and the database is unchanged."""

from __future__ import annotations

import fitsio
import numpy as np
import pytest

from dvo.ingest import addstar


def _rewrite(src, dst, *, primary=None, drop_key=None, drop_column=None, table_edit=None):
    """Copy an smf, changing primary keywords, dropping a keyword or a column, or editing
    tables."""
    with (
        fitsio.FITS(str(src)) as fin,
        fitsio.FITS(str(dst), "rw", clobber=True, ignore_empty=True) as fout,
    ):
        hdr = fin[0].read_header()
        for key, value in (primary or {}).items():
            hdr[key] = value
        if drop_key:
            hdr.delete(drop_key)
        fout.write(None, header=hdr)
        for hdu in fin[1:]:
            name, h = hdu.get_extname(), hdu.read_header()
            if name.endswith(".hdr"):
                fout.write(None, header=h, extname=name)
                continue
            data = hdu.read()
            if name.endswith(".psf") and drop_column:
                keep = [c for c in data.dtype.names if c != drop_column]
                data = data[keep]
            if name.endswith(".psf") and table_edit and len(data):
                data = table_edit(data.copy())
            fout.write(data, header=h, extname=name)
    return dst


@pytest.fixture
def smf(tiny_survey):
    return tiny_survey[0][0]


def _expect_rejected(db, path, helpers, match):
    before = helpers.snapshot(db)
    report = addstar(db, [path])
    assert report.loaded == 0 and len(report.failed) == 1
    message = report.failed[0][1]
    assert str(path) in message and "\n" not in message
    assert match in message
    assert helpers.snapshot(db) == before


def test_truncated_file(tiny_db, smf, tmp_path, helpers):
    bad = tmp_path / "truncated.smf"
    bad.write_bytes(smf.read_bytes()[: 2880 * 7 + 100])
    _expect_rejected(tiny_db, bad, helpers, "")


def test_not_fits(tiny_db, tmp_path, helpers):
    bad = tmp_path / "garbage.smf"
    bad.write_bytes(b"this is not a FITS file\n" * 200)
    _expect_rejected(tiny_db, bad, helpers, "unreadable")


def test_missing_column(tiny_db, smf, tmp_path, helpers):
    bad = _rewrite(smf, tmp_path / "nodec.smf", drop_column="DEC_PSF")
    _expect_rejected(tiny_db, bad, helpers, "DEC_PSF")


def test_missing_keyword(tiny_db, smf, tmp_path, helpers):
    bad = _rewrite(smf, tmp_path / "noexptime.smf", drop_key="EXPTIME")
    _expect_rejected(tiny_db, bad, helpers, "EXPTIME")


def test_unknown_photcode(tiny_db, smf, tmp_path, helpers):
    bad = _rewrite(smf, tmp_path / "qband.smf", primary={"FILTER": "q", "EXP_ID": 999999})
    _expect_rejected(tiny_db, bad, helpers, "unknown photcode GPC1.q.")


def test_out_of_range_coordinates(tiny_db, smf, tmp_path, helpers):
    def edit(d):
        d["DEC_PSF"][0] = 95.0
        return d

    bad = _rewrite(smf, tmp_path / "dec95.smf", primary={"EXP_ID": 999998}, table_edit=edit)
    _expect_rejected(tiny_db, bad, helpers, "out of range")


def test_nan_detections_are_dropped_and_counted(tiny_db, smf, tmp_path, helpers):
    def edit(d):
        d["RA_PSF"][:3] = np.nan
        return d

    path = _rewrite(
        smf, tmp_path / "nan.smf", primary={"EXP_ID": 999997, "EXP_NAME": "nan"}, table_edit=edit
    )
    report = addstar(tiny_db, [path])
    assert report.loaded == 1 and report.rejected > 0 and report.rejected % 3 == 0
    helpers.assert_db_valid(tiny_db)


def test_other_files_still_load(tiny_db, smf, tmp_path, helpers):
    bad = tmp_path / "garbage.smf"
    bad.write_bytes(b"x" * 5000)
    good = _rewrite(smf, tmp_path / "again.smf", primary={"EXP_ID": 999996, "EXP_NAME": "again"})
    report = addstar(tiny_db, [bad, good])
    assert report.loaded == 1 and len(report.failed) == 1
    helpers.assert_db_valid(tiny_db)


def test_missing_files_and_fifos_among_the_inputs(tiny_db, smf, tmp_path, helpers):
    """Files read ahead while the one before is loaded: a missing file, a FIFO (named like
    a catalogue: the catalogue check opens files) and a file deleted after it was read ahead
    are each reported at their turn, and the files after them still load."""
    import os
    import threading

    fifo, gone = tmp_path / "pipe.fits", tmp_path / "gone.smf"
    os.mkfifo(fifo)
    gone.write_bytes(smf.read_bytes())
    goods = [
        _rewrite(
            smf, tmp_path / f"again{i}.smf", primary={"EXP_ID": 999990 + i, "EXP_NAME": f"a{i}"}
        )
        for i in range(3)
    ]

    def paths():
        yield goods[0]
        yield tmp_path / "missing.smf"
        yield fifo
        yield goods[1]
        yield gone  # read ahead while goods[1] loads; deleted before its turn
        gone.unlink()
        yield goods[2]

    reports = []
    thread = threading.Thread(target=lambda: reports.append(addstar(tiny_db, paths())), daemon=True)
    thread.start()
    thread.join(120)
    assert reports, "addstar did not finish"
    report = reports[0]
    assert report.loaded == 3 and report.files == 6
    failed = dict(report.failed)
    assert set(failed) == {str(tmp_path / "missing.smf"), str(fifo), str(gone)}
    assert all("no such file" in m for m in failed.values())
    helpers.assert_db_valid(tiny_db)
