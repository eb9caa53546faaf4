"""The planner: candidate partitions, pruning with statistics, explain, the scan request."""

from __future__ import annotations

import numpy as np

from dvo.query.engine import build_request, make_region
from dvo.query.plan import plan_query
from dvo.query.scan import ScanRequest, scan_partition


def test_pruning_never_drops_a_matching_partition(sky_db, sky_objects, rng):
    o = sky_objects
    for where in ("g < 15", "g > 21.5 and r < 21", "nmeasure >= 9", "dec > 80", "15.2 > i"):
        for _ in range(5):
            region = make_region("cone", rng.uniform(0, 360), rng.uniform(-90, 90), 20.0)
            req = build_request(sky_db, region, where=where, columns="obj_id")
            plan = plan_query(sky_db, region, req)
            got = sky_db.query(region, where=where, columns="obj_id")
            cats = np.unique(np.asarray(got["obj_id"]) >> 32)
            assert set(cats) <= set(plan.scan.tolist())
            assert set(plan.scan) | {i for v in plan.pruned.values() for i in v} == set(
                plan.considered
            )
    plan = plan_query(sky_db, None, build_request(sky_db, None, where="g < 14.2"))
    assert len(plan.pruned["where"]) > 0.5 * len(plan.considered)
    assert len(o["obj_id"]) == int(
        plan_query(sky_db, None, build_request(sky_db, None)).stored.sum()
    )


def test_explain_describes_the_plan(sky_db):
    region = make_region("cone", 0.0, 90.0, 5.0)
    plan = sky_db.explain(region, where="g < 15")
    text = plan.describe()
    assert "considered" in text and "pruned" in text and "local" in text
    assert plan.expected_rows <= int(plan.stored.sum())
    assert len(plan.considered) < len(sky_db.skytable.partitions) / 10


def test_scan_request_is_json_and_scan_is_pure(sky_db):
    region = make_region("box", 350.0, 10.0, -5.0, 5.0)
    req = build_request(
        sky_db, region, columns=["obj_id", "g"], where="g < 20", order_by="-g", limit=3
    )
    again = ScanRequest.from_json(req.to_json())
    assert again == req
    index = int(np.asarray(sky_db.box(350.0, 10.0, -5.0, 5.0, columns="cat_id")["cat_id"])[0])
    a = scan_partition(sky_db.catdir, index, req)
    b = scan_partition(str(sky_db.catdir), index, again)
    assert np.array_equal(a, b) and len(a) <= 3 and np.all(np.diff(a["g"]) <= 0)
