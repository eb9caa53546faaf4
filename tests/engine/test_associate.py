"""Matcher.match against astropy's search_around_sky (an independent implementation): the
nearest object within the radius, across RA = 0 and near the poles."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from dvo.associate import Matcher, one_per_image
from dvo.errors import DvoError


def _astropy_nearest(ra, dec, ora, odec, radius):
    i, j, d, _ = search_around_sky(
        SkyCoord(ra * u.deg, dec * u.deg), SkyCoord(ora * u.deg, odec * u.deg), radius * u.arcsec
    )
    best, sep = np.full(len(ra), -1), np.full(len(ra), np.inf)
    order = np.lexsort((d.arcsec, i))
    first = np.ones(len(order), bool)
    first[1:] = i[order][1:] != i[order][:-1]
    best[i[order][first]] = j[order][first]
    sep[i[order][first]] = d.arcsec[order][first]
    return best, sep


@pytest.mark.parametrize(
    "ra0, dec0, size",
    [(0.0, 7.5, 1.0), (180.0, -30.0, 3.0), (359.5, 85.0, 2.0), (10.0, 89.5, 0.5), (0.2, 0.0, 0.5)],
)
def test_nearest_equals_astropy(rng, ra0, dec0, size):
    n = 5000
    stretch = np.cos(np.radians(min(abs(dec0), 89.0)))
    ora = (ra0 + rng.uniform(-size, size, 4 * n) / stretch) % 360.0
    odec = np.clip(dec0 + rng.uniform(-size, size, 4 * n), -90.0, 90.0)
    pick = rng.choice(4 * n, n)
    ra = (ora[pick] + rng.normal(0, 0.5 / 3600, n) / stretch) % 360.0
    dec = np.clip(odec[pick] + rng.normal(0, 0.5 / 3600, n), -90.0, 90.0)
    idx, sep = Matcher(1.0).match(ra, dec, ora, odec)
    best, best_sep = _astropy_nearest(ra, dec, ora, odec, 1.0)
    assert (idx >= 0).sum() == (best >= 0).sum() > 0.8 * n
    same = (idx == best) | np.isclose(sep, best_sep, rtol=0, atol=1e-9)  # exact ties may differ
    assert same.all()
    np.testing.assert_allclose(sep[idx >= 0], best_sep[best >= 0], rtol=0, atol=1e-6)


def test_no_objects_or_no_detections():
    m = Matcher(1.0)
    idx, sep = m.match(np.array([1.0]), np.array([2.0]), np.zeros(0), np.zeros(0))
    assert idx.tolist() == [-1] and np.isinf(sep).all()
    idx, sep = m.match(np.zeros(0), np.zeros(0), np.array([1.0]), np.array([2.0]))
    assert len(idx) == 0 and len(sep) == 0


# ----------------------------------------------------- match_partitions: the kept grids


class _State:
    """A partition state as association sees it (``average``, ``nobjects``), changed in
    place the way a PartitionBuilder is: objects appended, existing ones moved."""

    def __init__(self, ra, dec):
        self.rows = np.zeros(0, [("RA", "f8"), ("DEC", "f8"), ("OBJ_ID", "u4")])
        self.append(ra, dec)

    @property
    def average(self):
        return self.rows

    @property
    def nobjects(self):
        return len(self.rows)

    def append(self, ra, dec):
        new = np.zeros(len(ra), self.rows.dtype)
        new["RA"], new["DEC"] = ra, dec
        self.rows = np.concatenate([self.rows, new])


def _concatenated(states):
    return (np.concatenate([s.average["RA"] for s in states]),
            np.concatenate([s.average["DEC"] for s in states]))  # fmt: skip


def _check_same_as_match(matcher, ra, dec, states, boxes):
    """match_partitions == match on the concatenated objects, exactly (index and sep)."""
    part, row, sep = matcher.match_partitions(ra, dec, states, boxes, keys=range(len(states)))
    idx, sep0 = Matcher(matcher.radius).match(ra, dec, *_concatenated(states))
    first = np.cumsum([0] + [s.nobjects for s in states])[:-1]
    got = np.where(part >= 0, first[np.maximum(part, 0)] + row, -1)
    assert np.array_equal(got, idx)
    assert np.array_equal(sep, sep0)
    return idx


@pytest.mark.parametrize(
    "ra0, dec0, size",
    [(30.0, 20.0, 0.3), (0.0, -5.0, 0.3), (359.9, 60.0, 0.2), (120.0, 89.8, 0.2),
     (200.0, -89.95, 0.05)],
)  # fmt: skip
def test_kept_grids_stay_exact_as_objects_move_and_arrive(rng, ra0, dec0, size):
    """Files after files: each round moves matched objects slightly (as their mean
    positions do) and appends new ones, some outside their partition's box; the grids
    kept from round to round answer exactly as a search over all objects."""
    stretch = np.cos(np.radians(min(abs(dec0), 89.9)))

    def sky(n, spread=size):
        ra = (ra0 + rng.uniform(-spread, spread, n) / stretch) % 360.0
        return ra, np.clip(dec0 + rng.uniform(-spread, spread, n), -90.0, 90.0)

    # four partitions: boxes splitting the field in RA and Dec (objects may lie outside)
    r_split, d_split = ra0 % 360.0, dec0
    boxes = np.array([[r_split - 1, r_split, d_split - 1, d_split],
                      [r_split, r_split + 1, d_split - 1, d_split],
                      [r_split - 1, r_split, d_split, d_split + 1],
                      [r_split, r_split + 1, d_split, d_split + 1]])  # fmt: skip
    boxes[:, 2:] = np.clip(boxes[:, 2:], -90, 90)
    states = [_State(*sky(500)) for _ in range(4)]
    matcher = Matcher(1.0)
    for _ in range(12):
        ora, odec = _concatenated(states)
        pick = rng.choice(len(ora), 2000)
        jitter = rng.normal(0, 0.4 / 3600, (2, 2000))
        ra = np.concatenate([(ora[pick] + jitter[0] / stretch) % 360.0, sky(1000)[0]])
        dec = np.concatenate([np.clip(odec[pick] + jitter[1], -90, 90), sky(1000)[1]])
        idx = _check_same_as_match(matcher, ra, dec, states, boxes)
        # the matched objects move (a Delta's rows), told through note_changes
        first = np.cumsum([0] + [s.nobjects for s in states])
        changed = []
        for k, s in enumerate(states):
            rows = idx[(idx >= first[k]) & (idx < first[k + 1])] - first[k]
            step = rng.normal(0, 0.05 / 3600, (2, len(rows)))
            s.rows["RA"][rows] = (s.rows["RA"][rows] + step[0] / stretch) % 360.0
            s.rows["DEC"][rows] = np.clip(s.rows["DEC"][rows] + step[1], -90, 90)
            changed.append(rows)
        matcher.note_changes(range(len(states)), states, changed)
        for s in states:  # new objects: many (the grid is redrawn) or a few
            s.append(*sky(int(rng.choice([30, 600]))))
    assert any(g.n_drawn > 0 for g in matcher._grids.values())


def test_kept_grids_ties_go_as_match_has_them():
    """Objects at the same position in two partitions, and at the same distance on both
    sides of a detection: the same object wins as in match's scan order."""
    boxes = np.array([[9.0, 10.0, 0.0, 1.0], [10.0, 11.0, 0.0, 1.0], [10.0, 11.0, 1.0, 2.0]])
    d = 0.5 / 3600
    same = [_State([10.0, 10.0, 10.0 + d], [0.5, 0.5, 0.5]),
            _State([10.0, 10.0 - d], [0.5, 0.5]),
            _State([10.0, 10.0], [0.5 + d, 0.5 - d])]  # fmt: skip
    matcher = Matcher(1.0)
    ra = np.array([10.0, 10.0 + d / 2, 10.0, 10.0 - 3 * d])
    dec = np.array([0.5, 0.5, 0.5 + 2 * d, 0.5])
    for _ in range(2):
        _check_same_as_match(matcher, ra, dec, same, boxes)


def test_kept_grids_for_new_states_and_bad_positions():
    """A new state object under the same key gets a new grid; invalid positions raise as
    match does, on every call."""
    box = np.array([[0.0, 20.0, 0.0, 20.0]])
    matcher = Matcher(1.0)
    a = _State([10.0], [10.0])
    ra, dec = np.array([10.0]), np.array([10.0])
    assert matcher.match_partitions(ra, dec, [a], box, keys=[7])[0].tolist() == [0]
    b = _State([12.0, 10.0], [10.0, 10.0])
    assert matcher.match_partitions(ra, dec, [b], box, keys=[7])[1].tolist() == [1]
    b.append([np.nan], [1.0])
    for _ in range(2):
        with pytest.raises(DvoError, match="finite"):
            matcher.match_partitions(ra, dec, [b], box, keys=[7])
    c = _State([10.0, 10.0], [10.0, 95.0])
    for _ in range(2):
        with pytest.raises(DvoError, match="declinations"):
            matcher.match_partitions(ra, dec, [c], box, keys=[8])


def _one_per_image_lexsort(obj, image, sep):
    """The rule by sorting (the former implementation)."""
    matched = np.flatnonzero(obj >= 0)
    loser = np.zeros(len(obj), bool)
    if len(matched) == 0:
        return loser
    order = matched[np.lexsort((matched, sep[matched], image[matched], obj[matched]))]
    o, im = obj[order], image[order]
    dup = np.zeros(len(order), bool)
    dup[1:] = (o[1:] == o[:-1]) & (im[1:] == im[:-1])
    loser[order[dup]] = True
    return loser


def test_one_per_image_is_the_sorted_rule(rng):
    n = 20_000
    obj = rng.integers(-1, 3000, n)
    image = rng.integers(1_000_000, 1_000_004, n)
    sep = rng.choice([0.1, 0.2, 0.2, 0.5, np.nan], n) * rng.choice([1.0, 1.0, 2.0], n)
    got = one_per_image(obj, image, sep)
    assert got.sum() > 1000
    assert np.array_equal(got, _one_per_image_lexsort(obj, image, sep))
    assert not one_per_image(np.full(3, -1), np.zeros(3), np.zeros(3)).any()


def test_prepare_queries_reduces_ra_as_numpy():
    from dvo._assoc_kernels import prepare_queries

    ra = np.array([0.0, -0.0, -1e-300, -1e-17, 359.99999999999994, 360.0, 720.5, -359.5,
                   1e300, -1e300, 5.0, 180.0, -180.0, 1e-320])  # fmt: skip
    dec = np.zeros(len(ra))
    out, dec_out, stats = np.empty(len(ra)), np.empty(len(ra)), np.empty(6)
    prepare_queries(ra, dec, out, dec_out, stats)
    assert np.array_equal(out, ra % 360.0)
    rel = (out - out[0] + 180.0) % 360.0 - 180.0
    assert stats.tolist()[:2] == [0.0, 0.0]
    assert stats.tolist()[4:] == [rel.min(), rel.max()]


def test_kept_grids_keep_the_box_prefilter_at_the_radius_edge():
    """An object a few ulps beyond one radius below the detections can pass the haversine
    test (its tolerance is 1e-12): match's bounding box decides, and so must the grids."""
    q = 0.3293532266911683
    o = np.nextafter(np.nextafter(q - 1 / 3600, -np.inf), -np.inf)
    states = [_State([1.0], [o])]
    box = np.array([[0.0, 2.0, 0.0, 1.0]])
    alone = _check_same_as_match(Matcher(1.0), np.array([1.0]), np.array([q]), states, box)
    lower = np.array([q, 0.2])
    with_lower = _check_same_as_match(Matcher(1.0), np.array([1.0, 1.5]), lower, states, box)
    assert alone.tolist() == [-1] and with_lower[0] == 0


def test_addstar_associates_as_a_search_over_all_objects(tiny_survey, tmp_path, monkeypatch):
    """Through whole addstar runs (partitions growing file after file, objects moving as
    their means change, checkpoints giving new partition states), every file's association
    equals Matcher.match over all objects of the partitions it touches, concatenated."""
    import dvo.ingest as ingest
    from dvo.associate import associate_batch
    from dvo.database import create_database

    checked = []

    def associate_and_check(db, source, batch, ids, matcher, prefetch=None):
        m = batch.measure
        home = db.skytable.lookup(m["RA"], m["DEC"])
        near = db.skytable.near(m["RA"], m["DEC"], 2 * matcher.radius / 3600)[1]
        touched = np.union1d(near, home)
        states = [source(int(i)) for i in touched]
        sizes = np.array([s.nobjects for s in states])
        idx, sep = Matcher(matcher.radius).match(m["RA"], m["DEC"], *_concatenated(states))
        image = ids[batch.meas_image]
        idx[one_per_image(idx, image, sep)] = -1
        first = np.cumsum(sizes) - sizes
        ok = idx >= 0
        part = np.searchsorted(first, idx[ok], side="right") - 1
        keys = zip(image[ok].tolist(), m["DET_ID"][ok].tolist(), strict=True)
        targets = zip(touched[part].tolist(), (idx[ok] - first[part]).tolist(), strict=True)
        expect = dict(zip(keys, targets, strict=True))
        delta, counts = associate_batch(db, source, batch, ids, matcher, prefetch)
        got = {}
        for p, _, mm, _ in delta.parts:
            old = mm["AVE_REF"] < sizes[np.searchsorted(touched, p)]
            cols = (mm[c][old].tolist() for c in ("IMAGE_ID", "DET_ID", "AVE_REF"))
            for im, d, r in zip(*cols, strict=True):
                got[(im, d)] = (p, r)
        assert got == expect and counts["matched"] == len(expect)
        for i, state in zip(touched.tolist(), states, strict=True):  # the grids are exact
            g = matcher._grids[i]
            assert g.ref() is state and g.n == state.nobjects
            assert np.array_equal(g.ra[: g.n], state.average["RA"] % 360.0)
            assert np.array_equal(g.dec[: g.n], state.average["DEC"])
            live = np.isfinite(g.pos[:, 1])
            assert np.array_equal(g.pos[live, :2], np.stack([g.ra, g.dec], 1)[g.slot_row[live]])
        checked.append(len(expect))
        return delta, counts

    monkeypatch.setattr(ingest, "associate_batch", associate_and_check)
    files = tiny_survey[0]
    for checkpoint in (None, 3):
        db = create_database(tmp_path / f"db{checkpoint}")
        ingest.addstar(db, files, checkpoint=checkpoint)
        ingest.addstar(db, files[:3], replace=True)  # replaced: new partition states
    assert len(checked) == 2 * (len(files) + 3) and sum(checked) > 1000
