"""One exposure: which stars land on which chip, where they are measured, how bright.

The per-detection work runs in two numba kernels (``_kernels.project_candidates`` and
``_kernels.measure``); the formulas they implement are these.

Astrometry (per detection, arcsec in the boresight's tangent plane, xi east / eta north)::

    WCS(X_PSF, Y_PSF) = truth + D_image(u, v) + n,   n ~ N(0, sigma_pos) per axis
    sigma_pos = sqrt((centroid_k * FWHM / SNR0)**2 + centroid_floor**2)   (= X_PSF_SIG * 0.258)

where WCS is the chip header's TAN WCS (one-based pixel X_PSF + 1), truth the apparent position
of stars.py (truth ``ra_true``/``dec_true``), D_image the image's distortion polynomial of
camera.py evaluated at the written (u, v) of (X_PSF, Y_PSF), and SNR0 = c0 / sqrt(c0 + bkg)
with c0 the counts without the flat term. X_PSF is solved by fixed-point iteration and
rounded to float32 before RA_PSF/DEC_PSF are computed from it (3 iterations leave
< 1e-6 pixel for distortions up to 1 arcsec).

Photometry (mag)::

    m_inst = m_true - 0.001*C_LAM - K*(AIRMASS - 1) + dZP_image + flat(X_PSF, Y_PSF)
             - 2.5 log10(EXPTIME)
    counts = 10**(-0.4 m_inst);  sigma_F = sqrt(counts + bkg)
    bkg = 4 pi s**2 * sky,  s = FWHM / 2.3548 / 0.258 px,  sky = exposures.sky (counts/pixel)
    sigma_m = sqrt((1.0857 * sigma_F / counts)**2 + phot_floor**2)
    PSF_INST_MAG = m_inst + N(0, sigma_m),  PSF_INST_MAG_SIG = sigma_m  (as float32)

A source is detected when 10**(-0.4 PSF_INST_MAG) / sigma_F >= snr_min (the measured S/N: so
sources near the limit are biased bright; select S/N0 > 20 for unbiased photometry; with
``detect_on_true_snr`` the cut is on counts / sigma_F instead, free of that bias), its
noise-free peak counts / (2 pi s**2) <= saturation, and X_PSF, Y_PSF lie on the chip.
m_true includes the star's variability at the exposure. Spurious sources (star_id -1):
Poisson(spurious_rate) per live chip, uniform on the chip, SNR0 uniform in [1, 3] x snr_min,
then measured like stars. Detections of a chip are ordered brightest first (IPP_IDET 0..).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dvo.gpc1 import CHIP_NX, CHIP_NY, FILTERS, PIXEL_SCALE

from ._kernels import measure, project_candidates
from .camera import PITCH_X, PITCH_Y, cd_matrix, chip_crpix, chip_xy
from .config import SurveyConfig
from .sky import radec_to_vec, tangent_basis
from .stars import MAS, StarIndex, variability

__all__ = ["ChipSet", "ExposureModel", "simulate_exposure"]

FWHM_TO_SIGMA = 1.0 / 2.3548200450309493


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


def chip_base_mag(m: ExposureModel) -> np.ndarray:
    """Per chip: ``-0.001*C_LAM - K*(AIRMASS - 1) + dZP_image - 2.5 log10(EXPTIME)`` (mag).

    Adding the true magnitude and the flat term gives the noise-free PSF_INST_MAG.
    """
    e = m.exp
    f = FILTERS[str(e["filter"])]
    return -f.zero_point - f.k * (e["airmass"] - 1.0) + m.dzp - 2.5 * np.log10(e["exptime"])


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


def _camera_rows(chips: ChipSet, exp: np.void) -> np.ndarray:
    """The ``cams`` argument of :func:`_kernels.measure`: boresight pixels, CD, inverse CD."""
    cd = cd_matrix(float(exp["posangle"]))
    cams = np.zeros((len(chips.names) + 2, 4))
    cams[: len(chips.names), :2] = chips.crpix0()
    cams[-2] = cd.ravel()
    cams[-1] = (np.linalg.inv(cd) / 3600.0).ravel()
    return cams


def _phot_params(config: SurveyConfig, m: ExposureModel) -> np.ndarray:
    """The ``phot`` argument of :func:`_kernels.measure`."""
    e = m.exp
    s = e["fwhm"] / PIXEL_SCALE * FWHM_TO_SIGMA
    peak = np.inf if config.saturation is None else config.saturation * 2 * np.pi * s * s
    bkg = 4 * np.pi * s * s * e["sky"]
    kf = config.centroid_k * e["fwhm"]
    cells = m.flat_grid.shape[-1]
    return np.array(
        [bkg, config.phot_floor, kf, config.centroid_floor, config.snr_min, peak]
        + [CHIP_NX, CHIP_NY, float(e["ra"]), float(e["dec"]), cells, config.detect_on_true_snr]
    )


def _spurious(config, chips: ChipSet, m: ExposureModel, rng) -> tuple[np.ndarray, ...]:
    """Spurious detections: Poisson per live chip, uniform on the chip, S/N in [1, 3] snr_min.

    Returns (chip, x, y, m0) with m0 the instrumental magnitude without the flat term.
    """
    e = m.exp
    counts = rng.poisson(config.spurious_rate * m.live.astype(float))
    chip = np.repeat(np.arange(len(chips.names)), counts)
    n = len(chip)
    x = rng.uniform(0, CHIP_NX - 1, n)
    y = rng.uniform(0, CHIP_NY - 1, n)
    s = e["fwhm"] / PIXEL_SCALE * FWHM_TO_SIGMA
    bkg = 4 * np.pi * s * s * e["sky"]
    snr = rng.uniform(1.0, 3.0, n) * config.snr_min
    c = (snr * snr + snr * np.sqrt(snr * snr + 4 * bkg)) / 2
    return chip, x, y, -2.5 * np.log10(c)


def _candidates(config, chips, m: ExposureModel, stars, index, radius, rng) -> dict:
    """Real stars on live chips plus spurious sources, before measurement (unsorted)."""
    e = m.exp
    idx, chip, x, y, ra_t, dec_t = _stars_on_chips(config, chips, m, index, radius)
    m_true = stars[f"mag_{e['filter']}"][idx]
    if config.variable_fraction > 0:
        m_true = m_true + variability(stars, idx, float(e["mjd"]))
    flat_free = chip_base_mag(m)
    sp_chip, sp_x, sp_y, sp_m0 = _spurious(config, chips, m, rng)
    nan = np.full(len(sp_chip), np.nan)
    return {
        "star_id": np.concatenate([idx, np.full(len(sp_chip), -1)]),
        "chip": np.concatenate([chip, sp_chip]),
        "x": np.concatenate([x, sp_x]),
        "y": np.concatenate([y, sp_y]),
        "m0": np.concatenate([m_true + flat_free[chip], sp_m0]),
        "ra_true": np.concatenate([ra_t, nan]),
        "dec_true": np.concatenate([dec_t, nan]),
    }


_MEASURED = ("x", "y", "ra", "dec", "mag", "mag_sig", "mag_true", "flux", "flux_sig", "pos_sig")


def simulate_exposure(
    config: SurveyConfig,
    chips: ChipSet,
    model: ExposureModel,
    stars: np.ndarray,
    index: StarIndex,
    radius: float,
) -> dict[str, np.ndarray]:
    """All detections of one exposure, sorted by chip then brightness, with IPP_IDET.

    Returns
    -------
    dict of ndarray
        star_id (-1 spurious), chip (index into ``chips.names``), x, y (float32 zero-based),
        ra, dec (header WCS of x, y), mag, mag_sig, mag_true (noise-free m_inst), flux,
        flux_sig, pos_sig (arcsec per axis), ra_true, dec_true (apparent, NaN if spurious),
        ipp_idet (0.. per chip, brightest first).
    """
    rng = np.random.default_rng([config.seed, 3, int(model.exp["exp_index"])])
    cand = _candidates(config, chips, model, stars, index, radius, rng)
    gauss = rng.normal(size=(len(cand["chip"]), 3))
    keep, vals = measure(
        cand["m0"], cand["chip"], cand["x"], cand["y"], gauss, model.dist,
        _camera_rows(chips, model.exp), _phot_params(config, model),
        model.flat_grid, model.flat_smooth,
    )  # fmt: skip
    order = np.argsort(cand["chip"][keep] * 1000.0 + vals[4])
    keep = keep[order]
    det = {k: cand[k][keep] for k in ("star_id", "chip", "ra_true", "dec_true")}
    det.update({k: vals[i][order] for i, k in enumerate(_MEASURED)})
    det["x"], det["y"] = det["x"].astype(np.float32), det["y"].astype(np.float32)
    first = np.searchsorted(det["chip"], det["chip"], side="left")
    det["ipp_idet"] = np.arange(len(first)) - first
    return det
