"""relastro's report: residual statistics gathered in the final pass, JSON and PNG plots.

Residuals are ``model - measure`` per axis for the measures kept by their object's fit:
"before" without chip corrections (the raw chip WCS), "after" with them, both against the
final object models. "Bright" measures have a per-axis error of at most ``BRIGHT_ERR``.
Plots (matplotlib Agg, imported only when writing): the mean residual vector across the
camera (chips at their GPC1 XY position, 4 x 4 cells each) before and after, and the RMS
residual against instrumental magnitude.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dvo.photcodes import Photcodes

from .objects import ObjectFit
from .workset import ChipTable

__all__ = ["ReportAccumulator", "ReportSums", "report_sums", "chip_slots", "BRIGHT_ERR"]

BRIGHT_ERR = 0.02  # arcsec, per-axis error (centroid with systematic floor) of "bright"
CELLS = 4
SLOTS = 64
MAG_BINS = np.arange(10.0, 30.01, 0.5)
_XY = re.compile(r"XY(\d)(\d)")


def chip_slots(chips: ChipTable, photcodes: Photcodes) -> np.ndarray:
    """Camera slot (8 * y + x of XYxy) per chip; chips without an XY name share slots."""
    slots = np.zeros(len(chips), np.int64)
    for code in np.unique(chips.photcode).tolist():
        match = _XY.search(photcodes.name(code))
        slot = 8 * int(match.group(2)) + int(match.group(1)) if match else code % SLOTS
        slots[chips.photcode == code] = slot
    return slots


@dataclass
class ReportSums:
    """The report's sums over some measures (one partition, or all of them)."""

    field: np.ndarray  # (before/after, axis, cell) residual sums
    nfield: np.ndarray  # (cell,)
    mag2: np.ndarray  # (before/after, magnitude bin) sums of squares
    nmag: np.ndarray  # (magnitude bin,)
    tot: np.ndarray  # (all/bright, before/after) sums of squares
    ntot: np.ndarray  # (all/bright,)

    @classmethod
    def zeros(cls) -> ReportSums:
        """Nothing summed yet."""
        ncell, nbin = SLOTS * CELLS * CELLS, len(MAG_BINS) - 1
        return cls(np.zeros((2, 2, ncell)), np.zeros(ncell), np.zeros((2, nbin)),
                   np.zeros(nbin), np.zeros((2, 2)), np.zeros(2))  # fmt: skip

    def merge(self, other: ReportSums) -> None:
        """Add another's sums into these."""
        for name in ("field", "nfield", "mag2", "nmag", "tot", "ntot"):
            getattr(self, name).__iadd__(getattr(other, name))


def report_sums(ws: dict, fit: ObjectFit, used: np.ndarray, slot: np.ndarray) -> ReportSums:
    """One partition's final residuals (measures used for the chips); ``slot`` per chip."""
    out = ReportSums.zeros()
    rx, ry = fit.model_x - ws["xi"], fit.model_y - ws["eta"]
    res = np.stack([np.stack([rx, ry]), np.stack([rx - fit.corr_x, ry - fit.corr_y])])
    res = res[:, :, used]
    iu = np.clip(((ws["u"][used] + 1) / 2 * CELLS).astype(np.int64), 0, CELLS - 1)
    iv = np.clip(((ws["v"][used] + 1) / 2 * CELLS).astype(np.int64), 0, CELLS - 1)
    cell = (slot[ws["chip"][used]] * CELLS + iv) * CELLS + iu
    n = out.nfield.size
    for i in range(2):
        for a in range(2):
            out.field[i, a] = np.bincount(cell, res[i, a], minlength=n)
    out.nfield[:] = np.bincount(cell, minlength=n)
    mbin = np.digitize(ws["mag"][used], MAG_BINS) - 1
    inside = (mbin >= 0) & (mbin < len(out.nmag))
    bright = ws["sx"][used] <= BRIGHT_ERR
    for i in range(2):
        r2 = (res[i] ** 2).sum(axis=0)
        out.mag2[i] = np.bincount(mbin[inside], r2[inside], minlength=len(out.nmag))
        out.tot[0, i] = r2.sum()
        out.tot[1, i] = r2[bright].sum()
    out.nmag[:] = np.bincount(mbin[inside], minlength=len(out.nmag))
    out.ntot[:] = [used.sum(), bright.sum()]
    return out


class ReportAccumulator:
    """Sums over the final pass for the report (camera field, magnitude trend, totals),
    partitions added in SkyTable order."""

    def __init__(self, chips: ChipTable, photcodes: Photcodes) -> None:
        self.slot = chip_slots(chips, photcodes)
        self.sums = ReportSums.zeros()

    def add(self, ws: dict, fit: ObjectFit, used: np.ndarray, chips: ChipTable) -> None:
        """Add one partition's final residuals (measures used for the chips)."""
        self.merge(report_sums(ws, fit, used, self.slot))

    def merge(self, sums: ReportSums) -> None:
        """Add one partition's :class:`ReportSums`."""
        self.sums.merge(sums)

    def summary(self) -> dict:
        """Per-axis RMS (mas) before/after, for all kept measures and bright ones."""
        out = {}
        for j, name in enumerate(("all", "bright")):
            n = max(self.sums.ntot[j], 1) * 2
            out[name] = {
                "n": int(self.sums.ntot[j]),
                "before_mas": float(np.sqrt(self.sums.tot[j, 0] / n) * 1e3),
                "after_mas": float(np.sqrt(self.sums.tot[j, 1] / n) * 1e3),
            }
        with np.errstate(invalid="ignore", divide="ignore"):
            rms = np.sqrt(self.sums.mag2 / (2 * self.sums.nmag)) * 1e3
        centres = (MAG_BINS[:-1] + MAG_BINS[1:]) / 2
        has = self.sums.nmag > 0
        out["by_mag"] = {
            "mag": centres[has].tolist(),
            "n": self.sums.nmag[has].astype(int).tolist(),
            "before_mas": rms[0, has].tolist(),
            "after_mas": rms[1, has].tolist(),
        }
        return out

    def write(self, outdir: Path, report: dict) -> list[str]:
        """Write relastro.json and the PNG plots; returns the file names."""
        outdir.mkdir(parents=True, exist_ok=True)
        names = ["relastro.json", "field_before.png", "field_after.png", "residual_mag.png"]
        (outdir / names[0]).write_text(json.dumps(report, indent=2, default=float))
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        for i, name in enumerate(names[1:3]):
            self._plot_field(plt, i, outdir / name)
        self._plot_mag(plt, outdir / names[3])
        return names

    def _plot_field(self, plt, which: int, path: Path) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = self.sums.field[which] / self.sums.nfield * 1e3
        cell = np.arange(self.sums.nfield.size)
        slot, rest = np.divmod(cell, CELLS * CELLS)
        iv, iu = np.divmod(rest, CELLS)
        x = slot % 8 + (iu + 0.5) / CELLS
        y = slot // 8 + (iv + 0.5) / CELLS
        has = self.sums.nfield > 0
        fig, ax = plt.subplots(figsize=(7, 7))
        q = ax.quiver(x[has], y[has], mean[0, has], mean[1, has], angles="xy")
        ax.quiverkey(q, 0.85, 1.02, 100.0, "100 mas", labelpos="E")
        ax.set_title(f"mean residual per cell, {'before' if which == 0 else 'after'}")
        ax.set_xlabel("chip X (XYxy)")
        ax.set_ylabel("chip Y")
        ax.set_aspect("equal")
        fig.savefig(path, dpi=90)
        plt.close(fig)

    def _plot_mag(self, plt, path: Path) -> None:
        s = self.summary()["by_mag"]
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.semilogy(s["mag"], s["before_mas"], "o-", label="before")
        ax.semilogy(s["mag"], s["after_mas"], "o-", label="after")
        ax.set_xlabel("instrumental magnitude (MAG)")
        ax.set_ylabel("RMS residual per axis (mas)")
        ax.legend()
        fig.savefig(path, dpi=90)
        plt.close(fig)
