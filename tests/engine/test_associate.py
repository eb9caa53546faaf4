"""Matcher.match against astropy's search_around_sky (an independent implementation): the
nearest object within the radius, across RA = 0 and near the poles."""

from __future__ import annotations

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import SkyCoord, search_around_sky

from dvo.associate import Matcher


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
