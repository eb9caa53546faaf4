"""Object lookups, lightcurves and crossmatch against brute force and astropy."""

from __future__ import annotations

import numpy as np
import pytest
from astropy import units as u
from astropy.coordinates import SkyCoord
from astropy.table import Table
from query_reference import all_measures

from dvo.errors import QueryError
from dvo.photometry import calibrated_mag


def test_object_by_id_returns_the_rows(tiny, tiny_objects):
    ids = tiny_objects["obj_id"][[0, 5, -1]]
    got = tiny.object(ids)
    assert sorted(got["obj_id"]) == sorted(ids)
    k = np.searchsorted(tiny_objects["obj_id"], got["obj_id"])
    assert np.allclose(got["ra"], tiny_objects["ra"][k])
    assert len(tiny.object([12345, ids[0]])) == 1  # an unknown id is simply absent
    with pytest.raises(QueryError, match="integers"):
        tiny.object("abc")


def test_lightcurve_matches_brute_force(tiny, tiny_objects):
    meas = all_measures(tiny)
    oid = tiny_objects["obj_id"][np.argmax(tiny_objects["nmeasure"])]
    lc = tiny.lightcurve(int(oid))
    mine = meas["obj_id"] == oid
    assert len(lc) == mine.sum() >= 4
    assert np.all(np.diff(lc["mjd"]) >= 0)
    pc = tiny.photcodes
    want = calibrated_mag(
        meas["mag"][mine],
        pc.column("C_LAM", meas["photcode"][mine]),
        pc.column("K", meas["photcode"][mine]),
        meas["airmass"][mine],
        meas["mcal"][mine],
        meas["mflat"][mine],
    )
    assert np.allclose(np.sort(lc["mag"]), np.sort(want))
    assert str(lc["mjd"].unit) == "d" and set(lc["filter"]) <= {"g", "r"}
    k = np.flatnonzero(tiny_objects["obj_id"] == oid)[0]
    by_pos = tiny.lightcurve(tiny_objects["ra"][k], tiny_objects["dec"][k], photcodes="g")
    assert set(by_pos["filter"]) == {"g"} and len(by_pos) == (lc["filter"] == "g").sum()
    raw = tiny.lightcurve(int(oid), calibrated=False)
    assert np.allclose(np.sort(raw["mag"]), np.sort(meas["mag"][mine]))


def test_lightcurve_without_object_is_a_clear_error(tiny):
    with pytest.raises(QueryError, match="no object within"):
        tiny.lightcurve(180.0, -45.0)


def test_measures_table_region_query(sky_db):
    objs = sky_db.cone(0.0, 0.0, 2.0, columns=["obj_id", "nmeasure"])
    meas = sky_db.cone(0.0, 0.0, 2.0, table="measures", columns=["obj_id", "mjd", "filter"])
    assert len(meas) == int(np.sum(objs["nmeasure"]))
    assert set(np.unique(meas["obj_id"])) <= set(objs["obj_id"])
    g = sky_db.cone(0.0, 0.0, 2.0, table="measures", where="filter == 'g' and mjd > 55001")
    assert len(g) and set(g["filter"]) == {"g"} and np.all(g["mjd"] > 55001)


def _inputs(objs, rng, n=4000):
    """Positions near objects (jittered 0-3 arcsec) and random ones, incl. RA 0 and poles."""
    k = rng.choice(len(objs["ra"]), n, replace=True)
    off = rng.normal(0, 1.2 / 3600, (2, n))
    ra = np.mod(objs["ra"][k] + off[0] / np.maximum(np.cos(np.radians(objs["dec"][k])), 1e-3), 360)
    dec = np.clip(objs["dec"][k] + off[1], -90, 90)
    rra, rdec = rng.uniform(0, 360, 500), np.degrees(np.arcsin(rng.uniform(-1, 1, 500)))
    return Table({"RA": np.r_[ra, rra], "Dec": np.r_[dec, rdec], "name": np.arange(n + 500)})


def test_crossmatch_equals_astropy(any_sky, rng):
    sky_db, sky_objects = any_sky
    inp = _inputs(sky_objects, rng)
    radius = 2.0
    got = sky_db.crossmatch(inp, radius)
    cat = SkyCoord(sky_objects["ra"] * u.deg, sky_objects["dec"] * u.deg)
    idx, sep, _ = SkyCoord(inp["RA"] * u.deg, inp["Dec"] * u.deg).match_to_catalog_sky(cat)
    hit = sep.arcsec <= radius
    assert len(got) == len(inp) and np.array_equal(got["name"], inp["name"])
    assert np.array_equal(got["obj_id"] >= 0, hit)
    assert np.array_equal(np.asarray(got["obj_id"])[hit], sky_objects["obj_id"][idx[hit]])
    assert np.allclose(np.asarray(got["sep"])[hit], sep.arcsec[hit], atol=1e-6)
    assert hit.sum() > 0.6 * len(inp)


def test_crossmatch_all_pairs_equals_brute_force(sky_db, sky_objects, rng):
    inp = _inputs(sky_objects, rng, n=800)
    got = sky_db.crossmatch(inp, 30.0, all=True)
    cat = SkyCoord(sky_objects["ra"] * u.deg, sky_objects["dec"] * u.deg)
    pts = SkyCoord(inp["RA"] * u.deg, inp["Dec"] * u.deg)
    j, i, _, _ = pts.search_around_sky(cat, 30 * u.arcsec)  # (index into cat, into pts)
    want = sorted(zip(i.tolist(), sky_objects["obj_id"][j].tolist(), strict=True))
    assert sorted(zip(got["input_row"].tolist(), got["obj_id"].tolist(), strict=True)) == want


def test_crossmatch_reads_files_and_parallel_equals_serial(
    sky_db, sky_objects, rng, tmp_path, monkeypatch
):
    from dvo.query import execute

    inp = _inputs(sky_objects, rng, n=1000)
    path = tmp_path / "in.csv"
    inp.write(path, format="ascii.csv")
    one = sky_db.crossmatch(str(path), 1.5, jobs=1, columns=["obj_id", "g"])
    monkeypatch.setattr(execute, "IN_PROCESS_ROWS", 0)
    two = sky_db.crossmatch(inp, 1.5, jobs=2, columns=["obj_id", "g"])
    assert np.array_equal(one["obj_id"], two["obj_id"]) and "g" in one.colnames


def test_crossmatch_bad_input(sky_db, tmp_path):
    with pytest.raises(QueryError, match="ra and dec"):
        sky_db.crossmatch(Table({"x": [1.0]}), 1.0)
    with pytest.raises(QueryError, match="invalid position"):
        sky_db.crossmatch(Table({"ra": [1.0, 2.0], "dec": [0.0, 91.0]}), 1.0)
    with pytest.raises(QueryError, match="radius"):
        sky_db.crossmatch(Table({"ra": [1.0], "dec": [0.0]}), -1.0)
    with pytest.raises(QueryError, match="cannot read"):
        sky_db.crossmatch(str(tmp_path / "missing.fits"), 1.0)


def test_crossmatch_where_restricts_the_candidates(sky_db, sky_objects, rng):
    inp = _inputs(sky_objects, rng, n=1500)
    got = sky_db.crossmatch(inp, 5.0, where="g < 18", columns=["obj_id", "g"])
    bright = sky_objects["g"] < 18
    cat = SkyCoord(sky_objects["ra"][bright] * u.deg, sky_objects["dec"][bright] * u.deg)
    idx, sep, _ = SkyCoord(inp["RA"] * u.deg, inp["Dec"] * u.deg).match_to_catalog_sky(cat)
    hit = sep.arcsec <= 5.0
    assert np.array_equal(np.asarray(got["obj_id"])[hit], sky_objects["obj_id"][bright][idx[hit]])
    assert np.all(np.asarray(got["obj_id"])[~hit] == -1)
    assert np.all(np.asarray(got["g"])[hit] < 18)
