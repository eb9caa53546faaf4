"""Stream partitions through the kernel: star means, statistics and reduced normal equations.

One call of :func:`run_pass` reads every populated partition once (only the Measure columns
relphot needs), so memory holds one partition plus the image-level arrays: the dense matrix
``S`` (``n_params``^2 doubles), the right-hand side and per-image statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from . import _kernels as kern
from .model import MAP_GRID, Model, Pin
from .select import MEASURE_COLUMNS, Prepared, prepare

__all__ = ["PassResult", "run_pass", "partitions", "N_BINS", "MAG_LO", "BIN_WIDTH"]

log = logging.getLogger("dvo.relphot")

N_BINS, MAG_LO, BIN_WIDTH = 24, 12.0, 0.5  # repeatability bins (mag)


@dataclass
class PassResult:
    """What one pass over the database produced."""

    istat: np.ndarray  # (n_images, N_ISTAT) residual statistics at the pass's theta
    rep: np.ndarray  # (all/bright, raw/stored/solved, N_BINS, 3) repeatability sums
    rmap: np.ndarray  # (n_codes * MAP_GRID**2, 2) weighted residual sums per camera cell
    counts: np.ndarray  # stars used, stars rejected, measures clipped, measures used
    S: np.ndarray | None = None  # upper triangle only (see _kernels.upper_nonzeros)
    b: np.ndarray | None = None
    measures: int = 0
    extra: dict = field(default_factory=dict)


def partitions(db, model: Model) -> Iterator[Prepared]:
    """Prepared kernel inputs of every populated partition, one at a time."""
    photcodes, nsec = db.photcodes, db.nsecfilt
    for index in db.populated():
        part = db.partition(int(index), kinds=("measure",), columns={"measure": MEASURE_COLUMNS})
        if len(part.measure):
            yield prepare(part.measure, photcodes, model, nsec)


def kernel_options(model: Model, *, robust: bool, accumulate: bool) -> np.ndarray:
    """The ``opts`` array of :func:`dvo.relphot._kernels.partition_pass`."""
    o = model.options
    opts = np.zeros(kern.N_OPTS)
    opts[kern.O_ROBUST] = float(robust)
    opts[kern.O_CLIP] = o.clip
    opts[kern.O_CAUCHY] = o.cauchy
    opts[kern.O_STAR_CHI2] = o.star_chi2
    opts[kern.O_STAR_SCATTER] = o.star_scatter
    opts[kern.O_BRIGHT_VAR] = o.bright_error**2
    opts[kern.O_MAG_LO] = MAG_LO
    opts[kern.O_BIN_WIDTH] = BIN_WIDTH
    opts[kern.O_ACCUMULATE] = float(accumulate)
    opts[kern.O_USE_REF] = float(o.pin is Pin.REF)
    opts[kern.O_SYS_VAR] = o.sys_error**2
    return opts


def run_pass(
    source: Callable[[], Iterator[Prepared]],
    model: Model,
    theta: np.ndarray,
    fit: np.ndarray,
    igroup: np.ndarray,
    *,
    robust: bool,
    accumulate: bool,
) -> PassResult:
    """Run the kernel over every partition at parameters ``theta``.

    Parameters
    ----------
    source : callable
        Returns an iterator of :class:`Prepared` partitions (see :func:`partitions`).
    model : Model
    theta : ndarray
        Current image-level parameters.
    fit : ndarray of bool
        Images whose measurements enter the star means and the normal equations.
    igroup : ndarray of int
        Group of every image in the fit (-1 unknown); images outside learn theirs from stars.
    robust : bool
        Use Cauchy weights, clipping and the star chi2/scatter cuts.
    accumulate : bool
        Also build the reduced normal equations ``S``, ``b``.
    """
    n = model.n_params
    S = np.zeros((n, n)) if accumulate else np.zeros((1, 1))
    b = np.zeros(n)
    istat = np.zeros((model.n_images, kern.N_ISTAT))
    rep = np.zeros((2, 3, N_BINS, 3))
    rmap = np.zeros((len(model.flat_codes) * MAP_GRID**2, 2))
    counts = np.zeros(kern.N_COUNTS, np.int64)
    opts = kernel_options(model, robust=robust, accumulate=accumulate)
    izcol, fit = model.izcol(), np.ascontiguousarray(fit, bool)
    nmeas = 0
    for p in source():
        nmeas += p.nmeasures
        kern.partition_pass(
            p.starts, p.y, p.var, p.img, p.fcol, p.mcol, p.zst, p.isref,
            izcol, model.acol, model.kcol, model.xam1, fit, igroup, theta, opts,
            S, b, istat, rep, rmap, counts,
        )  # fmt: skip
    out = PassResult(istat, rep, rmap, counts, measures=nmeas)
    if accumulate:
        out.S, out.b = S, b
    return out
