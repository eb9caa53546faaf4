"""One exposure, vectorised: which stars land on which chip, where they are measured, how bright.

Astrometry (per detection, arcsec in the boresight's tangent plane, xi east / eta north)::

    WCS(X_PSF, Y_PSF) = truth + D_image(u, v) + n,   n ~ N(0, sigma_pos) per axis
    sigma_pos = sqrt((centroid_k * FWHM / SNR0)**2 + centroid_floor**2)

where WCS is the chip header's TAN WCS (one-based pixel X_PSF + 1), truth the apparent position
of stars.py, D_image the image's distortion polynomial of camera.py evaluated at the written
(u, v) of (X_PSF, Y_PSF), and SNR0 the S/N of the flux without the flat term. X_PSF is solved
by fixed-point iteration and rounded to float32 before RA_PSF/DEC_PSF are computed from it.

Photometry (mag)::

    m_inst = m_true - 0.001*C_LAM - K*(AIRMASS - 1) + dZP_image + flat(X_PSF, Y_PSF)
             - 2.5 log10(EXPTIME)
    counts = 10**(-0.4 m_inst);  sigma_F = sqrt(counts + 4 pi s**2 * sky),  s = FWHM / 2.3548 px
    sigma_m = sqrt((1.0857 * sigma_F / counts)**2 + phot_floor**2)
    PSF_INST_MAG = m_inst + N(0, sigma_m),  PSF_INST_MAG_SIG = sigma_m  (exactly, as float32)

A star is detected when 10**(-0.4 PSF_INST_MAG) / sigma_F >= snr_min and its peak
counts / (2 pi s**2) <= saturation. m_true includes the star's variability at the exposure.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dvo.gpc1 import CHIP_NX, CHIP_NY, FILTERS, PIXEL_SCALE

from ._kernels import observe_pixels, project_candidates
from .camera import PITCH_X, PITCH_Y, cd_matrix, chip_crpix, chip_xy, flat_eval
from .config import SurveyConfig
from .sky import radec_to_vec, tan_deproject, tangent_basis
from .stars import MAS, StarIndex, variability

__all__ = ["ChipSet", "ExposureModel", "simulate_exposure"]

FWHM_TO_SIGMA = 1.0 / 2.3548200450309493
MAG_PER_SNR = 2.5 / np.log(10.0)


@dataclass(frozen=True)
class ChipSet:
    """The chips in use: names, grid positions, and a (cx, cy) -> index look-up table."""

    names: tuple[str, ...]
    cx: np.ndarray
    cy: np.ndarray
    lut: np.ndarray  # (8, 8) of index into names, -1 where absent

    @classmethod
    def from_names(cls, names: tuple[str, ...]) -> ChipSet:
        """Build from chip names such as ``('XY33', 'XY34')``."""
        xy = np.array([chip_xy(n) for n in names], dtype=np.int64).reshape(-1, 2)
        lut = np.full((8, 8), -1, np.int64)
        lut[xy[:, 0], xy[:, 1]] = np.arange(len(names))
        return cls(tuple(names), xy[:, 0], xy[:, 1], lut)

    def crpix0(self) -> np.ndarray:
        """Zero-based chip pixel of the boresight per chip, shape (n, 2)."""
        pix = [chip_crpix(x, y) for x, y in zip(self.cx, self.cy, strict=True)]
        return np.array(pix).reshape(-1, 2) - 1.0


@dataclass(frozen=True)
class ExposureModel:
    """What one exposure needs besides the stars: its row, live chips, dZP, distortion, flat."""

    exp: np.void  # a row of schedule.EXPOSURE_DTYPE
    live: np.ndarray  # (n_chips,) bool
    dzp: np.ndarray  # (n_chips,) mag, per image
    dist: np.ndarray  # (n_chips, 2, 10) arcsec
    flat_grid: np.ndarray
    flat_smooth: np.ndarray
    epoch_mjd: float


def _observe_pixels(m: ExposureModel, chip, x, y, offset_arcsec: np.ndarray):
    """Measured pixels with D(u, v) + noise (arcsec, (n, 2) xi/eta) added, as float32."""
    cdinv = np.linalg.inv(cd_matrix(float(m.exp["posangle"]))) / 3600.0
    hx, hy = (CHIP_NX - 1) / 2, (CHIP_NY - 1) / 2
    xo, yo = observe_pixels(x, y, chip, m.dist, offset_arcsec, cdinv, hx, hy, 4)
    return xo.astype(np.float32), yo.astype(np.float32)


def pixel_to_sky(chips: ChipSet, exp: np.void, chip, x, y) -> tuple[np.ndarray, np.ndarray]:
    """RA/DEC (deg) through the chip header WCS of zero-based pixels (x, y) on chips ``chip``."""
    cd = cd_matrix(float(exp["posangle"]))
    c0 = chips.crpix0()[chip]
    dx, dy = x.astype(np.float64) - c0[:, 0], y.astype(np.float64) - c0[:, 1]
    xi = cd[0, 0] * dx + cd[0, 1] * dy
    eta = cd[1, 0] * dx + cd[1, 1] * dy
    return tan_deproject(xi, eta, float(exp["ra"]), float(exp["dec"]))


def inst_mag(config: SurveyConfig, m: ExposureModel, m_true, chip, x, y, flat: bool = True):
    """Noise-free instrumental magnitude of detections (the smf-format.md convention)."""
    e = m.exp
    f = FILTERS[str(e["filter"])]
    out = m_true - f.zero_point - f.k * (e["airmass"] - 1.0) + m.dzp[chip]
    out = out - 2.5 * np.log10(e["exptime"])
    if flat:
        out = out + flat_eval(m.flat_grid, m.flat_smooth, chip, x.astype(np.float64), y)
    return out


def noise_model(config: SurveyConfig, exp: np.void, mag: np.ndarray):
    """(sigma_F counts, SNR, sigma_m mag) of noise-free instrumental magnitudes."""
    counts = 10 ** (-0.4 * mag)
    s = exp["fwhm"] / PIXEL_SCALE * FWHM_TO_SIGMA
    sigma_f = np.sqrt(counts + 4 * np.pi * s * s * exp["sky"])
    snr = counts / sigma_f
    sigma_m = np.sqrt((MAG_PER_SNR / snr) ** 2 + config.phot_floor**2)
    return sigma_f, snr, sigma_m


def pos_sigma(config: SurveyConfig, exp: np.void, snr: np.ndarray) -> np.ndarray:
    """Per-axis centroid error (arcsec) for a given S/N."""
    return np.hypot(config.centroid_k * exp["fwhm"] / snr, config.centroid_floor)


def _stars_on_chips(config, chips: ChipSet, m: ExposureModel, index: StarIndex, radius):
    """Stars on live chips: (idx, chip, ideal x, ideal y, apparent ra, apparent dec)."""
    e = m.exp
    ra0, dec0 = float(e["ra"]), float(e["dec"])
    cand = index.query(ra0, dec0, radius)
    earth = np.array([e["earth_x"], e["earth_y"], e["earth_z"]])
    east, north = tangent_basis(np.array([ra0]), np.array([dec0]))
    basis = np.stack([radec_to_vec(np.array([ra0]), np.array([dec0]))[0], east[0], north[0]])
    dt_mas = (float(e["mjd"]) - m.epoch_mjd) / 365.25 * MAS
    cdinv = np.linalg.inv(cd_matrix(float(e["posangle"])))
    geom = np.array([PITCH_X, PITCH_Y, (CHIP_NX - 1) / 2, (CHIP_NY - 1) / 2])
    return project_candidates(
        cand,
        index.p,
        index.east,
        index.north,
        index.pm,
        index.parallax,
        dt_mas,
        earth,
        basis,
        np.cos(np.radians(radius)),
        cdinv,
        geom,
        chips.lut,
        m.live,
    )


def _real(config, chips, m: ExposureModel, stars, index, radius, rng) -> dict[str, np.ndarray]:
    """Detections of real stars (unsorted), with their truth."""
    e = m.exp
    idx, chip, x, y, ra_t, dec_t = _stars_on_chips(config, chips, m, index, radius)
    m_true = stars[f"mag_{e['filter']}"][idx]
    if config.variable_fraction > 0:
        m_true = m_true + variability(stars, idx, float(e["mjd"]))
    _, snr0, _ = noise_model(config, e, inst_mag(config, m, m_true, chip, x, y, flat=False))
    sig_pos = pos_sigma(config, e, snr0)
    noise = rng.normal(size=(len(idx), 2)) * sig_pos[:, None]
    xo, yo = _observe_pixels(m, chip, x, y, noise)
    mag0 = inst_mag(config, m, m_true, chip, xo, yo)
    return _measure(config, m, rng, idx, chip, xo, yo, mag0, sig_pos, ra_t, dec_t)


def _measure(config, m, rng, star_id, chip, xo, yo, mag0, sig_pos, ra_t, dec_t):
    """Photometric noise and the detection cuts; returns the detections as a dict of arrays."""
    e = m.exp
    sigma_f, _, sigma_m = noise_model(config, e, mag0)
    mag = mag0 + rng.normal(size=len(mag0)) * sigma_m
    flux = 10 ** (-0.4 * mag)
    s = e["fwhm"] / PIXEL_SCALE * FWHM_TO_SIGMA
    ok = flux / sigma_f >= config.snr_min
    if config.saturation is not None:
        ok &= 10 ** (-0.4 * mag0) / (2 * np.pi * s * s) <= config.saturation
    ok &= (xo >= 0) & (xo <= CHIP_NX - 1) & (yo >= 0) & (yo <= CHIP_NY - 1)
    cols = {
        "star_id": star_id,
        "chip": chip,
        "x": xo,
        "y": yo,
        "mag": mag,
        "mag_sig": sigma_m,
        "mag_true": mag0,
        "flux": flux,
        "flux_sig": sigma_f,
        "pos_sig": sig_pos,
        "ra_true": ra_t,
        "dec_true": dec_t,
    }
    return {k: np.asarray(v)[ok] for k, v in cols.items()}


def _spurious(config, chips: ChipSet, m: ExposureModel, rng) -> dict[str, np.ndarray]:
    """Spurious detections: Poisson per live chip, uniform on the chip, S/N in [1, 3] x snr_min."""
    e = m.exp
    counts = rng.poisson(config.spurious_rate * m.live.astype(float))
    chip = np.repeat(np.arange(len(chips.names)), counts)
    n = len(chip)
    x = rng.uniform(0, CHIP_NX - 1, n).astype(np.float32)
    y = rng.uniform(0, CHIP_NY - 1, n).astype(np.float32)
    s = e["fwhm"] / PIXEL_SCALE * FWHM_TO_SIGMA
    bkg = 4 * np.pi * s * s * e["sky"]
    snr = rng.uniform(1.0, 3.0, n) * config.snr_min
    c = (snr * snr + snr * np.sqrt(snr * snr + 4 * bkg)) / 2
    mag0 = -2.5 * np.log10(c)
    nan = np.full(n, np.nan)
    sig_pos = pos_sigma(config, e, snr)
    return _measure(config, m, rng, np.full(n, -1), chip, x, y, mag0, sig_pos, nan, nan)


def simulate_exposure(
    config: SurveyConfig,
    chips: ChipSet,
    model: ExposureModel,
    stars: np.ndarray,
    index: StarIndex,
    radius: float,
) -> dict[str, np.ndarray]:
    """All detections of one exposure, sorted by chip then a random order, with IPP_IDET.

    Returns
    -------
    dict of ndarray
        star_id (-1 spurious), chip (index into ``chips.names``), x, y (float32 zero-based),
        ra, dec (header WCS of x, y), mag, mag_sig, mag_true (noise-free m_inst), flux,
        flux_sig, pos_sig (arcsec per axis), ra_true, dec_true (apparent, NaN if spurious),
        ipp_idet (0.. per chip).
    """
    rng = np.random.default_rng([config.seed, 3, int(model.exp["exp_index"])])
    real = _real(config, chips, model, stars, index, radius, rng)
    fake = _spurious(config, chips, model, rng)
    det = {k: np.concatenate([real[k], fake[k]]) for k in real}
    order = np.lexsort((rng.uniform(size=len(det["chip"])), det["chip"]))
    det = {k: v[order] for k, v in det.items()}
    first = np.searchsorted(det["chip"], det["chip"], side="left")
    det["ipp_idet"] = np.arange(len(first)) - first
    det["ra"], det["dec"] = pixel_to_sky(chips, model.exp, det["chip"], det["x"], det["y"])
    return det
