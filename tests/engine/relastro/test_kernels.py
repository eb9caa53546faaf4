"""relastro kernels and helpers against independent references (dense lstsq, astropy)."""

from __future__ import annotations

import numpy as np
import pytest

from dvo.relastro._kernels import accumulate_chips, chip_correction, fit_objects
from dvo.relastro.model import TERMS, offsets_to_sky, order_for_count, sky_to_offsets
from dvo.relastro.parallax import earth_positions, parallax_factors


def _problem(rng, nobj=6, per=15):
    cnt = rng.integers(per // 2, per, nobj)
    off = np.r_[0, np.cumsum(cnt)[:-1]].astype(np.int64)
    n = int(cnt.sum())
    tau = rng.uniform(-1.5, 1.5, n)
    pa, pd = np.cos(2 * np.pi * tau), 0.4 * np.sin(2 * np.pi * tau)
    sx, sy = rng.uniform(0.01, 0.05, n), rng.uniform(0.01, 0.05, n)
    xi, eta = rng.normal(0, 0.1, n), rng.normal(0, 0.1, n)
    return off, cnt.astype(np.int64), tau, xi, eta, sx, sy, pa, pd


@pytest.mark.parametrize("npar", [2, 4, 5])
def test_fit_objects_equals_weighted_lstsq(rng, npar):
    off, cnt, tau, xi, eta, sx, sy, pa, pd = _problem(rng)
    nobj = len(off)
    ref = np.full((nobj, 10), np.nan)
    ref[0] = [0.3, 0.01, -0.02, 0.001, 0.05, -0.04, 0.002, 0.002, 0.01, 0.003]
    used = np.ones(len(tau), bool)
    params, var = np.empty((nobj, 5)), np.empty((nobj, 5))
    chi2, nfit = np.empty(nobj), np.empty(nobj, np.int64)
    fit_objects(off, cnt, tau, xi, eta, sx, sy, pa, pd, ref, np.full(nobj, npar), 0.0, 1,
                used, params, var, chi2, nfit)  # fmt: skip
    for k in range(nobj):
        s = slice(off[k], off[k] + cnt[k])
        z, o = np.zeros(cnt[k]), np.ones(cnt[k])
        ax = np.stack([o, z, tau[s], z, pa[s]], 1) / sx[s, None]
        ay = np.stack([z, o, z, tau[s], pd[s]], 1) / sy[s, None]
        a, b = np.vstack([ax, ay]), np.r_[xi[s] / sx[s], eta[s] / sy[s]]
        if k == 0:  # reference position at tau=0.3 and the motion/parallax priors
            r = ref[0]
            extra = np.array([[1, 0, r[0], 0, 0], [0, 1, 0, r[0], 0]]) / r[3]
            rhs = np.array([r[1], r[2]]) / r[3]
            if npar == 2:
                rhs -= np.array([r[4], r[5]]) * r[0] / r[3]
            a, b = np.vstack([a, extra]), np.r_[b, rhs]
            priors = np.diag(1 / np.array([r[6], r[7], r[9]]))
            a = np.vstack([a, np.hstack([np.zeros((3, 2)), priors])])
            b = np.r_[b, r[[4, 5, 8]] / r[[6, 7, 9]]]
        a = a[:, :npar]
        sol = np.linalg.lstsq(a, b, rcond=None)[0]
        cov = np.linalg.inv(a.T @ a)
        np.testing.assert_allclose(params[k, :npar], sol, rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(var[k, :npar], np.diag(cov), rtol=1e-8)
        assert (params[k, npar:] == 0).all() and nfit[k] == cnt[k]


def test_fit_objects_clips_an_outlier(rng):
    off, cnt, tau, xi, eta, sx, sy, pa, pd = _problem(rng, nobj=1, per=20)
    xi[:] = rng.normal(0, 1, len(xi)) * sx
    eta[:] = rng.normal(0, 1, len(xi)) * sy
    xi[3] += 50 * sx[3]
    used = np.ones(len(tau), bool)
    params, var = np.empty((1, 5)), np.empty((1, 5))
    chi2, nfit = np.empty(1), np.empty(1, np.int64)
    fit_objects(off, cnt, tau, xi, eta, sx, sy, pa, pd, np.full((1, 10), np.nan),
                np.array([2]), 5.0, 3, used, params, var, chi2, nfit)  # fmt: skip
    assert not used[3] and used.sum() == len(tau) - 1


def test_chip_normal_equations_recover_a_polynomial(rng):
    n, nchip = 4000, 3
    chip = rng.integers(0, nchip, n)
    u, v = rng.uniform(-1, 1, n), rng.uniform(-1, 1, n)
    coeff = rng.normal(0, 0.1, (nchip, 2, 10))
    rx, ry = np.empty(n), np.empty(n)
    chip_correction(chip, u, v, coeff, rx, ry)
    ata, atb = np.zeros((nchip, 2, 10, 10)), np.zeros((nchip, 2, 10))
    w = np.ones(n)
    accumulate_chips(chip, u, v, rx, ry, w, w, np.ones(n, bool), ata, atb)
    for c in range(nchip):
        a = np.triu(ata[c, 0]) + np.triu(ata[c, 0], 1).T
        np.testing.assert_allclose(np.linalg.solve(a, atb[c, 0]), coeff[c, 0], atol=1e-9)
    basis = np.stack([u**i * v**j for i, j in TERMS], 1)
    np.testing.assert_allclose(rx, (basis * coeff[chip, 0]).sum(1), atol=1e-12)


def test_order_rule_follows_dvo():
    counts = np.array([0, 1, 5, 6, 24, 25, 63, 64, 10000])
    assert order_for_count(counts, 3).tolist() == [-1, 0, 0, 1, 1, 2, 2, 3, 3]
    assert order_for_count(counts, 1).max() == 1


def test_offsets_round_trip(rng):
    ra0, dec0 = rng.uniform(0, 360, 50), rng.uniform(-89, 89, 50)
    xi, eta = rng.normal(0, 2, 50), rng.normal(0, 2, 50)
    ra, dec = offsets_to_sky(xi, eta, ra0, dec0)
    x2, e2 = sky_to_offsets(ra, dec, ra0, dec0)
    np.testing.assert_allclose(x2, xi, atol=1e-9)
    np.testing.assert_allclose(e2, eta, atol=1e-9)


def test_parallax_factors_match_the_displacement_astropy_predicts():
    """An object at 1 pc seen from the Earth moves by plx * (pa, pd) arcsec."""
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    mjd = np.array([57000.0, 57100.0, 57250.0])
    earth = earth_positions(mjd)
    ra, dec = np.array([10.0, 150.0, 300.0]), np.array([-30.0, 20.0, 60.0])
    pa, pd = parallax_factors(ra, dec, earth)
    dist_au = 1e6  # a "star" at 1e6 au: parallax 1/1e6 rad
    star = SkyCoord(ra * u.deg, dec * u.deg, distance=dist_au * u.au).cartesian.xyz.to_value(u.au)
    seen = SkyCoord(*(star - earth.T), representation_type="cartesian", unit="au")
    dxi = (seen.spherical.lon.deg - ra) * np.cos(np.radians(dec)) * 3600
    deta = (seen.spherical.lat.deg - dec) * 3600
    plx = np.degrees(1 / dist_au) * 3600
    np.testing.assert_allclose(dxi, plx * pa, rtol=1e-4)
    np.testing.assert_allclose(deta, plx * pd, rtol=1e-4)
