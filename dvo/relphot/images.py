"""Per-image decisions between solves: too few stars, poor (clouds, scatter), night membership.

As DVO's ``clean_images``: an image is PHOTOM_FEW with fewer than ``image_min_stars`` usable
stars (and left uncalibrated), PHOTOM_POOR when its rms scatter exceeds
``max(image_scatter, 3 x median rms)`` or its zero point lies further than
``max(image_offset, 3 sigma)`` from the median of its filter (sigma from the MAD). Poor and
few images leave the star means; a poor image still gets a zero point, measured against the
star means of the good images ("leaf" update).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import _kernels as kern
from .model import Model

__all__ = ["ImageStats", "image_stats", "classify", "leaf_update", "free_cloudy_exposures"]


@dataclass
class ImageStats:
    """Per zero-point column aggregates of the kernel's per-image residual statistics."""

    n: np.ndarray  # measurements used per image
    offset: np.ndarray  # weighted mean residual per image (0 for a converged fit image)
    rms: np.ndarray  # weighted rms of the residuals about that offset
    err: np.ndarray  # statistical error of the image zero point
    chi2: np.ndarray  # reduced chi2 of the residuals


def image_stats(istat: np.ndarray) -> ImageStats:
    """Summaries of the kernel's ``istat`` rows."""
    n = istat[:, kern.I_N]
    sw = istat[:, kern.I_SW]
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(sw > 0, istat[:, kern.I_SWR] / sw, 0.0)
        rms = np.sqrt(np.maximum(np.where(sw > 0, istat[:, kern.I_SWR2] / sw, 0.0) - off**2, 0))
        chi2 = np.where(n > 1, istat[:, kern.I_CHI2] / np.maximum(n - 1, 1), np.nan)
        err = np.where(sw > 0, 1.0 / np.sqrt(sw), np.nan) * np.sqrt(np.maximum(chi2, 1.0))
    return ImageStats(n, off, rms, err, chi2)


def _robust_sigma(x: np.ndarray) -> float:
    if len(x) < 2:
        return 0.0
    return float(1.4826 * np.median(np.abs(x - np.median(x))))


def classify(model: Model, st: ImageStats, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(few, poor) boolean arrays per image from statistics at ``theta``."""
    o = model.options
    few = st.n < o.image_min_stars
    zp = model.image_zp(theta) + st.offset
    poor = np.zeros(model.n_images, bool)
    good = ~few
    measured = st.n >= 3  # enough for an offset: a cloudy image is poor even with few stars
    if good.any():
        rms_lim = max(o.image_scatter, 3.0 * float(np.median(st.rms[good])))
        poor |= good & (st.rms > rms_lim)
    for slot in np.unique(model.slot):
        sel = good & (model.slot == slot)
        if sel.sum() < 3:
            continue
        med = float(np.median(zp[sel]))
        lim = max(o.image_offset, 3.0 * _robust_sigma(zp[sel]))
        poor |= measured & (model.slot == slot) & (np.abs(zp - med) > lim)
    return few, _by_column(model, poor)


def _by_column(model: Model, flag: np.ndarray) -> np.ndarray:
    """Spread a flag to every image that shares the zero-point column of a flagged image."""
    own = ~model.on_night
    hit = np.zeros(model.n_zp, bool)
    hit[model.zcol[flag & own]] = True
    return flag | (own & hit[model.zcol])


def leaf_update(model: Model, theta: np.ndarray, istat: np.ndarray, fit: np.ndarray) -> None:
    """Zero points of images outside the fit, measured against the good star means (in place)."""
    leaf = ~fit & ~model.on_night & (istat[:, kern.I_SW] > 0)
    if not leaf.any():
        return
    sw = np.bincount(model.zcol[leaf], weights=istat[leaf, kern.I_SW], minlength=model.n_zp)
    swr = np.bincount(model.zcol[leaf], weights=istat[leaf, kern.I_SWR], minlength=model.n_zp)
    cols = np.flatnonzero(sw > 0)
    theta[cols] += swr[cols] / sw[cols]


def free_cloudy_exposures(model: Model, theta: np.ndarray, istat: np.ndarray) -> int:
    """Nights: exposures off their night model by more than ``cloud_limit`` get own zero points.

    Freed exposures whose own zero points returned within ``cloud_limit / 2`` of the night model
    go back to it. Returns the number of exposures moved; freed zero-point columns start from
    the night model plus their offset.
    """
    if model.n_nights == 0:
        return 0
    sw = np.bincount(model.exposure, weights=istat[:, kern.I_SW])
    swr = np.bincount(model.exposure, weights=istat[:, kern.I_SWR])
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(sw > 0, swr / sw, 0.0)
    bad_exp = np.abs(off) > model.options.cloud_limit
    free = model.on_night & bad_exp[model.exposure]
    # freed exposures whose own zero point came back within half the limit of their night model
    # (an early night fit polluted by clouds) return to it
    night = theta[model.acol] + theta[model.kcol] * model.xam1
    own = theta[model.zcol]
    close = np.abs(own - night) < 0.5 * model.options.cloud_limit
    back_exp = np.bincount(model.exposure, weights=(~close).astype(float)) == 0
    back = ~model.on_night & back_exp[model.exposure] & (istat[:, kern.I_SW] > 0)
    if free.any():
        start = model.image_zp(theta) + off[model.exposure]
        theta[model.zcol[free]] = start[free]
    model.on_night[free] = False
    model.on_night[back] = True
    return int(np.unique(model.exposure[free | back]).size)
