"""Per-object fits: the model choice (position, + proper motion, + parallax) and the fit.

Model choice, recorded in Average.FLAGS as FIT_AVE / FIT_PM / FIT_PAR:

- proper motion when enabled and the object has at least ``pm_min_meas`` measures over at
  least ``pm_min_years``;
- parallax as well when enabled and it has at least ``plx_min_meas`` measures;
- otherwise the mean position (a reference proper motion, if any, moves the reference
  position to the object's epoch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import chip_correction, fit_objects

__all__ = ["ObjectOptions", "ObjectFit", "choose_models", "fit", "object_ranges"]


@dataclass(frozen=True, kw_only=True)
class ObjectOptions:
    """Object model rules and clipping."""

    pm: bool = True
    parallax: bool = True
    pm_min_meas: int = 5
    pm_min_years: float = 1.0
    plx_min_meas: int = 8
    nsigma: float = 5.0
    npass: int = 3


@dataclass
class ObjectFit:
    """The fit of one partition's objects, and its per-measure residual inputs."""

    params: np.ndarray  # (n_obj, 5)
    var: np.ndarray  # (n_obj, 5)
    chi2: np.ndarray
    nfit: np.ndarray
    npar: np.ndarray
    used: np.ndarray  # per measure
    model_x: np.ndarray  # per measure: model position at the measure's epoch (arcsec)
    model_y: np.ndarray
    corr_x: np.ndarray  # per measure: the chip correction applied (arcsec)
    corr_y: np.ndarray
    sx: np.ndarray  # per measure: effective errors used (arcsec)
    sy: np.ndarray


def object_ranges(obj: np.ndarray, nobj: int) -> tuple[np.ndarray, np.ndarray]:
    """(offset, count) of each object's rows in the per-measure arrays (sorted by object)."""
    cnt = np.bincount(obj, minlength=nobj).astype(np.int64)
    off = np.zeros(nobj, np.int64)
    np.cumsum(cnt[:-1], out=off[1:])
    return off, cnt


def choose_models(ws: dict, opts: ObjectOptions) -> np.ndarray:
    """Number of parameters (2, 4 or 5) per object of a working set."""
    nobj = len(ws["ave_row"])
    off, cnt = object_ranges(ws["obj"], nobj)
    tau = ws["tau"]
    tmin = np.minimum.reduceat(tau, off) if len(tau) else np.zeros(nobj)
    tmax = np.maximum.reduceat(tau, off) if len(tau) else np.zeros(nobj)
    span = np.where(cnt > 0, tmax - tmin, 0.0)
    pm = opts.pm & (cnt >= opts.pm_min_meas) & (span >= opts.pm_min_years)
    plx = pm & opts.parallax & (cnt >= opts.plx_min_meas)
    return np.where(plx, 5, np.where(pm, 4, 2)).astype(np.int64)


def fit(
    ws: dict, coeff: np.ndarray, scale: np.ndarray, npar: np.ndarray, opts: ObjectOptions, *,
    clip: bool = True,
) -> ObjectFit:  # fmt: skip
    """Fit every object of a working set with the chip corrections ``coeff`` applied.

    Parameters
    ----------
    ws : dict
        A working set (``workset.build``).
    coeff : ndarray (n_chips, 2, 10)
        Chip corrections (arcsec).
    scale : ndarray (n_chips,)
        Error inflation per chip (its reduced chi from the previous pass, at least 1).
    npar : ndarray (n_obj,)
        Model per object (``choose_models``).
    clip : bool
        Clip at ``opts.nsigma`` (off in the first iteration, when distortions dominate).
    """
    nobj, n = len(ws["ave_row"]), len(ws["obj"])
    chip = ws["chip"].astype(np.int64)
    cx, cy = np.empty(n), np.empty(n)
    chip_correction(chip, ws["u"], ws["v"], coeff, cx, cy)
    xi, eta = ws["xi"] + cx, ws["eta"] + cy
    sx, sy = ws["sx"] * scale[chip], ws["sy"] * scale[chip]
    off, cnt = object_ranges(ws["obj"], nobj)
    used = np.isfinite(xi) & np.isfinite(eta)
    params, var = np.empty((nobj, 5)), np.empty((nobj, 5))
    chi2, nfit = np.empty(nobj), np.empty(nobj, np.int64)
    nsigma = opts.nsigma if clip else 0.0
    fit_objects(
        off, cnt, ws["tau"], xi, eta, sx, sy, ws["pa"], ws["pd"], ws["ref"], npar, nsigma,
        opts.npass, used, params, var, chi2, nfit,
    )  # fmt: skip
    p = params[ws["obj"]]
    mx = p[:, 0] + p[:, 2] * ws["tau"] + p[:, 4] * ws["pa"]
    my = p[:, 1] + p[:, 3] * ws["tau"] + p[:, 4] * ws["pd"]
    return ObjectFit(params, var, chi2, nfit, npar, used, mx, my, cx, cy, sx, sy)
