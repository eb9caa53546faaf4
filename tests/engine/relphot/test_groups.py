"""Disconnected fields, pins, dry runs and interrupted writes (two small fields)."""

from __future__ import annotations

import numpy as np
import pytest

from dvo import codecs, layout
from dvo.flags import ImageFlags
from dvo.relphot import relphot
from dvo.schema import IMAGE
from dvo.transaction import Transaction

NOCAL = np.uint32(ImageFlags.PHOTOM_NOCAL)


def _chip_rows(db):
    images = db.images()
    return images, np.flatnonzero((images["PHOTCODE"] > 0) & (images["EXP_ID"] >= 0))


def test_two_fields_are_two_groups_never_tied(two_fields_db, helpers):
    before, rows = _chip_rows(two_fields_db)
    report = relphot(two_fields_db)
    assert [g["images"] for g in report.groups] == [72, 72]
    assert [g["anchored"] for g in report.groups].count(True) == 1
    after = two_fields_db.images()
    nocal = (after["FLAGS"][rows] & NOCAL) != 0
    assert nocal.sum() == 72
    # the uncalibrated field keeps the zero points it had: no invented tie
    np.testing.assert_array_equal(after["MCAL_PSF"][rows][nocal], before["MCAL_PSF"][rows][nocal])
    fields = np.round(after["RA_CENTER"][rows][nocal] / 10.0)
    assert len(np.unique(fields)) == 1
    helpers.assert_db_valid(two_fields_db)


def _mark_photometric(db, image_rows):
    images = db.images()
    images["FLAGS"][image_rows] |= np.uint32(ImageFlags.PHOTOM_UBERCAL)
    with db.writer(), Transaction(db.catdir) as tx:
        codecs.write_table(tx.stage(layout.IMAGES), IMAGE.conform(images), extname=IMAGE.name,
                           header={"IMAGEID": db.next_image_id()})  # fmt: skip


def test_photometric_images_anchor_each_field(two_fields_db, helpers):
    images, rows = _chip_rows(two_fields_db)
    field = np.round(images["RA_CENTER"][rows] / 10.0)
    anchors = [rows[np.flatnonzero(field == f)[0]] for f in np.unique(field)]
    _mark_photometric(two_fields_db, anchors)
    report = relphot(two_fields_db, pin="photometric")
    assert [g["anchored"] for g in report.groups] == [True, True]
    after = two_fields_db.images()
    assert ((after["FLAGS"][rows] & NOCAL) == 0).all()
    np.testing.assert_allclose(after["MCAL_PSF"][anchors], images["MCAL_PSF"][anchors], atol=1e-5)
    helpers.assert_db_valid(two_fields_db)


def test_ref_pin_without_reference_data_calibrates_nothing(two_fields_db):
    report = relphot(two_fields_db, pin="ref", dry_run=True)
    assert report.images["calibrated"] == 0
    assert not any(g["anchored"] for g in report.groups)


def test_dry_run_changes_nothing(two_fields_db, helpers, tmp_path):
    snap = helpers.snapshot(two_fields_db)
    report = relphot(two_fields_db, dry_run=True, report_dir=tmp_path / "rep")
    assert report.dry_run and not report.written
    assert (tmp_path / "rep" / "relphot.json").exists()
    assert helpers.snapshot(two_fields_db) == snap


def test_interrupted_write_leaves_the_database_as_it_was(two_fields_db, helpers, monkeypatch):
    import dvo.relphot.apply as apply

    snap = helpers.snapshot(two_fields_db)
    calls = []
    real = apply.write_partition

    def failing(part, stage, **kw):
        calls.append(part.index)
        if len(calls) > 1:
            raise KeyboardInterrupt
        real(part, stage, **kw)

    monkeypatch.setattr(apply, "write_partition", failing)
    with pytest.raises(KeyboardInterrupt):
        relphot(two_fields_db)
    assert helpers.snapshot(two_fields_db) == snap
    helpers.assert_db_valid(two_fields_db)


def test_exposure_zero_points_keep_the_fields_apart(two_fields_db, helpers):
    report = relphot(two_fields_db, zeropoints="exposure", iterations=4)
    assert [g["images"] for g in report.groups] == [72, 72]
    assert report.images["calibrated"] == 72
    helpers.assert_db_valid(two_fields_db)


def test_nights_tie_fields_observed_on_one_photometric_night(two_fields_db, helpers):
    # a night model is a physical tie (one atmosphere), unlike the mean pin
    report = relphot(two_fields_db, zeropoints="exposure", nights=True, iterations=4)
    assert report.images["calibrated"] + report.images["uncalibrated"] == 144
    assert report.iterations[-1]["cg_converged"]
    helpers.assert_db_valid(two_fields_db)


def test_ref_pin_anchors_both_fields_on_the_reference_scale(two_fields_ref_dir, tmp_path, helpers):
    import shutil

    from relphot_survey import image_truth, truth_of

    from dvo.database import open_database

    shutil.copytree(two_fields_ref_dir / "db", tmp_path / "db")
    db = open_database(tmp_path / "db")
    report = relphot(db, pin="ref")
    assert [g["anchored"] for g in report.groups] == [True, True]
    sol = report.solution
    assert sol.calibrated.all()
    truth = truth_of(two_fields_ref_dir)
    pos = image_truth(db.images()[sol.model.row], truth)
    # absolute: zero point + the chip's flat mean equals the injected offset, no free constant
    code_row = np.searchsorted(sol.model.flat_codes, sol.model.photcode)
    fit_flat = sol.flat().reshape(len(sol.model.flat_codes), -1).mean(axis=1)[code_row]
    err = sol.mcal + fit_flat - truth.images["dzp"][pos]
    assert abs(float(np.mean(err))) < 0.003
    assert float(np.std(err)) < 0.005
    helpers.assert_db_valid(db)
