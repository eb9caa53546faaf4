"""relastro's guarantees: what it writes, re-runs, dry runs, interruptions, options, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dvo import codecs, layout
from dvo.database import open_database
from dvo.errors import CalibrationError
from dvo.flags import ImageFlags, MeasFlags, ObjFlags
from dvo.relastro import relastro

FIT_BITS = ObjFlags.FIT_AVE | ObjFlags.FIT_PM | ObjFlags.FIT_PAR


def _all(db, kind: str) -> np.ndarray:
    return np.concatenate([db.partition(i).table(kind) for i in db.populated()])


def test_solved_database_is_valid_and_flagged(solved, helpers):
    db = open_database(solved[0])
    helpers.assert_db_valid(db)
    ave = _all(db, "average")
    fitted = (ave["FLAGS"] & np.uint32(ObjFlags.ASTROMETRY_FITTED)) != 0
    model = ave["FLAGS"] & np.uint32(FIT_BITS)
    assert fitted.sum() > 0.5 * len(ave)
    # exactly one model bit per fitted object, none on the others
    assert np.isin(model[fitted], [ObjFlags.FIT_AVE, ObjFlags.FIT_PM, ObjFlags.FIT_PAR]).all()
    assert (model[~fitted] == 0).all()
    par = model == ObjFlags.FIT_PAR
    assert np.isfinite(ave["PAR_ERR"][par]).all() and np.isfinite(ave["CHISQ_PLX"][par]).all()
    assert np.isnan(ave["PAR_ERR"][model == ObjFlags.FIT_AVE]).all()
    m = _all(db, "measure")
    assert ((m["DB_FLAGS"] & np.uint32(MeasFlags.USED_OBJ)) != 0).mean() > 0.9
    images = db.images()
    chips = images[(images["PHOTCODE"] > 0) & (images["EXP_ID"] >= 0)]
    chips = chips[db.photcodes.column("TYPE", chips["PHOTCODE"]) == 3]
    assert (chips["N_FIT_ASTROM"] > 20).all()
    assert (chips["FLAGS"] & np.uint32(ImageFlags.ASTROM_FEW) == 0).all()
    pix = chips["XPIX_SYS_ERR"] * 0.258
    assert (pix > 0.005).all() and (pix < 0.2).all()


def test_report_json_and_plots(solved):
    path, report = solved
    folder = path.parent / "report"
    data = json.loads((folder / "relastro.json").read_text())
    assert data["iterations"] == report.iterations >= 2
    assert data["n_reference_objects"] > 100 and not data["frame_pinned"]
    assert data["residuals"]["bright"]["after_mas"] < data["residuals"]["bright"]["before_mas"]
    for name in ("field_before.png", "field_after.png", "residual_mag.png"):
        assert (folder / name).read_bytes()[:4] == b"\x89PNG"
    assert "relastro:" in report.summary()


def test_rerun_starts_from_the_chip_wcs_and_does_not_compound(solved, solved_db, helpers):
    before = _all(solved_db, "measure")
    coeff_before = codecs.read_table(solved_db.catdir / layout.RELASTRO)["COEFF"]
    report = relastro(solved_db, iterations=3)
    after = _all(solved_db, "measure")
    coeff_after = codecs.read_table(solved_db.catdir / layout.RELASTRO)["COEFF"]
    moved = np.hypot((after["RA"] - before["RA"]) * np.cos(np.radians(after["DEC"])),
                     after["DEC"] - before["DEC"]) * 3.6e6  # fmt: skip
    assert np.median(moved) < 1.0  # mas
    assert np.abs(coeff_after - coeff_before).max() < 0.01  # arcsec, not doubled
    # seeded by the stored corrections: starts where the first run ended
    first = solved[1].history
    assert report.history[0]["rms_mas"] < 1.05 * first[-1]["rms_mas"] < first[0]["rms_mas"]
    helpers.assert_db_valid(solved_db)


def test_dry_run_writes_nothing(astro_db, helpers):
    snap = helpers.snapshot(astro_db)
    report = relastro(astro_db, iterations=2, dry_run=True)
    assert report.dry_run and report.iterations == 2
    assert helpers.snapshot(astro_db) == snap


def test_interrupted_run_leaves_database_unchanged(astro_db, helpers, monkeypatch):
    from dvo.relastro import apply

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    snap = helpers.snapshot(astro_db)
    monkeypatch.setattr(apply, "write_images", boom)
    with pytest.raises(KeyboardInterrupt):
        relastro(astro_db, iterations=1)
    assert helpers.snapshot(astro_db) == snap
    helpers.assert_db_valid(open_database(astro_db.catdir))


def test_without_reference_the_frame_is_pinned(astro_db, helpers):
    report = relastro(astro_db, ref_photcode=None, iterations=6, pm=False, parallax=False)
    assert report.frame_pinned and report.n_reference_objects == 0
    assert report.models["pm"] == report.models["par"] == 0
    bright = report.residuals["bright"]
    assert bright["after_mas"] < 0.5 * bright["before_mas"]
    helpers.assert_db_valid(astro_db)


def test_addstar_keeps_fitted_positions(solved_db, astro_survey, tmp_path, helpers):
    import pyarrow as pa
    from pyarrow import csv

    from dvo.ingest import addstar

    ave = _all(solved_db, "average")
    fitted = (ave["FLAGS"] & np.uint32(ObjFlags.ASTROMETRY_FITTED)) != 0
    pick = ave[fitted][:200]
    path = tmp_path / "extra.csv"
    table = {"ra": pick["RA"], "dec": pick["DEC"], "mag": np.full(200, 17.0)}
    csv.write_csv(pa.table({**table, "mag_err": np.full(200, 0.01)}), str(path))
    assert addstar(solved_db, [path], photcode="REF.r").matched == 200
    after = _all(solved_db, "average")
    keep = np.isin(after["RA"], pick["RA"])
    assert keep.sum() == 200
    assert set(after["DEC"][keep].tolist()) == set(pick["DEC"].tolist())
    helpers.assert_db_valid(solved_db)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ref_photcode": "NOPE"}, "unknown photcode NOPE"),
        ({"ref_photcode": "GPC1.r.XY33"}, "is not a REF photcode"),
        ({"iterations": 0}, "iterations must be at least 1"),
        ({"order_max": 4}, "order_max must be 0..3"),
        ({"relax": 2.5}, "relax must be in"),
    ],
)
def test_bad_options(astro_master, kwargs, match):
    with pytest.raises(CalibrationError, match=match):
        relastro(open_database(astro_master), dry_run=True, **kwargs)


def test_empty_database_is_an_error(tmp_path):
    from dvo.database import create_database

    with pytest.raises(CalibrationError, match="no chip images"):
        relastro(create_database(tmp_path / "empty"))


def test_cli_wiring(astro_master, capsys):
    from dvo.cli.relastro import main

    main(["-D", str(astro_master), "--dry-run", "--iterations", "1", "--quiet"])
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as exc:
        main(["-D", str(astro_master), "--dry-run", "--ref-photcode", "NOPE", "-q"])
    assert exc.value.code == 1
    assert "error: unknown photcode NOPE" in capsys.readouterr().err
