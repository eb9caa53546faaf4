"""Per-chip fits: accumulate normal equations over partitions, solve, clip scale, pin the frame.

A chip's correction is fitted to ``model - raw`` of the measures of well-measured objects
(at least ``min_object_meas`` kept measures) that survived the objects' clipping; the
polynomial order follows :func:`dvo.relastro.model.order_for_count` on the number of such
stars. A chip with no usable star keeps no correction and is flagged ASTROM_FEW.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._kernels import NTERM_MAX
from .model import nterms, order_for_count, sky_to_offsets
from .objects import ObjectFit
from .partials import ChipSums, chip_sums

__all__ = ["ChipAccumulator", "ChipSolution", "solve", "pin_frame", "max_change"]

RIDGE = 1e-9


@dataclass
class ChipSolution:
    """Coefficients (n, 2, 10) arcsec, order (-1: none) and number of stars per chip."""

    coeff: np.ndarray
    order: np.ndarray
    nstar: np.ndarray


@dataclass
class ChipAccumulator:
    """Normal equations and residual sums per chip, summed over the partitions of one pass
    (each partition's compact sums added in the order given: SkyTable order)."""

    nchip: int
    min_object_meas: int = 3
    ata: np.ndarray = field(init=False)
    atb: np.ndarray = field(init=False)
    nstar: np.ndarray = field(init=False)
    chi2: np.ndarray = field(init=False)
    nres: np.ndarray = field(init=False)
    sum2: np.ndarray = field(init=False)  # (n, 2) sum of squared residuals, arcsec^2

    def __post_init__(self) -> None:
        n = self.nchip
        self.ata = np.zeros((n, 2, NTERM_MAX, NTERM_MAX))
        self.atb = np.zeros((n, 2, NTERM_MAX))
        self.nstar = np.zeros(n, np.int64)
        self.chi2 = np.zeros(n)
        self.nres = np.zeros(n, np.int64)
        self.sum2 = np.zeros((n, 2))

    def add(self, ws: dict, fit: ObjectFit) -> np.ndarray:
        """Add one partition; returns the per-measure mask of measures used for the chips."""
        sums, use = chip_sums(ws, fit, self.min_object_meas)
        self.add_sums(sums)
        return use

    def add_sums(self, s: ChipSums) -> None:
        """Add one partition's compact sums (:func:`dvo.relastro.partials.chip_sums`)."""
        c = s.chips  # unique: each chip's entries get exactly one addition
        self.ata[c] += s.ata
        self.atb[c] += s.atb
        self.nstar[c] += s.nstar
        self.chi2[c] += s.chi2
        self.nres[c] += s.nres
        self.sum2[c] += s.sum2

    def merge(self, other: ChipAccumulator) -> ChipAccumulator:
        """Add another accumulator's sums into this one; returns self."""
        for name in ("ata", "atb", "nstar", "chi2", "nres", "sum2"):
            getattr(self, name).__iadd__(getattr(other, name))
        return self

    def scale(self) -> np.ndarray:
        """Per-chip error inflation for the next pass: reduced chi, at least 1."""
        with np.errstate(invalid="ignore", divide="ignore"):
            s = np.sqrt(self.chi2 / (2 * self.nres))
        return np.where(np.isfinite(s), np.maximum(s, 1.0), 1.0)

    def rms(self) -> np.ndarray:
        """(n, 2) RMS residual per chip and axis (arcsec) with the corrections of this pass."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(self.sum2 / self.nres[:, None])


def solve(acc: ChipAccumulator, order_max: int) -> ChipSolution:
    """Solve every chip's polynomial, batched by number of terms."""
    n = acc.nchip
    order = order_for_count(acc.nstar, order_max)
    nt = nterms(order)
    coeff = np.zeros((n, 2, NTERM_MAX))
    upper = np.triu(np.ones((NTERM_MAX, NTERM_MAX), bool), 1)
    for k in np.unique(nt[nt > 0]):
        rows = np.flatnonzero(nt == k)
        a = acc.ata[rows][:, :, :k, :k].copy()
        a = np.where(upper[:k, :k], a, np.swapaxes(a, -1, -2))
        tr = np.trace(a, axis1=-2, axis2=-1)[..., None, None]
        a += RIDGE * tr * np.eye(k) / k
        b = acc.atb[rows][:, :, :k, None]
        coeff[rows, :, :k] = np.linalg.solve(a, b)[..., 0]
    return ChipSolution(coeff, order, acc.nstar.copy())


def pin_frame(sol: ChipSolution, center: np.ndarray) -> tuple[np.ndarray, float]:
    """Remove the free frame (mean offset and rotation of the chip corrections) in place.

    Without reference objects the corrections are defined only up to a common offset and a
    rotation about the field centre. Returns (offset (2,) arcsec, rotation in arcsec at 1 deg
    from the centre) that were removed.
    """
    w = (sol.order >= 0).astype(np.float64) * sol.nstar
    if w.sum() <= 0:
        return np.zeros(2), 0.0
    c0 = sol.coeff[:, :, 0]
    offset = (w[:, None] * c0).sum(axis=0) / w.sum()
    c0 -= offset
    ra0, dec0 = (np.average(center[:, i], weights=w) for i in (0, 1))
    gx, gy = sky_to_offsets(center[:, 0], center[:, 1], ra0, dec0)
    den = (w * (gx**2 + gy**2)).sum()
    omega = (w * (gx * c0[:, 1] - gy * c0[:, 0])).sum() / den if den > 0 else 0.0
    c0[:, 0] += omega * gy
    c0[:, 1] -= omega * gx
    sol.coeff[w <= 0] = 0.0
    return offset, float(omega * 3600.0)


def max_change(dcoeff: np.ndarray, acc: ChipAccumulator) -> float:
    """Largest RMS change of a chip's correction (arcsec) over its stars, either axis.

    The weighted mean of ``(basis . dc)**2`` over a chip's stars is ``dc^T A dc / A[0, 0]``
    with A the chip's normal matrix (term 0 is 1).
    """
    if len(dcoeff) == 0:
        return 0.0
    upper = np.triu(np.ones((NTERM_MAX, NTERM_MAX), bool), 1)
    a = np.where(upper, acc.ata, np.swapaxes(acc.ata, -1, -2))
    q = np.einsum("nak,nakm,nam->na", dcoeff, a, dcoeff)
    with np.errstate(invalid="ignore", divide="ignore"):
        ms = np.where(a[:, :, 0, 0] > 0, q / a[:, :, 0, 0], 0.0)
    return float(np.sqrt(max(ms.max(), 0.0)))
