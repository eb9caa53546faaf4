"""Density maps and the density-adaptive builder."""

from __future__ import annotations

import healpy as hp
import numpy as np
import pytest
from dvo.skytable import Scheme, SkyTable
from dvo.skytable.density import (
    GSC_TOTAL_STARS,
    box_counts,
    check_density,
    default_density,
    galactic,
    pixel_counts,
    read_density,
)

from dvo.errors import SkyTableError


def test_default_map_is_the_documented_model():
    m = default_density()
    assert m.size == hp.nside2npix(64) and m.sum() == pytest.approx(GSC_TOTAL_STARS)
    ra, dec = hp.pix2ang(64, np.arange(m.size), nest=True, lonlat=True)
    _, b = galactic(ra, dec)
    assert m[np.abs(b) < 5].mean() > 5 * m[np.abs(b) > 60].mean()


def test_galactic_matches_astropy(rng, oracle):
    from astropy.coordinates import SkyCoord

    ra, dec = oracle.uniform_points(rng, 1000)
    g = SkyCoord(ra, dec, unit="deg", frame="icrs").galactic
    lon, lat = galactic(ra, dec)
    assert np.allclose(lat, g.b.deg, atol=1e-4)
    assert np.allclose(np.mod(lon - g.l.deg + 180, 360) - 180, 0, atol=1e-3)


@pytest.mark.parametrize("bad", [np.ones(100), -np.ones(12), np.full(12, np.nan), np.ones((12, 2))])
def test_bad_maps_rejected(bad):
    with pytest.raises(SkyTableError, match="density map"):
        check_density(bad)


def test_counts_add_up():
    m = default_density()
    total = box_counts(m, np.array([0.0]), np.array([360.0]), np.array([-90.0]), np.array([90.0]))
    assert total[0] == pytest.approx(m.sum(), rel=1e-2)
    for order in (2, 6, 8):
        npix = 12 * 4**order
        assert pixel_counts(m, order, np.arange(npix)).sum() == pytest.approx(m.sum())


@pytest.mark.parametrize("scheme", [Scheme.GSC, Scheme.HEALPIX])
@pytest.mark.parametrize("limit", [300.0, 3000.0])
def test_adaptive_bounds_the_largest_partition(scheme, limit):
    m = default_density()
    st = SkyTable.adaptive(m, limit, scheme=scheme)
    parts = st.partitions
    if scheme is Scheme.GSC:
        counts = box_counts(m, st.r_min[parts], st.r_max[parts], st.d_min[parts], st.d_max[parts])
    else:
        counts = pixel_counts(m, 0, np.zeros(0, np.int64))
        counts = np.concatenate(
            [
                pixel_counts(m, int(k), st.hpx_pix[parts[st.depth[parts] == k]])
                for k in np.unique(st.depth[parts])
            ]
        )
    assert counts.max() <= limit * 1.0001
    assert st.depth[parts].min() < st.depth[parts].max()  # leaves at several depths
    assert st.level == st.depth[parts].max()


def test_adaptive_denser_limit_gives_more_partitions():
    m = default_density()
    assert len(SkyTable.adaptive(m, 500.0).partitions) > len(
        SkyTable.adaptive(m, 5000.0).partitions
    )
    with pytest.raises(SkyTableError, match="positive"):
        SkyTable.adaptive(m, 0.0)


def test_user_map_any_nside(tmp_path):
    m = np.ones(hp.nside2npix(4)) * 1000.0
    st = SkyTable.gsc(3, density=m)
    assert len(st.partitions) > 0
    path = tmp_path / "map.fits"
    hp.write_map(path, m, nest=True, dtype=np.float64)
    assert np.allclose(read_density(path), m)
    with pytest.raises(SkyTableError, match="HEALPix map"):
        read_density(tmp_path / "missing.fits")
