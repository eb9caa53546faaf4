"""The tree: children tile their parent, rows are consistent, names are unique and safe."""

from __future__ import annotations

import numpy as np
import pytest
from dvo.skytable import SkyTable, is_safe_name, safe_names
from dvo.skytable._lookup import children_of

ORIGINAL_NORTH = [593, 584, 551, 530, 522, 465, 406, 362, 280, 198, 123, 25]
ORIGINAL_SOUTH = [597, 578, 574, 577, 534, 499, 442, 376, 294, 212, 144, 48]


def test_rows_are_consistent(st):
    n = len(st)
    kids = np.flatnonzero(st.parent >= 0)
    assert (st.parent[kids] < kids).all()  # parents come first
    p = st.parent[kids]
    assert ((kids >= st.child_s[p]) & (kids < st.child_e[p])).all()
    assert st.child_count.sum() == kids.size
    assert (np.diff(st.depth) >= 0).all()
    assert (st.depth[kids] == st.depth[p] + 1).all()
    assert np.array_equal(st.partitions, np.flatnonzero(st.has_table))
    leaves = st.child_count == 0
    assert np.array_equal(leaves, st.has_table) or st.level == st.depth.max()
    assert n == len(st.name)


def test_children_areas_sum_to_parent(st):
    inner = np.flatnonzero(st.child_count > 0)
    kids = children_of(st, inner)
    owner = np.repeat(inner, st.child_count[inner])
    total = np.bincount(owner, weights=st.area(kids), minlength=len(st))[inner]
    np.testing.assert_allclose(total, st.area(inner), rtol=1e-9)
    assert st.area(st.partitions).sum() == pytest.approx(41252.96124941928, rel=1e-9)


def test_random_points_fall_in_exactly_one_child(st, rng, oracle):
    ra, dec = oracle.uniform_points(rng, 20_000)
    for depth in range(int(st.depth.min()), int(st.depth.max())):
        node = st.lookup(ra, dec, level=depth)
        ok = node >= 0
        node, pra, pdec = node[ok], ra[ok], dec[ok]
        has = st.child_count[node] > 0
        node, pra, pdec = node[has], pra[has], pdec[has]
        kids = children_of(st, node)
        pt = np.repeat(np.arange(node.size), st.child_count[node])
        hit = st.contains(kids, pra[pt], pdec[pt])
        assert (np.bincount(pt[hit], minlength=node.size) == 1).all(), depth


def test_names_unique_and_safe(st):
    assert len(np.unique(st.name)) == len(st)
    assert safe_names(st.name).all()
    sample = st.name[:: max(1, len(st) // 500)]
    assert all(is_safe_name(n) for n in sample)


@pytest.mark.parametrize(
    "name",
    ["../etc", "/abs", "a//b", "a/./b", "", "a b", "a\\b", "n0000/0001;rm", "é", "a/", "x" * 65],
)
def test_unsafe_names_rejected(name):
    assert not is_safe_name(name)
    assert not safe_names(np.array([name])).any()


def test_gsc_layout(gsc3, gsc4):
    depth = np.bincount(gsc3.depth)
    assert depth[:3].tolist() == [1, 24, 734]  # 732 large regions + 2 pole nodes
    bands = gsc3.name[gsc3.depth == 1]
    assert bands[12] == "n0000" and bands[11] == "s0000" and bands[0] == "s8230"
    assert gsc3.index_of("n0000/0001") in gsc3.partitions
    assert gsc3.d_min[gsc3.index_of("s0000")] == -7.5
    level4 = gsc4.name[gsc4.depth == 4]
    assert len(level4) == 16 * len(gsc3.partitions)
    assert "n0000/0001.15" in set(level4) and "n8230/pole.4.00" in set(level4)
    k2 = gsc3.child_count[(gsc3.depth == 2) & ~np.char.endswith(gsc3.name, "/pole")]
    assert set(np.unique(k2)) <= {4, 9, 16}


def test_default_counts_close_to_original(gsc3):
    band = gsc3.parent[gsc3.parent[gsc3.partitions]] - 1
    counts = np.bincount(band, minlength=24)
    original = np.array(ORIGINAL_SOUTH[::-1] + ORIGINAL_NORTH)
    assert abs(counts.sum() - original.sum()) < 0.02 * original.sum()
    inner = slice(2, 22)  # the polar bands follow our cap layout, not GSC's
    assert (np.abs(counts[inner] - original[inner]) <= 0.06 * original[inner]).all()


def test_healpix_layout(hpx):
    assert hpx.level == 6
    assert len(hpx.partitions) == 12 * 4**6
    assert hpx.name[hpx.partitions[0]] == "Norder=6/Dir=0/Npix=0"
    last = hpx.partitions[-1]
    assert hpx.name[last] == f"Norder=6/Dir=40000/Npix={12 * 4**6 - 1}"


def test_density_changes_the_split():
    import healpy as hp

    flat = np.ones(hp.nside2npix(8))
    sparse = SkyTable.gsc(3, density=flat)
    dense = SkyTable.gsc(3, density=flat * 1e9)
    assert len(sparse.partitions) == 4 * 732 + 10
    assert len(dense.partitions) == 16 * 732 + 10
