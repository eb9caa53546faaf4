"""What relphot did, as a JSON-able report plus PNG plots (matplotlib imported lazily, Agg).

Plots: zero point against time, the residual map across the camera (mean residual per chip
cell, chips placed by their GPC1 XY number), and the repeatability of bright stars against
magnitude before (raw and as stored) and after the calibration, with the noise floor.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .accumulate import BIN_WIDTH, MAG_LO, N_BINS
from .model import MAP_GRID
from .run import Solution

__all__ = ["RelphotReport", "build_report", "write_plots"]

STATES = ("raw", "before", "after")


@dataclass
class RelphotReport:
    """Summary of a relphot run (all numbers in mag unless named otherwise)."""

    dry_run: bool
    written: bool
    options: dict
    seconds: float
    images: dict
    groups: list[dict]
    iterations: list[dict]
    repeatability: dict
    flat: dict
    partitions_written: int = 0
    files: list[str] = field(default_factory=list)
    solution: Solution | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        """Everything but the in-memory solution, JSON-ready."""
        d = asdict(self) if self.solution is None else {
            k: v for k, v in self.__dict__.items() if k != "solution"
        }  # fmt: skip
        d.pop("solution", None)
        return json.loads(json.dumps(d, default=_jsonable))

    def summary(self) -> str:
        """A few lines for the CLI."""
        im, rep = self.images, self.repeatability["bright"]
        lines = [
            f"relphot: {im['calibrated']} of {im['total']} images calibrated "
            f"({im['poor']} poor, {im['few']} too few stars, {im['uncalibrated']} uncalibrated) "
            f"in {len(self.iterations)} iterations, {self.seconds:.1f} s",
            f"groups: {len(self.groups)} ({sum(g['anchored'] for g in self.groups)} anchored)",
            "bright-star repeatability (mmag): raw {raw:.1f}, before {before:.1f}, "
            "after {after:.1f}, noise floor {floor:.1f}".format(
                **{k: 1e3 * v for k, v in rep.items()}
            ),
            "database updated" if self.written else "dry run: database unchanged",
        ]
        return "\n".join(lines)

    def save(self, folder: str | Path) -> list[Path]:
        """Write ``relphot.json`` and the PNG plots into ``folder``; returns the paths."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "relphot.json"
        paths = [path]
        if self.solution is not None:
            paths += write_plots(self, folder)
        self.files = [str(p) for p in paths]
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return paths


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _repeatability(rep: np.ndarray) -> dict:
    """Per-magnitude rms of every star, and the totals over bright stars (``bright``)."""
    every, bright = rep
    with np.errstate(invalid="ignore", divide="ignore"):
        rms = np.sqrt(every[:, :, 0] / every[:, :, 1])
        floor = np.sqrt(every[2, :, 2] / every[2, :, 1])
        tot = bright.sum(axis=1)
        summary = {s: float(np.sqrt(tot[i, 0] / tot[i, 1])) for i, s in enumerate(STATES)}
        summary["floor"] = float(np.sqrt(tot[2, 2] / tot[2, 1]))
    out = {"mag": (MAG_LO + BIN_WIDTH * (np.arange(N_BINS) + 0.5)).tolist()}
    for i, s in enumerate(STATES):
        out[s] = rms[i].tolist()
    out["floor"] = floor.tolist()
    out["n"] = every[2, :, 1].astype(int).tolist()
    out["bright"] = {k: (v if np.isfinite(v) else None) for k, v in summary.items()}
    return out


def build_report(sol: Solution, *, dry_run: bool, written: bool) -> RelphotReport:
    """The report of a solution."""
    f = sol.flags
    from dvo.flags import ImageFlags

    images = {
        "total": sol.model.n_images,
        "calibrated": int(sol.calibrated.sum()),
        "poor": int(((f & ImageFlags.PHOTOM_POOR) != 0).sum()),
        "few": int(((f & ImageFlags.PHOTOM_FEW) != 0).sum()),
        "uncalibrated": int((~sol.calibrated).sum()),
    }
    groups = [
        {"images": int(n), "anchored": bool(a)}
        for n, a in zip(sol.groups.sizes, sol.groups.anchored, strict=True)
    ]
    flat = {int(c): sol.flat()[i].tolist() for i, c in enumerate(sol.model.flat_codes)}
    opts = {
        k: (v.value if hasattr(v, "value") else v) for k, v in asdict(sol.model.options).items()
    }
    return RelphotReport(
        dry_run=dry_run,
        written=written,
        options=opts,
        seconds=sol.seconds,
        images=images,
        groups=groups,
        iterations=sol.history,
        repeatability=_repeatability(sol.final.rep),
        flat=flat if sol.model.options.flat else {},
        solution=sol,
    )


def _camera_map(sol: Solution) -> np.ndarray:
    """Mean residual (mmag) on an 8x8 chip mosaic of MAP_GRID x MAP_GRID cells per chip."""
    g = MAP_GRID
    sums = np.zeros((8 * g, 8 * g, 2))
    rmap = sol.final.rmap.reshape(len(sol.model.flat_codes), g, g, 2)
    for i, code in enumerate(sol.model.flat_codes):
        xy = int(code) % 100
        cx, cy = xy // 10, xy % 10
        if cx < 8 and cy < 8:
            sums[cy * g : (cy + 1) * g, cx * g : (cx + 1) * g] += rmap[i]
    with np.errstate(invalid="ignore", divide="ignore"):
        return 1e3 * sums[:, :, 0] / sums[:, :, 1]


def write_plots(report: RelphotReport, folder: Path) -> list[Path]:
    """Zero point against time, camera residual map, repeatability against magnitude."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sol = report.solution
    out = []
    fig, ax = plt.subplots(figsize=(7, 4))
    day0 = float(np.floor(sol.mjd.min())) if len(sol.mjd) else 0.0
    mjd = sol.mjd - day0
    cal = sol.calibrated
    poor = (sol.flags & 2) != 0
    ax.plot(mjd[cal & ~poor], sol.mcal[cal & ~poor], ".", ms=2, label="calibrated")
    ax.plot(mjd[cal & poor], sol.mcal[cal & poor], "r.", ms=3, label="poor (clouds)")
    ax.set(xlabel=f"MJD - {day0:.0f}", ylabel="MCAL (mag)", title="relphot zero points")
    ax.legend()
    out.append(_save(fig, folder / "zeropoints.png", plt))
    fig, ax = plt.subplots(figsize=(5.5, 5))
    im = ax.imshow(_camera_map(sol), origin="lower", cmap="RdBu_r", vmin=-10, vmax=10)
    fig.colorbar(im, label="mean residual (mmag)")
    ax.set(title="residuals across the camera (chip XY)", xticks=[], yticks=[])
    out.append(_save(fig, folder / "residual_map.png", plt))
    fig, ax = plt.subplots(figsize=(7, 4))
    rep = report.repeatability
    for s in (*STATES, "floor"):
        ax.semilogy(rep["mag"], 1e3 * np.array(rep[s], float), "o-" if s != "floor" else "k--",
                    ms=3, label=s)  # fmt: skip
    ax.set(xlabel="mag", ylabel="rms about star mean (mmag)", title="repeatability")
    ax.legend()
    out.append(_save(fig, folder / "repeatability.png", plt))
    return out


def _save(fig, path: Path, plt) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
