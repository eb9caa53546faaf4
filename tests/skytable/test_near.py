"""near(): (point, partition) pairs within a radius, the addstar hot path."""

from __future__ import annotations

import numpy as np
import pytest

from dvo.errors import SkyTableError

ARCSEC = 1 / 3600


def _edge_points(st, rng, n):
    """Points within a few arcsec of partition edges and corners (the hard cases)."""
    rows = rng.choice(st.partitions, n)
    t = rng.uniform(0, 1, n)
    side = rng.integers(0, 4, n)
    ra = np.where(
        side < 2,
        st.r_min[rows] + t * (st.r_max[rows] - st.r_min[rows]),
        np.where(side == 2, st.r_min[rows], st.r_max[rows]),
    )
    dec = np.where(
        side == 0,
        st.d_min[rows],
        np.where(side == 1, st.d_max[rows], st.d_min[rows] + t * (st.d_max[rows] - st.d_min[rows])),
    )
    jitter = rng.normal(0, 2 * ARCSEC, (2, n))
    return np.mod(ra + jitter[0], 360.0), np.clip(dec + jitter[1], -90, 90)


def test_own_partition_always_included(st, rng, oracle):
    ra, dec = oracle.uniform_points(rng, 100_000)
    pt, part = st.near(ra, dec, ARCSEC)
    own = st.lookup(ra, dec)
    key = np.sort(pt * len(st) + part)
    assert np.isin(np.arange(ra.size) * len(st) + own, key).all()
    assert np.array_equal(np.unique(pt), np.arange(ra.size))
    assert np.all(np.diff(pt * len(st) + part) > 0)  # sorted, no duplicates
    assert st.has_table[part].all()


@pytest.mark.parametrize("radius", [ARCSEC, 30 * ARCSEC, 0.5, 5.0])
def test_gsc_near_is_exact(gsc3, rng, oracle, radius):
    ra, dec = _edge_points(gsc3, rng, 3_000)
    ra2, dec2 = oracle.uniform_points(rng, 1_000)
    ra, dec = (
        np.concatenate([ra, ra2, [0.0, 0.0, 7.5]]),
        np.concatenate([dec, dec2, [90.0, -90.0, 0.0]]),
    )
    pt, part = gsc3.near(ra, dec, radius)
    parts = gsc3.partitions
    c, p = np.meshgrid(np.arange(ra.size), parts, indexing="ij")
    c, p = c.ravel(), p.ravel()
    keep = (dec[c] + radius >= gsc3.d_min[p]) & (dec[c] - radius <= gsc3.d_max[p])
    c, p = c[keep], p[keep]
    dist = oracle.box_distance(
        ra[c], dec[c], gsc3.r_min[p], gsc3.r_max[p], gsc3.d_min[p], gsc3.d_max[p]
    )
    got = set((pt * len(gsc3) + part).tolist())
    want = set((c[dist <= radius - 1e-9] * len(gsc3) + p[dist <= radius - 1e-9]).tolist())
    maybe = set((c[dist <= radius + 1e-9] * len(gsc3) + p[dist <= radius + 1e-9]).tolist())
    own = set((np.arange(ra.size) * len(gsc3) + gsc3.lookup(ra, dec)).tolist())
    assert want <= got <= (maybe | own)


def test_healpix_near_never_misses(st, rng):
    """Points displaced by up to the radius land in a partition listed for the point."""
    ra, dec = _edge_points(st, rng, 20_000)
    radius = 2 * ARCSEC
    pt, part = st.near(ra, dec, radius)
    key = np.sort(pt * len(st) + part)
    az = rng.uniform(0, 2 * np.pi, ra.size)
    rho = np.radians(radius * np.sqrt(rng.uniform(0, 1, ra.size)) * (1 - 1e-6))
    d = np.radians(dec)
    sd = np.sin(d) * np.cos(rho) + np.cos(d) * np.sin(rho) * np.cos(az)
    da = np.arctan2(np.sin(az) * np.sin(rho) * np.cos(d), np.cos(rho) - np.sin(d) * sd)
    moved = st.lookup(np.mod(ra + np.degrees(da), 360), np.degrees(np.arcsin(np.clip(sd, -1, 1))))
    assert np.isin(np.arange(ra.size) * len(st) + moved, key).all()


def test_near_is_fast_for_tiny_radii(gsc3, hpx, rng, oracle):
    import time

    ra, dec = oracle.uniform_points(rng, 1_000_000)
    for st in (gsc3, hpx):
        st.near(ra[:10], dec[:10], ARCSEC)
        t = time.perf_counter()
        pt, _ = st.near(ra, dec, ARCSEC)
        assert time.perf_counter() - t < 5.0
        assert pt.size < 1.1 * ra.size


@pytest.mark.parametrize("radius", [-1.0, np.nan, 181.0, [1.0, 2.0, 3.0]])
def test_bad_radius(gsc3, radius):
    with pytest.raises(SkyTableError, match="radius"):
        gsc3.near([0.0, 1.0], [0.0, 1.0], radius)


def test_empty_input(gsc3):
    pt, part = gsc3.near([], [], ARCSEC)
    assert pt.size == part.size == 0


def _clustered_points(st, rng, n):
    """Points in runs that stay in one partition for a while (as the detections of a chip),
    and points near edges and corners, where a run leaves its box."""
    ra, dec = _edge_points(st, rng, n // 2)
    centre_ra, centre_dec = rng.uniform(0, 360, 50), rng.uniform(-89, 89, 50)
    k = np.repeat(np.arange(50), n // 100)
    cra = np.mod(centre_ra[k] + rng.normal(0, 0.3, k.size), 360.0)
    cdec = np.clip(centre_dec[k] + rng.normal(0, 0.3, k.size), -90, 90)
    return np.concatenate([cra, ra]), np.concatenate([cdec, dec])


@pytest.mark.parametrize("radius", [0.0, ARCSEC, 2 * ARCSEC, 0.5, "per point"])
def test_lookup_near_is_lookup_and_near(st, rng, radius):
    ra, dec = _clustered_points(st, rng, 20_000)
    if radius == "per point":
        radius = rng.choice([0.0, ARCSEC, 30 * ARCSEC], ra.size)
    own, parts = st.lookup_near(ra, dec, radius)
    assert np.array_equal(own, st.lookup(ra, dec))
    assert np.array_equal(parts, np.union1d(st.near(ra, dec, radius)[1], own))


def test_lookup_near_empty(gsc3):
    own, parts = gsc3.lookup_near([], [], ARCSEC)
    assert own.size == parts.size == 0


@pytest.mark.parametrize("radius", [0.0, ARCSEC, 10 * ARCSEC, 3.0])
def test_near_edge_is_box_margin_test(gsc4, rng, radius):
    """The kernel's shortcut for points deep inside their box gives box_margin's answer,
    also for points on edges and corners (margin 0)."""
    from dvo.skytable import _kernels
    from numba import njit

    @njit
    def box_margin(ra, dec, rows, r_min, r_max, d_min, d_max, out):
        for k in range(ra.shape[0]):  # the margin of every point, no shortcut
            c = rows[k]
            out[k] = _kernels._margin(ra[k], dec[k], r_min[c], r_max[c], d_min[c], d_max[c])

    st = gsc4
    ra, dec = _clustered_points(st, rng, 40_000)
    rows = st.partitions[:2000:7]
    ra = np.concatenate([ra, st.r_min[rows], np.nextafter(st.r_max[rows], 0)])
    dec = np.concatenate([dec, st.d_min[rows], st.d_min[rows]])
    ra, dec = np.mod(ra, 360.0), np.clip(dec, -90, 90)
    own = st.lookup(ra, dec)
    margin, edge = np.empty(ra.size), np.empty(ra.size, dtype=bool)
    box = (st.r_min, st.r_max, st.d_min, st.d_max)
    box_margin(ra, dec, own, *box, margin)
    _kernels.near_edge(ra, dec, own, *box, np.full(ra.size, radius), edge)
    assert np.array_equal(edge, margin <= radius)
