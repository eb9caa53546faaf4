"""addstar against the truth of a simulated survey, and its guarantees on bad input."""

from __future__ import annotations

import numpy as np
import pytest
from reference import group_weighted_mean, mean_position_vectors

from dvo.database import open_database
from dvo.ingest import addstar


def _all_measures(db):
    parts = [db.partition(i) for i in db.populated()]
    return parts, np.concatenate([p.measure for p in parts])


def _truth_star_of(db, measure, truth):
    """True star id of each measurement (-1 for spurious), via (chip IMAGEID, IPP_IDET)."""
    images = db.images()
    extern = dict(zip(images["IMAGE_ID"].tolist(), images["EXTERN_ID"].tolist(), strict=True))
    chip = np.array([extern[i] for i in np.unique(measure["IMAGE_ID"]).tolist()])
    lut = dict(zip(np.unique(measure["IMAGE_ID"]).tolist(), chip.tolist(), strict=True))
    imgid = np.vectorize(lut.get)(measure["IMAGE_ID"]).astype(np.int64)
    det = truth.detections
    key_t = det["imageid"].astype(np.int64) * 2**32 + det["ipp_idet"].astype(np.int64)
    key_m = imgid * 2**32 + measure["DET_ID"].astype(np.int64)
    order = np.argsort(key_t)
    pos = np.searchsorted(key_t[order], key_m)
    assert (key_t[order][pos] == key_m).all(), "every stored detection is in the truth"
    return det["star_id"][order][pos]


def _isolated_stars(truth, arcsec: float) -> np.ndarray:
    """Star ids with no other star within ``arcsec`` (close pairs are legitimately blended)."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    s = truth.stars
    c = SkyCoord(s["ra"] * u.deg, s["dec"] * u.deg)
    _, d2, _ = c.match_to_catalog_sky(c, nthneighbor=2)
    return s["star_id"][d2.arcsec > arcsec]


def test_association_recovers_true_stars(tiny_db, tiny_survey, helpers):
    _, truth = tiny_survey
    parts, m = _all_measures(tiny_db)
    star = _truth_star_of(tiny_db, m, truth)
    obj = m["CAT_ID"].astype(np.int64) * 2**32 + m["OBJ_ID"].astype(np.int64)
    real = star >= 0
    # each object's majority true star
    pairs, counts = np.unique(np.stack([obj[real], star[real]]), axis=1, return_counts=True)
    order = np.lexsort((-counts, pairs[0]))
    first = np.r_[True, pairs[0][order][1:] != pairs[0][order][:-1]]
    majority = dict(
        zip(pairs[0][order][first].tolist(), pairs[1][order][first].tolist(), strict=True)
    )
    owner = np.array([majority[o] for o in obj[real].tolist()])
    assert (owner == star[real]).mean() >= 0.999
    # no isolated true star is split into two objects
    isolated = np.isin(star, _isolated_stars(truth, 2.5)) & real
    n_obj = np.unique(np.stack([star[isolated], obj[isolated]]), axis=1)[0]
    _, per_star = np.unique(n_obj, return_counts=True)
    assert per_star.max() == 1
    # the data really cross RA = 0 and the dec 7.5 band edge, in several partitions
    assert (m["RA"] < 0.5).any() and (m["RA"] > 359.5).any()
    assert (m["DEC"] < 7.5).any() and (m["DEC"] > 7.5).any()
    assert len(parts) >= 4
    helpers.assert_db_valid(tiny_db)


def test_averages_equal_bruteforce(tiny_db):
    pc = tiny_db.photcodes
    for part in (tiny_db.partition(i) for i in tiny_db.populated()):
        m, n = part.measure, part.nobjects
        ref = m["AVE_REF"].astype(np.int64)
        dep = pc.column("TYPE", m["PHOTCODE"]) == 3
        assert dep.all()
        sig = np.hypot(
            0.005 * (m["X_CCD_ERR"].astype(float) + m["Y_CCD_ERR"]) * m["PLTSCALE"], 0.015
        )
        ra, dec = mean_position_vectors(ref, m["RA"], m["DEC"], 1 / sig**2, n)
        cosd = np.cos(np.radians(dec))
        dra = ((part.average["RA"] - ra + 180) % 360 - 180) * cosd * 3.6e6
        assert np.abs(dra).max() < 0.01  # mas
        assert np.abs(part.average["DEC"] - dec).max() * 3.6e6 < 0.01
        cal = (
            m["MAG"].astype(float)
            - 25
            + 0.001 * pc.column("C_LAM", m["PHOTCODE"])
            + pc.column("K", m["PHOTCODE"]) * (m["AIRMASS"] - 1)
            - m["MCAL_PSF"]
            - m["M_FLAT"]
        )
        slot = pc.sec_slot(m["PHOTCODE"]).astype(np.int64)
        w = 1 / np.maximum(m["MAG_ERR"].astype(float), 0.001) ** 2
        want = group_weighted_mean(ref * part.nsecfilt + slot, cal, w, n * part.nsecfilt)
        got = part.secfilt["MAG"].astype(float)
        assert np.allclose(got, want, atol=2e-6, equal_nan=True)
        assert np.array_equal(part.average["NMEASURE"], np.bincount(ref, minlength=n))


def test_lensing_rows_follow_their_measures(tiny_db):
    part = tiny_db.partition(tiny_db.populated()[0])
    lens, m = part.lensing, part.measure
    assert len(lens) > 0
    key_m = m["IMAGE_ID"].astype(np.int64) * 2**32 + m["DET_ID"]
    key_l = lens["IMAGE_ID"].astype(np.int64) * 2**32 + lens["DET_ID"]
    pos = np.searchsorted(np.sort(key_m), key_l)
    assert (np.sort(key_m)[pos] == key_l).all()
    owner = dict(zip(key_m.tolist(), m["AVE_REF"].tolist(), strict=True))
    assert [owner[k] for k in key_l.tolist()] == lens["AVE_REF"].tolist()


def test_reingest_changes_nothing(tiny_db, tiny_survey, helpers):
    before = helpers.snapshot(tiny_db)
    report = addstar(tiny_db, tiny_survey[0][:2])
    assert report.loaded == 0 and len(report.skipped) == 2
    assert helpers.snapshot(tiny_db) == before


def test_replace_swaps_measurements(tiny_db, tiny_survey, helpers):
    n_before = int(tiny_db.stats()["NMEASURE"].sum())
    old_ids = set(tiny_db.images()["IMAGE_ID"].tolist())
    report = addstar(tiny_db, tiny_survey[0][:1], replace=True)
    assert report.loaded == 1
    assert int(tiny_db.stats()["NMEASURE"].sum()) == n_before
    new_ids = set(tiny_db.images()["IMAGE_ID"].tolist()) - old_ids
    assert len(new_ids) == 10  # 9 chips + the exposure row
    helpers.assert_db_valid(tiny_db)


def test_reference_catalogue_joins_objects(tiny_db, tiny_survey, tmp_path, helpers):
    import pyarrow as pa
    from pyarrow import csv

    truth = tiny_survey[1]
    seen = np.isin(truth.stars["star_id"], truth.detections["star_id"])
    s = truth.stars[seen & (truth.stars["mag_r"] < 18)]
    path = tmp_path / "ref.csv"
    csv.write_csv(
        pa.table(
            {
                "ra": s["ra"],
                "dec": s["dec"],
                "mag": s["mag_r"],
                "mag_err": np.full(len(s), 0.01),
            }
        ),
        str(path),
    )
    n_obj = int(tiny_db.stats()["NAVERAGE"].sum())
    report = addstar(tiny_db, [path], photcode="REF.r")
    assert report.loaded == 1, report.failed
    assert report.matched >= 0.9 * len(s)
    assert int(tiny_db.stats()["NAVERAGE"].sum()) - n_obj == report.new_objects
    helpers.assert_db_valid(tiny_db)


def test_second_writer_fails_clearly(tiny_db, tiny_survey):
    from dvo.errors import LockError

    with tiny_db.writer(), pytest.raises(LockError, match="locked by another writer"):
        addstar(open_database(tiny_db.catdir), tiny_survey[0][:1], lock_timeout=0)
