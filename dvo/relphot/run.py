"""The relphot driver: validate, iterate (pass, classify, solve), then apply and report."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo.flags import ImageFlags

from . import _kernels as kern
from .accumulate import PassModel, PassResult, PassState, merge_sums, read_partition_sums
from .images import classify, free_cloudy_exposures, image_stats, leaf_update
from .model import Model, Options, build_model
from .solve import Groups, image_groups, solve_system

__all__ = ["Solution", "solve", "iterate", "Runner", "local_runner"]

#: Runs one pass over every partition: ``runner(PassModel, PassState) -> PassResult``.
Runner = Callable[[PassModel, PassState], PassResult]

log = logging.getLogger("dvo.relphot")

_RELPHOT_FLAGS = np.uint32(ImageFlags.PHOTOM_NOCAL | ImageFlags.PHOTOM_POOR | ImageFlags.PHOTOM_FEW)


@dataclass
class Solution:
    """The calibration relphot found (per chip image in ``model`` order) and how."""

    model: Model
    theta: np.ndarray
    mcal: np.ndarray  # zero point per image (flat excluded); stored value where uncalibrated
    dmcal: np.ndarray
    chi2: np.ndarray
    nstar: np.ndarray
    flags: np.ndarray  # the relphot bits of Image.FLAGS
    calibrated: np.ndarray  # bool
    group: np.ndarray  # connected group per image, -1 none
    groups: Groups
    final: PassResult
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def mjd(self) -> np.ndarray:
        """MJD_OBS per image."""
        return self.model.mjd

    def flat(self) -> np.ndarray:
        """Flat cells, shape (n photcodes, grid, grid) (zeros without a flat)."""
        g = self.model.options.flat_grid
        n = len(self.model.flat_codes)
        if not self.model.options.flat:
            return np.zeros((n, g, g))
        return self.theta[self.model.flat_slice()].reshape(n, g, g)


def local_runner(db) -> Runner:
    """A pass over the local partition files of ``db``, summed in SkyTable order."""

    def run(pm: PassModel, st: PassState) -> PassResult:
        sums = (read_partition_sums(db, int(i), pm, st) for i in db.populated())
        return merge_sums(sums, pm, st.accumulate)

    return run


def _pass(runner: Runner, model: Model, theta, fit, igroup, *, robust: bool, accumulate: bool):
    st = PassState(theta, np.asarray(fit, bool), np.asarray(igroup, np.int64), robust, accumulate)
    return runner(PassModel.of(model), st)


def iterate(runner: Runner, model: Model) -> tuple[np.ndarray, np.ndarray, Groups, list[dict]]:
    """Alternate passes and solves until the parameters and image flags settle.

    Returns (theta, fit mask, groups, per-iteration history).
    """
    o = model.options
    theta = model.initial_theta()
    fit = np.ones(model.n_images, bool)
    igroup = np.full(model.n_images, -1, np.int64)
    groups, history = None, []
    for it in range(1, o.iterations + 1):
        t0 = time.perf_counter()
        res = _pass(runner, model, theta, fit, igroup, robust=it > 1, accumulate=True)
        changed = 0
        if it > 1:
            st = image_stats(res.istat)
            few, poor = classify(model, st, theta)
            changed = int(((few | poor) == fit).sum())
            changed += free_cloudy_exposures(model, theta, res.istat)
            new_fit = ~(few | poor)
        else:
            new_fit = fit
        new, groups, info = solve_system(res.S, res.b, model, theta, res.istat[:, kern.I_REF] > 0)
        leaf_update(model, new, res.istat, fit)
        delta = float(np.max(np.abs(new - theta))) if len(theta) else 0.0
        theta, fit = new, new_fit
        igroup = np.where(fit, image_groups(model, groups.label), -1)
        history.append(_history_row(it, res, info, delta, changed, fit, groups, t0))
        log.info("relphot iteration %d: %s", it, history[-1])
        if it > 2 and delta < o.tolerance and changed == 0:
            break
    return theta, fit, groups, history


def _history_row(it, res, info, delta, changed, fit, groups, t0) -> dict:
    c = res.counts
    return {
        "iteration": it,
        "robust": it > 1,
        "stars": int(c[kern.C_STARS]),
        "stars_rejected": int(c[kern.C_REJECTED]),
        "measures": int(c[kern.C_MEASURES]),
        "clipped": int(c[kern.C_CLIPPED]),
        "cg_iterations": info.iterations,
        "cg_converged": bool(info.converged),
        "max_change_mag": delta,
        "images_changed": changed,
        "images_in_fit": int(fit.sum()),
        "groups": len(groups.sizes),
        "seconds": round(time.perf_counter() - t0, 3),
    }


def solve(db, options: Options, runner: Runner | None = None) -> Solution:
    """Run the whole calibration of ``db`` (no writes).

    ``runner`` runs each pass (default :func:`local_runner`; partition hosts pass theirs).
    """
    t0 = time.perf_counter()
    model = build_model(db.images(), db.photcodes, options)
    runner = runner or local_runner(db)
    theta, fit, groups, history = iterate(runner, model)
    igroup = np.where(fit, image_groups(model, groups.label), -1)
    final = _pass(runner, model, theta, fit, igroup, robust=True, accumulate=False)
    leaf_update(model, theta, final.istat, fit)
    st = image_stats(final.istat)
    few, poor = classify(model, st, theta)
    group = np.where(fit, igroup, final.istat[:, kern.I_GRP].astype(np.int64) - 1)
    anchored = np.zeros(model.n_images, bool)
    ok = group >= 0
    anchored[ok] = groups.anchored[group[ok]]
    calibrated = anchored & ~few & (st.n > 0)
    flags = np.zeros(model.n_images, np.uint32)
    flags[~calibrated] |= np.uint32(ImageFlags.PHOTOM_NOCAL)
    flags[few] |= np.uint32(ImageFlags.PHOTOM_FEW)
    flags[poor] |= np.uint32(ImageFlags.PHOTOM_POOR)
    mcal = np.where(calibrated, model.image_zp(theta), model.mcal0)
    return Solution(
        model=model,
        theta=theta,
        mcal=mcal,
        dmcal=np.nan_to_num(st.err),
        chi2=np.nan_to_num(st.chi2),
        nstar=st.n.astype(np.int64),
        flags=flags,
        calibrated=calibrated,
        group=group,
        groups=groups,
        final=final,
        history=history,
        seconds=time.perf_counter() - t0,
    )


def default_report_dir(db) -> Path:
    """Where reports go unless told otherwise."""
    return Path(db.catdir) / "relphot-report"
