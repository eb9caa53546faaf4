"""Region queries against brute force over every partition (astropy separations)."""

from __future__ import annotations

import numpy as np
import pytest
from query_reference import in_box, in_cone, in_polygon

from dvo.errors import QueryError, QuerySyntaxError


def _ids(table) -> np.ndarray:
    return np.asarray(table["obj_id"])


def _sorted_ids(objs, mask) -> np.ndarray:
    return np.sort(objs["obj_id"][mask])


def _random_cones(rng, n):
    """Centres everywhere incl. RA 0/360 and the poles; radii 1 arcsec .. 30 deg (log)."""
    ra = np.concatenate([rng.uniform(0, 360, n - 6), [0.0, 359.9999, 0.0, 180.0, 0.0, 45.0]])
    dec = np.concatenate(
        [np.degrees(np.arcsin(rng.uniform(-1, 1, n - 6))), [0.0, 0.5, 90.0, -90.0, 89.5, -88.0]]
    )
    radius = 10 ** rng.uniform(np.log10(1 / 3600), np.log10(30), n)
    return zip(ra, dec, radius, strict=True)


def test_cone_matches_brute_force_on_sky_db(any_sky, rng):
    sky_db, sky_objects = any_sky
    for ra, dec, radius in _random_cones(rng, 30):
        got = sky_db.cone(ra, dec, radius, columns=["obj_id", "ra", "dec"])
        want = _sorted_ids(sky_objects, in_cone(sky_objects, ra, dec, radius))
        assert np.array_equal(np.sort(_ids(got)), want), (ra, dec, radius)


def test_cone_on_existing_objects_finds_them(any_sky, rng):
    """Cones of 1 arcsec centred on objects: each finds at least its own object."""
    sky_db, sky_objects = any_sky
    pick = rng.choice(len(sky_objects["ra"]), 20, replace=False)
    for k in pick:
        ra, dec = sky_objects["ra"][k], sky_objects["dec"][k]
        got = _ids(sky_db.cone(ra, dec, 1 / 3600, columns="obj_id"))
        want = _sorted_ids(sky_objects, in_cone(sky_objects, ra, dec, 1 / 3600))
        assert sky_objects["obj_id"][k] in got
        assert np.array_equal(np.sort(got), want)


def test_cone_with_where_matches_brute_force(tiny, tiny_objects):
    o = tiny_objects
    got = tiny.cone(0.0, 7.5, 0.25, where="g < 19.5 and (nmeasure > 2 or isnan(r))")
    mask = in_cone(o, 0.0, 7.5, 0.25)
    with np.errstate(invalid="ignore"):
        mask &= (o["g"] < 19.5) & ((o["nmeasure"] > 2) | np.isnan(o["r"]))
    assert np.array_equal(np.sort(_ids(got)), _sorted_ids(o, mask))
    assert mask.sum() > 5


@pytest.mark.parametrize(
    ("where", "fn"),
    [
        ("abs(g - r) < 0.4", lambda o: np.abs(o["g"] - o["r"]) < 0.4),
        ("not g >= 20", lambda o: ~(o["g"] >= 20)),
        ("g_err * 2 + 0.01 <= 0.05", lambda o: o["g_err"] * 2 + 0.01 <= 0.05),
        ("isfinite(g) and -dec < -7.5", lambda o: np.isfinite(o["g"]) & (-o["dec"] < -7.5)),
        ("r_nused == 2 or r_nused = 4", lambda o: (o["r_nused"] == 2) | (o["r_nused"] == 4)),
        ("g / r != 1", lambda o: o["g"] / o["r"] != 1),
    ],
)
def test_where_expressions_match_numpy(tiny, tiny_objects, where, fn):
    o = tiny_objects
    with np.errstate(all="ignore"):
        mask = in_cone(o, 0.0, 7.5, 0.5) & fn(o)
    got = tiny.cone(0.0, 7.5, 0.5, where=where, columns="obj_id")
    assert np.array_equal(np.sort(_ids(got)), _sorted_ids(o, mask))


def test_box_matches_brute_force(any_sky, rng):
    sky_db, sky_objects = any_sky
    boxes = [(350.0, 10.0, -5.0, 5.0), (0.0, 360.0, 80.0, 90.0), (100.0, 130.0, -90.0, -60.0)]
    for _ in range(10):
        r0, w = rng.uniform(0, 360), rng.uniform(0.01, 40)
        d0 = rng.uniform(-90, 85)
        boxes.append((r0, (r0 + w) % 360, d0, min(90.0, d0 + rng.uniform(0.01, 20))))
    for box in boxes:
        got = sky_db.box(*box, columns="obj_id")
        assert np.array_equal(
            np.sort(_ids(got)), _sorted_ids(sky_objects, in_box(sky_objects, *box))
        )


def test_polygon_matches_brute_force(any_sky):
    sky_db, sky_objects = any_sky
    polys = [
        ([350.0, 10.0, 10.0, 350.0], [-5.0, -5.0, 5.0, 5.0]),
        ([0.0, 120.0, 240.0], [80.0, 80.0, 80.0]),
        ([10.0, 40.0, 30.0], [-20.0, -25.0, 0.0]),
    ]
    for ra, dec in polys:
        got = sky_db.polygon(ra, dec, columns="obj_id")
        assert np.array_equal(
            np.sort(_ids(got)), _sorted_ids(sky_objects, in_polygon(sky_objects, ra, dec))
        )


def test_sky_returns_everything_in_merge_order(sky_db, sky_objects):
    got = sky_db.sky(columns=["obj_id", "cat_id"])
    assert len(got) == len(sky_objects["obj_id"])
    cat = np.asarray(got["cat_id"]).astype(np.int64)
    assert np.all(np.diff(cat) >= 0)  # partitions in ascending index
    ids = _ids(got)
    same = np.diff(cat) == 0
    assert np.all(np.diff(ids)[same] > 0)  # stored (objID) order inside a partition


def test_limit_and_order_by(sky_db, sky_objects):
    full = sky_db.sky(columns=["obj_id", "g"], order_by="g")
    g = np.asarray(full["g"])
    finite = np.isfinite(g)
    assert np.all(np.diff(g[finite]) >= 0) and not np.any(finite[np.argmin(finite) :])
    top = sky_db.sky(columns=["obj_id", "g"], order_by="g", limit=7)
    assert np.array_equal(_ids(top), _ids(full)[:7])
    desc = sky_db.sky(columns=["obj_id", "g"], order_by="-g", limit=5)
    assert np.allclose(desc["g"], np.sort(g[finite])[::-1][:5])
    first = sky_db.sky(columns="obj_id", limit=10)
    assert np.array_equal(_ids(first), _ids(sky_db.sky(columns="obj_id"))[:10])


def test_parallel_execution_equals_in_process(sky_db, monkeypatch):
    from dvo.query import execute

    one = sky_db.box(0.0, 90.0, -30.0, 30.0, columns=["obj_id", "g"], jobs=1)
    monkeypatch.setattr(execute, "IN_PROCESS_ROWS", 0)
    two = sky_db.box(0.0, 90.0, -30.0, 30.0, columns=["obj_id", "g"], jobs=2)
    assert np.array_equal(_ids(one), _ids(two))
    lim = sky_db.sky(columns="obj_id", jobs=2, limit=3)
    assert np.array_equal(_ids(lim), _ids(one.__class__(sky_db.sky(columns="obj_id")[:3])))


def test_units_and_arrow_output(tiny):
    t = tiny.cone(0.0, 7.5, 0.1)
    assert str(t["ra"].unit) == "deg" and str(t["g"].unit) == "mag"
    a = tiny.cone(0.0, 7.5, 0.1, output="arrow")
    assert a.num_rows == len(t) and a.schema.field("g").metadata[b"unit"] == b"mag"


@pytest.mark.parametrize(
    ("where", "pos", "match"),
    [
        ("g < ", 5, "expected a value"),
        ("gmag < 19", 1, "unknown column 'gmag'"),
        ("g < 19 and (r > 3", 18, "expected '\\)'"),
        ("g + 1", 3, "must be a condition"),
        ("g < 'x'", 3, "strings compare only"),
        ("g # 2", 3, "unexpected character"),
        ("1 < g < 3", 7, "chained comparison"),
        ("g < 19 r < 3", 8, "expected an operator"),
    ],
)
def test_bad_where_points_at_token(tiny, where, pos, match):
    with pytest.raises(QuerySyntaxError, match=match) as info:
        tiny.cone(0.0, 7.5, 0.1, where=where)
    assert info.value.position + 1 == pos
    assert f"position {pos}" in str(info.value)


def test_bad_columns_and_coordinates(tiny):
    with pytest.raises(QueryError, match="unknown column 'gmag'"):
        tiny.cone(0.0, 7.5, 0.1, columns=["ra", "gmag"])
    with pytest.raises(QueryError, match="unknown table"):
        tiny.cone(0.0, 7.5, 0.1, table="stars")
    with pytest.raises(QueryError, match="dec must lie"):
        tiny.cone(0.0, 91.0, 0.1)
    with pytest.raises(QueryError, match="finite"):
        tiny.cone(float("nan"), 0.0, 0.1)
    with pytest.raises(QueryError, match="radius"):
        tiny.cone(0.0, 0.0, -1.0)
    with pytest.raises(QueryError, match="ra must lie"):
        tiny.cone(1000.0, 0.0, 1.0)
    with pytest.raises(QueryError, match="limit"):
        tiny.cone(0.0, 0.0, 1.0, limit=-1)
    with pytest.raises(QueryError, match="order_by"):
        tiny.cone(0.0, 0.0, 1.0, order_by="g up")


def test_default_columns_show_filters_with_data(tiny):
    t = tiny.cone(0.0, 7.5, 0.05)
    assert {"g", "g_err", "g_nused", "r"} <= set(t.colnames) and "z" not in t.colnames
    assert "z" in tiny.cone(0.0, 7.5, 0.05, columns="*").colnames


def test_lensing_table_follows_its_objects(tiny):
    objs = tiny.cone(0.0, 7.5, 0.2, columns=["obj_id", "nlensing"])
    lens = tiny.cone(0.0, 7.5, 0.2, table="lensing")
    assert len(lens) == int(np.sum(objs["nlensing"])) > 0
    assert set(np.unique(lens["obj_id"])) <= set(objs["obj_id"])


def test_limit_stops_scanning_early(sky_db):
    calls = []
    got = sky_db.sky(columns="obj_id", limit=5, jobs=1, progress=calls.append)
    assert len(got) == 5 and 0 < len(calls) < len(sky_db.populated()) / 10
