"""Regions and region-to-partition lookups against brute force.

About 100k random regions in all: 83k cones checked exactly against a brute-force box
distance over all GSC partitions (vectorised through ``near`` with one radius per cone),
5k cones on HEALPix and 3k more per table, 8k boxes and 3k polygons checked through
``partitions_in`` against dense samples of each region (and boxes exactly on GSC).
"""

from __future__ import annotations

import numpy as np
import pytest
from dvo.skytable import AllSky, Box, Cone, Polygon, SkyTable

from dvo.errors import SkyTableError


# ----------------------------------------------------------------- region objects
@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: Cone(np.nan, 0, 1), "finite"),
        (lambda: Cone(0, 91, 1), r"\[-90, 90\]"),
        (lambda: Cone(0, 0, -1), "radius"),
        (lambda: Cone(0, 0, 180.5), "radius"),
        (lambda: Box(0, 10, 5, -5), "dec_min"),
        (lambda: Box(-1, 10, 0, 1), "ra_min"),
        (lambda: Box(0, 10, -95, 1), r"\[-90, 90\]"),
        (lambda: Polygon([0, 1], [0, 1]), "3 vertices"),
        (lambda: Polygon([0, 10, 10, 0], [0, 0, 10, np.inf]), "finite"),
        (lambda: Polygon([0, 10, 5, 10, 0], [0, 0, 5, 10, 10]), "convex"),
        (lambda: Polygon([0, 0, 10], [0, 0, 10]), "repeated"),
    ],
)
def test_invalid_regions_raise(make, match):
    with pytest.raises(SkyTableError, match=match):
        make()


def test_cone_contains_matches_astropy(rng, oracle):
    from astropy.coordinates import SkyCoord

    ra, dec = oracle.uniform_points(rng, 20_000)
    cone = Cone(200.0, -30.0, 40.0)
    sep = SkyCoord(ra, dec, unit="deg").separation(SkyCoord(200.0, -30.0, unit="deg")).deg
    inside = cone.contains(ra, dec)
    clear = np.abs(sep - 40.0) > 1e-9
    assert np.array_equal(inside[clear], sep[clear] <= 40.0)


def test_box_and_polygon_contains():
    b = Box(350.0, 10.0, -5.0, 5.0)
    assert b.contains([355, 5, 0, 10, 350, 11, 349], [0, 0, 5, -5, 0, 0, 0]).tolist() == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert Box(0, 360, -90, 90).contains([123.0], [45.0]).all()
    square = Polygon([0.0, 10.0, 10.0, 0.0], [0.0, 0.0, 10.0, 10.0])
    reverse = Polygon([0.0, 0.0, 10.0, 10.0], [0.0, 10.0, 10.0, 0.0])
    pts = ([5, 15, 5, 0.001], [5, 5, -1, 5])
    assert (
        square.contains(*pts).tolist()
        == reverse.contains(*pts).tolist()
        == [True, False, False, True]
    )
    assert AllSky().contains([0, 1], [90, -90]).all()


def test_regions_are_frozen_values():
    assert Cone(1, 2, 3) == Cone(1, 2, 3)
    with pytest.raises(AttributeError):
        Cone(1, 2, 3).radius = 4  # type: ignore[misc]
    assert hash(Polygon([0, 1, 1], [0, 0, 1])) == hash(Polygon([0, 1, 1], [0, 0, 1]))


# ----------------------------------------------------------------- samplers
def random_cones(rng, n):
    ra = rng.uniform(0, 360, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, n)))
    r = 10 ** rng.uniform(-2.5, 1.3, n)  # ~10 arcsec to 20 deg
    r[: n // 50] = rng.uniform(20, 180, n // 50)
    dec[n // 50 : n // 25] = rng.choice([90.0, -90.0, 89.9, -89.95], n // 25 - n // 50)
    return ra, dec, r


def cap_samples(rng, ra, dec, radius, n):
    """Points uniform in caps plus points on their rims; (..., 2n) for (..., 1) inputs."""
    ra, dec, radius = np.broadcast_arrays(*(np.asarray(x, dtype=float) for x in (ra, dec, radius)))
    c = np.cos(np.radians(radius))
    u = c + (1 - c) * rng.uniform(0, 1, radius.shape[:-1] + (n,))
    rho = np.degrees(np.arccos(np.concatenate([u, np.broadcast_to(c, u.shape)], axis=-1)))
    az = rng.uniform(0, 2 * np.pi, rho.shape)
    d, r = np.radians(dec), np.radians(rho)
    sd = np.sin(d) * np.cos(r) + np.cos(d) * np.sin(r) * np.cos(az)
    da = np.arctan2(np.sin(az) * np.sin(r) * np.cos(d), np.cos(r) - np.sin(d) * sd)
    return np.mod(ra + np.degrees(da), 360.0), np.degrees(np.arcsin(np.clip(sd, -1, 1)))


def region_samples(rng, region, n=300):
    if isinstance(region, Cone):
        return cap_samples(rng, region.ra, region.dec, region.radius * (1 - 1e-9), n)
    if isinstance(region, Box):
        ra = np.mod(region.ra_min + rng.uniform(0, 1, n) * region.ra_width, 360.0)
        dec = rng.uniform(region.dec_min, region.dec_max, n)
        t = np.linspace(0, 1, n // 4)
        er = np.mod(region.ra_min + np.concatenate([t, t, 0 * t, 0 * t + 1]) * region.ra_width, 360)
        ed = np.concatenate(
            [
                0 * t + region.dec_min,
                0 * t + region.dec_max,
                region.dec_min + t * (region.dec_max - region.dec_min),
                region.dec_min + t * (region.dec_max - region.dec_min),
            ]
        )
        return np.concatenate([ra, er]), np.concatenate([dec, ed])
    v = np.stack(
        [
            np.cos(np.radians(region.dec)) * np.cos(np.radians(region.ra)),
            np.cos(np.radians(region.dec)) * np.sin(np.radians(region.ra)),
            np.sin(np.radians(region.dec)),
        ],
        axis=1,
    )
    w = rng.dirichlet(np.ones(len(v)), n) @ v  # convex combinations: inside a convex polygon
    t = rng.uniform(0, 1, (n, 1))
    k = rng.integers(0, len(v), n)
    edge = (1 - t) * v[k] + t * v[(k + 1) % len(v)]
    p = np.concatenate([w, edge, v])
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    return np.mod(np.degrees(np.arctan2(p[:, 1], p[:, 0])), 360.0), np.degrees(np.arcsin(p[:, 2]))


def random_box(rng):
    dec = np.sort(np.degrees(np.arcsin(rng.uniform(-1, 1, 2))))
    if rng.uniform() < 0.7:  # mostly small boxes
        dec = np.clip(dec[0] + np.array([0, 10 ** rng.uniform(-3, 1)]), -90, 90)
    r0 = rng.choice([rng.uniform(0, 360), 0.0, 359.0, 352.5])
    r1 = np.mod(r0 + 10 ** rng.uniform(-3, 2.5), 360.0)
    return Box(float(r0), float(r1), float(dec[0]), float(dec[1]))


def random_polygon(rng):
    ra0, dec0 = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-0.99, 0.99)))
    size = 10 ** rng.uniform(-2, 1.3)
    k = int(rng.integers(3, 8))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    if np.diff(np.concatenate([ang, [ang[0] + 2 * np.pi]])).max() > np.pi * 0.95:
        ang = np.linspace(0, 2 * np.pi, k, endpoint=False)
    ra, dec = cap_samples_fixed(ra0, dec0, size, ang)
    return Polygon(ra, dec)


def cap_samples_fixed(ra, dec, rho, az):
    d, r = np.radians(dec), np.radians(rho)
    sd = np.sin(d) * np.cos(r) + np.cos(d) * np.sin(r) * np.cos(az)
    da = np.arctan2(np.sin(az) * np.sin(r) * np.cos(d), np.cos(r) - np.sin(d) * sd)
    return np.mod(ra + np.degrees(da), 360.0), np.degrees(np.arcsin(np.clip(sd, -1, 1)))


# ----------------------------------------------------------------- cone lookups, vectorised
def _member(keys, sorted_keys):
    pos = np.minimum(np.searchsorted(sorted_keys, keys), max(sorted_keys.size - 1, 0))
    return sorted_keys.size > 0 and sorted_keys[pos] == keys


@pytest.mark.parametrize(("name", "n"), [("gsc2", 78_000), ("gsc3", 5_000)])
def test_cones_exact_against_brute_force_gsc(name, n, rng, oracle, gsc3):
    st = gsc3 if name == "gsc3" else SkyTable.gsc(2)
    ra, dec, r = random_cones(rng, n)
    pt, part = st.near(ra, dec, r)
    got = np.sort(pt * len(st) + part)
    parts = st.partitions
    missed = extra_far = 0
    for chunk in np.array_split(np.arange(n), max(1, n // 500)):
        c, p = np.meshgrid(chunk, parts, indexing="ij")
        c, p = c.ravel(), p.ravel()
        # exact necessary condition first (Dec distance), then the meridian-foot distance
        near_dec = (dec[c] + r[c] >= st.d_min[p]) & (dec[c] - r[c] <= st.d_max[p])
        c, p = c[near_dec], p[near_dec]
        dist = oracle.box_distance(
            ra[c], dec[c], st.r_min[p], st.r_max[p], st.d_min[p], st.d_max[p]
        )
        want = c[dist <= r[c] - 1e-7] * len(st) + p[dist <= r[c] - 1e-7]
        missed += np.count_nonzero(~_member(want, got))
        far = dist > r[c] + 1e-7
        extra_far += np.count_nonzero(_member(c[far] * len(st) + p[far], got))
    assert missed == 0
    assert extra_far == 0  # GSC cone lookups are exact on the boxes


def test_cones_never_miss_healpix(hpx, rng):
    ra, dec, r = random_cones(rng, 5_000)
    r = np.minimum(r, 30.0)
    pt, part = hpx.near(ra, dec, r)
    got = np.sort(pt * len(hpx) + part)
    sra, sdec = cap_samples(rng, ra[:, None], dec[:, None], r[:, None] * (1 - 1e-9), 40)
    owner = np.repeat(np.arange(ra.size), sra.shape[1])
    hit = hpx.lookup(sra.ravel(), sdec.ravel())
    assert _member(owner * len(hpx) + hit, got).all()


# ----------------------------------------------------------------- partitions_in, per region
def _check_never_misses(st, regions, rng):
    for region in regions:
        answer = st.partitions_in(region)
        assert np.all(np.diff(answer) > 0) and st.has_table[answer].all()
        sra, sdec = region_samples(rng, region)
        assert np.isin(st.lookup(sra, sdec), answer).all(), region


def test_random_boxes_never_miss(st2, rng):
    _check_never_misses(st2, [random_box(rng) for _ in range(3_000)], rng)


def test_random_polygons_never_miss(st2, rng):
    _check_never_misses(st2, [random_polygon(rng) for _ in range(1_500)], rng)


def test_random_cones_never_miss(st, rng):
    ra, dec, r = random_cones(rng, 600)
    _check_never_misses(st, [Cone(*x) for x in zip(ra, dec, r, strict=True)], rng)


def test_boxes_exact_against_brute_force_gsc(gsc3, rng):
    parts = gsc3.partitions
    for _ in range(2_000):
        box = random_box(rng)
        lo, hi = (box.ra_min, box.ra_max) if box.ra_min <= box.ra_max else (box.ra_min, 360.0)
        pieces = [(lo, hi)] + ([(0.0, box.ra_max)] if box.ra_min > box.ra_max else [])
        if box.ra_min == 0.0 or box.ra_min > box.ra_max:
            pieces.append((360.0, 360.0))  # RA 0 is also the closed end of boxes up to 360
        if box.ra_max == 360.0:
            pieces.append((0.0, 0.0))
        r0, r1 = gsc3.r_min[parts], gsc3.r_max[parts]
        ra_ok = np.zeros(parts.size, bool)
        for a, b in pieces:
            ra_ok |= (r0 <= b) & (r1 >= a)
        dec_ok = (gsc3.d_min[parts] <= box.dec_max) & (gsc3.d_max[parts] >= box.dec_min)
        assert np.array_equal(gsc3.partitions_in(box), parts[ra_ok & dec_ok])


def test_cone_lookup_agrees_with_near(st, rng):
    """GSC: both are exact on the boxes, so they agree; HEALPix uses healpy's own queries."""
    ra, dec, r = random_cones(rng, 200)
    pt, part = st.near(ra, dec, r)
    for i in range(0, 200, 7):
        via_near, via_region = set(part[pt == i]), set(st.partitions_in(Cone(ra[i], dec[i], r[i])))
        if st.scheme.value == "gsc":
            assert via_near == via_region
        else:
            assert st.lookup([ra[i]], [dec[i]])[0] in via_near & via_region


def test_whole_sky_and_big_cones(st):
    assert np.array_equal(st.partitions_in(AllSky()), st.partitions)
    assert np.array_equal(st.partitions_in(Cone(12.0, 34.0, 180.0)), st.partitions)
    assert np.array_equal(st.partitions_in(Box(0, 360, -90, 90)), st.partitions)
    north = st.partitions_in(Cone(0.0, 90.0, 1.0))
    assert np.isin(st.lookup(np.arange(0, 360, 10.0), np.full(36, 89.5)), north).all()


def test_partitions_in_rejects_non_regions(gsc3):
    with pytest.raises(SkyTableError, match="not a region"):
        gsc3.partitions_in((0, 0, 1))
