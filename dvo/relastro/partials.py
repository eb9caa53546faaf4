"""One partition's share of a relastro pass, computed where the partition lives.

Every pass fits the objects of each partition with the current chip corrections and sums
their residuals into per-chip normal equations. :func:`chip_sums` keeps one partition's sums
compact (only the chips it touches), and :class:`~dvo.relastro.chips.ChipAccumulator` adds
them in SkyTable order, so a pass gives bitwise the same chips whether its partitions were
summed here or on partition hosts. The final pass adds the report's sums
(:class:`~dvo.relastro.report.ReportSums`) and the object model counts
(:func:`final_partition`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._kernels import NTERM_MAX, accumulate_chips
from .objects import ObjectFit, ObjectOptions, choose_models, fit

__all__ = [
    "ChipSums",
    "chip_sums",
    "pass_partition",
    "workset_counts",
    "FinalSums",
    "final_fits",
    "final_partition",
]


@dataclass
class ChipSums:
    """One partition's per-chip normal equations and residual sums (chips it touches)."""

    chips: np.ndarray  # (nc,) chip indices, increasing
    ata: np.ndarray  # (nc, 2, NTERM_MAX, NTERM_MAX), upper triangles
    atb: np.ndarray  # (nc, 2, NTERM_MAX)
    nstar: np.ndarray  # (nc,) int64
    chi2: np.ndarray  # (nc,)
    nres: np.ndarray  # (nc,) int64
    sum2: np.ndarray  # (nc, 2) arcsec^2

    @classmethod
    def empty(cls) -> ChipSums:
        """No chip touched."""
        z = np.zeros
        return cls(z(0, np.int64), z((0, 2, NTERM_MAX, NTERM_MAX)), z((0, 2, NTERM_MAX)),
                   z(0, np.int64), z(0), z(0, np.int64), z((0, 2)))  # fmt: skip


def chip_sums(ws: dict, f: ObjectFit, min_object_meas: int = 3) -> tuple[ChipSums, np.ndarray]:
    """The chip sums of one partition's fit, and the mask of measures used for the chips.

    A measure counts when its object kept at least ``min_object_meas`` measures and the
    measure itself survived the object's clipping.
    """
    chip = ws["chip"].astype(np.int64)
    good = f.nfit[ws["obj"]] >= min_object_meas
    use = f.used & good & np.isfinite(f.model_x)
    dx, dy = f.model_x - ws["xi"] - f.corr_x, f.model_y - ws["eta"] - f.corr_y
    wx, wy = ws["sx"] ** -2, ws["sy"] ** -2
    rx, ry = f.corr_x + dx, f.corr_y + dy
    chips = np.unique(chip[use])
    nc = len(chips)
    local = np.full(len(chip), -1, np.int64)
    local[use] = np.searchsorted(chips, chip[use])
    ata = np.zeros((nc, 2, NTERM_MAX, NTERM_MAX))
    atb = np.zeros((nc, 2, NTERM_MAX))
    accumulate_chips(local, ws["u"], ws["v"], rx, ry, wx, wy, use, ata, atb)
    c = local[use]
    chi = (dx[use] / ws["sx"][use]) ** 2 + (dy[use] / ws["sy"][use]) ** 2
    sum2 = np.stack(
        [np.bincount(c, dx[use] ** 2, minlength=nc), np.bincount(c, dy[use] ** 2, minlength=nc)],
        axis=1,
    ).reshape(nc, 2)
    n = np.bincount(c, minlength=nc).astype(np.int64)
    sums = ChipSums(chips, ata, atb, n, np.bincount(c, chi, minlength=nc), n.copy(), sum2)
    return sums, use


def pass_partition(ws: dict, coeff, scale, opts: ObjectOptions, clip: bool) -> ChipSums:
    """One iteration over one partition's working set: fit its objects, sum its chips."""
    return chip_sums(ws, fit(ws, coeff, scale, choose_models(ws, opts), opts, clip=clip))[0]


def workset_counts(ws: dict | None) -> tuple[int, int, int]:
    """(measures, objects, objects with a reference) of a working set."""
    if ws is None:
        return 0, 0, 0
    return len(ws["obj"]), len(ws["ave_row"]), int((ws["ref"][:, 3] > 0).sum())


def final_fits(ws: dict, coeff, scale, opts: ObjectOptions) -> tuple[ObjectFit, dict]:
    """The final object fits and the chi2 of each model order (for Average CHISQ_*)."""
    npar = choose_models(ws, opts)
    f = fit(ws, coeff, scale, npar, opts)
    chi2s = {5: (f.chi2, f.nfit)}
    for k in (2, 4):
        low = np.minimum(npar, k)
        g = f if np.array_equal(low, npar) else fit(ws, coeff, scale, low, opts)
        chi2s[k] = (g.chi2, g.nfit)
    return f, chi2s


@dataclass
class FinalSums:
    """One partition's share of the final pass."""

    chips: ChipSums
    report: object  # ReportSums
    models: np.ndarray  # (3,) objects fitted with a position, + proper motion, + parallax


def final_partition(ws: dict, coeff, scale, opts: ObjectOptions, slot: np.ndarray):
    """The final pass over one partition: ``(FinalSums, fit, chi2s, used)``.

    ``slot`` is each chip's camera slot (:func:`dvo.relastro.report.chip_slots`).
    """
    from .report import report_sums

    f, chi2s = final_fits(ws, coeff, scale, opts)
    sums, used = chip_sums(ws, f)
    ok = f.nfit > 0
    models = np.array([int((ok & (f.npar == k)).sum()) for k in (2, 4, 5)], np.int64)
    return FinalSums(sums, report_sums(ws, f, used, slot), models), f, chi2s, used
