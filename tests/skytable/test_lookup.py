"""Point lookups: every point in exactly one partition, whose bounds contain it."""

from __future__ import annotations

import numpy as np
import pytest
from dvo.skytable import Scheme, SkyTable
from hypothesis import given, settings
from hypothesis import strategies as hs

from dvo.errors import SkyTableError


def adversarial_points(st):
    """Corners and edge midpoints of every partition, RA 0/360 and the poles."""
    rows = st.partitions
    r0, r1, d0, d1 = st.r_min[rows], st.r_max[rows], st.d_min[rows], st.d_max[rows]
    rm, dm = (r0 + r1) / 2, (d0 + d1) / 2
    ra = np.concatenate(
        [r0, r1, r0, r1, rm, rm, r0, r1, np.nextafter(r0, -1), np.nextafter(r1, 1e9)]
    )
    dec = np.concatenate([d0, d0, d1, d1, d0, d1, dm, dm, dm, dm])
    special_ra = np.array(
        [0.0, -0.0, 360.0, -1e-300, 359.99999999999994, 720.0, -360.0, 1e-320, 180.0]
    )
    ra = np.concatenate([ra, np.repeat(special_ra, 5)])
    dec = np.concatenate(
        [dec, np.tile([90.0, -90.0, 0.0, 89.999999999, -89.99999999], special_ra.size)]
    )
    return ra, np.clip(dec, -90.0, 90.0)


def check_lookup(st, ra, dec, oracle):
    idx = st.lookup(ra, dec)
    assert (idx >= 0).all() and st.has_table[idx].all()
    assert st.contains(idx, ra, dec).all()
    assert oracle.in_bounds(st, idx, np.mod(ra, 360.0), dec).all()
    return idx


def test_ten_million_random_points(gsc4, hpx, rng, oracle):
    ra, dec = oracle.uniform_points(rng, 10_000_000)
    for st in (gsc4, hpx):
        check_lookup(st, ra, dec, oracle)


def test_adversarial_points(st, oracle):
    ra, dec = adversarial_points(st)
    check_lookup(st, ra, dec, oracle)


def test_adversarial_points_brute_force_gsc(gsc3):
    """Exactly one GSC partition contains each point under the convention, by brute force."""
    ra, dec = adversarial_points(gsc3)
    ra = np.mod(ra, 360.0)
    ra[ra >= 360.0] = 0.0
    parts = gsc3.partitions
    idx = gsc3.lookup(ra, dec)
    for chunk in np.array_split(np.arange(ra.size), 40):
        a, d = ra[chunk, None], dec[chunk, None]
        r0, r1, d0, d1 = (
            x[parts][None, :] for x in (gsc3.r_min, gsc3.r_max, gsc3.d_min, gsc3.d_max)
        )
        hit = (a >= r0) & (a < r1) & (d >= d0) & ((d < d1) | ((d == 90) & (d1 == 90)))
        assert (hit.sum(axis=1) == 1).all()
        assert np.array_equal(parts[hit.argmax(axis=1)], idx[chunk])


def test_contains_is_equivalent_to_lookup(st, rng, oracle):
    ra, dec = oracle.uniform_points(rng, 50_000)
    ra2, dec2 = adversarial_points(st)
    ra, dec = np.concatenate([ra, ra2]), np.concatenate([dec, dec2])
    idx = st.lookup(ra, dec)
    other = rng.choice(st.partitions, ra.size)
    assert np.array_equal(st.contains(other, ra, dec), other == idx)


def test_levels_are_ancestors(st, rng, oracle):
    ra, dec = oracle.uniform_points(rng, 20_000)
    node = st.lookup(ra, dec)
    for depth in range(int(st.depth.max()), int(st.depth.min()) - 1, -1):
        at = st.lookup(ra, dec, level=depth)
        deeper = st.depth[node] > depth
        node = np.where(deeper, st.parent[node], node)
        here = st.depth[node] == depth
        assert np.array_equal(at[here], node[here])


def test_ra_is_taken_modulo_360(st, rng, oracle):
    ra, dec = oracle.uniform_points(rng, 10_000)
    base = st.lookup(ra, dec)
    assert np.array_equal(st.lookup(ra + 360.0, dec), base)
    assert np.array_equal(st.lookup(ra - 720.0, dec), base)


def test_pole_and_seam(gsc3):
    names = gsc3.name[gsc3.lookup([0.0, 123.0, 0.0, 360.0, 0.0], [90.0, 90.0, -90.0, 0.0, 0.0])]
    assert names[:3].tolist() == ["n8230/pole.4", "n8230/pole.4", "s8230/pole.4"]
    assert names[3] == names[4] == "n0000/0001"


@pytest.mark.parametrize(
    ("ra", "dec", "match"),
    [
        (np.nan, 0.0, "NaN"),
        (0.0, np.nan, "NaN"),
        (np.inf, 0.0, "NaN"),
        (0.0, 90.0000001, r"\[-90, 90\]"),
        (0.0, -91.0, r"\[-90, 90\]"),
    ],
)
def test_bad_points_raise(gsc3, hpx, ra, dec, match):
    for st in (gsc3, hpx):
        with pytest.raises(SkyTableError, match=match):
            st.lookup([1.0, ra], [1.0, dec])


def test_bad_level_raises(gsc3):
    with pytest.raises(SkyTableError, match="level 7"):
        gsc3.lookup([0.0], [0.0], level=7)
    with pytest.raises(SkyTableError, match="shape"):
        gsc3.lookup([0.0, 1.0], [0.0])


def test_scalars_and_empty(gsc3):
    assert gsc3.lookup(10.0, 5.0).shape == (1,)
    assert gsc3.lookup([], []).shape == (0,)


@settings(max_examples=300, deadline=None)
@given(
    ra=hs.floats(-1000, 1000, allow_nan=False) | hs.sampled_from([0.0, 7.5, 360.0, 352.5]),
    dec=hs.floats(-90, 90) | hs.sampled_from([-90.0, -82.5, 0.0, 7.5, 86.25, 88.125, 90.0]),
    scheme=hs.sampled_from(["gsc", "hpx"]),
)
def test_partition_bounds_contain_the_point(ra, dec, scheme):
    st = _tables()[scheme]
    idx = st.lookup([ra], [dec])[0]
    a = ra % 360.0 if ra % 360.0 < 360.0 else 0.0
    w = st.r_max[idx] - st.r_min[idx]
    assert ((a - st.r_min[idx]) % 360.0 <= w) or w >= 360.0
    assert st.d_min[idx] <= dec <= st.d_max[idx]
    if scheme == "gsc":
        assert st.r_min[idx] <= a < st.r_max[idx]


_CACHE: dict = {}


def _tables():
    if not _CACHE:
        _CACHE["gsc"] = SkyTable.gsc(4)
        _CACHE["hpx"] = SkyTable.healpix(5)
    return _CACHE


def test_scheme_enum():
    assert Scheme("gsc") is Scheme.GSC and Scheme.HEALPIX.value == "healpix"
