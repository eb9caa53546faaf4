"""Fixtures of the skytable tests: tables of both schemes (built once) and brute-force
oracles that share no code with the lookup paths under test (``rng`` is the shared one)."""

from __future__ import annotations

import numpy as np
import pytest
from dvo.skytable import Scheme, SkyTable
from dvo.skytable.density import default_density


@pytest.fixture(scope="session")
def gsc3():
    return SkyTable.gsc(3)


@pytest.fixture(scope="session")
def gsc4():
    return SkyTable.gsc(4)


@pytest.fixture(scope="session")
def hpx():
    return SkyTable.healpix(6)


@pytest.fixture(scope="session")
def adaptive_gsc():
    return SkyTable.adaptive(default_density(), 1000.0, scheme=Scheme.GSC)


@pytest.fixture(scope="session")
def adaptive_hpx():
    return SkyTable.adaptive(default_density(), 1000.0, scheme=Scheme.HEALPIX)


TABLES = ["gsc3", "gsc4", "hpx", "adaptive_gsc", "adaptive_hpx"]


@pytest.fixture(params=TABLES)
def st(request):
    """Every test taking ``st`` runs over both schemes, fixed level and adaptive."""
    return request.getfixturevalue(request.param)


@pytest.fixture(params=["gsc3", "hpx"])
def st2(request):
    """One table per scheme, for the slower tests."""
    return request.getfixturevalue(request.param)


def uniform_points(rng, n):
    ra = rng.uniform(0.0, 360.0, n)
    dec = np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n)))
    return ra, dec


def in_bounds(st, rows, ra, dec):
    """Whether each point lies in the stored box of its row (closed, RA modulo 360)."""
    w = st.r_max[rows] - st.r_min[rows]
    in_ra = (np.mod(ra - st.r_min[rows], 360.0) <= w) | (w >= 360.0)
    return in_ra & (dec >= st.d_min[rows]) & (dec <= st.d_max[rows])


def box_distance(ra, dec, r0, r1, d0, d1):
    """Distance (deg) from points to boxes by the meridian-foot construction (an oracle
    independent of ``box_max_dot``): inside the RA range the distance runs along the
    meridian; outside, the nearest point is on one of the two meridian edges."""
    ra, dec = np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (ra, dec)))
    w = r1 - r0
    inside_ra = (np.mod(ra - r0, 360.0) <= w) | (w >= 360.0)
    along = np.maximum.reduce([d0 - dec, dec - d1, np.zeros_like(dec)])
    best = np.full(np.broadcast(ra, r0).shape, np.inf)
    for edge in (r0, r1):
        dra = np.radians(ra - edge)
        foot = np.degrees(
            np.arctan2(np.sin(np.radians(dec)), np.cos(np.radians(dec)) * np.cos(dra))
        )
        for dd in (np.clip(foot, d0, d1), d0, d1):
            best = np.minimum(best, _dist(ra, dec, edge, dd))
    return np.where(inside_ra, along, best)


def _dist(ra1, dec1, ra2, dec2):
    a1, d1, a2, d2 = (np.radians(x) for x in (ra1, dec1, ra2, dec2))
    c = np.sin(d1) * np.sin(d2) + np.cos(d1) * np.cos(d2) * np.cos(a2 - a1)
    return np.degrees(np.arccos(np.clip(c, -1.0, 1.0)))


@pytest.fixture(scope="session")
def oracle():
    """The helpers and brute-force oracles above, as one fixture (tests/ holds another
    conftest, so test modules do not import this one by name)."""
    import types

    return types.SimpleNamespace(
        uniform_points=uniform_points, in_bounds=in_bounds, box_distance=box_distance, dist=_dist
    )
