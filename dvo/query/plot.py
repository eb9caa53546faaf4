"""Plots for the query commands: a lightcurve per filter, the object density on the sky.

matplotlib is imported only here, lazily, with the Agg backend (no display needed).
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_lightcurve", "plot_density", "density_summary"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_lightcurve(lc, path, *, title: str | None = None) -> None:
    """Magnitude against MJD with error bars, one colour per filter (brighter is up)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    filters = np.asarray(lc["filter"]).astype(str)
    for name in np.unique(filters):
        sel = filters == name
        ax.errorbar(
            np.asarray(lc["mjd"])[sel],
            np.asarray(lc["mag"])[sel],
            yerr=np.asarray(lc["mag_err"])[sel],
            fmt="o",
            ms=4,
            capsize=2,
            label=name or "?",
        )
    ax.invert_yaxis()
    ax.ticklabel_format(axis="x", style="plain", useOffset=False)
    ax.set_xlabel("MJD")
    ax.set_ylabel("magnitude")
    ax.set_title(title or (f"object {int(lc['obj_id'][0])}" if len(lc) else "no measurements"))
    if len(lc):
        ax.legend(title="filter")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def density_summary(db) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ra, dec, objects per square degree) at the centre of each populated partition."""
    st = db.stats()
    st = st[st["NAVERAGE"] > 0]
    index = st["INDEX"].astype(np.int64)
    ra, dec = db.skytable.centre(index)
    return ra, dec, st["NAVERAGE"] / np.maximum(db.skytable.area(index), 1e-12)


def plot_density(db, path) -> None:
    """All-sky Mollweide map of object density (per partition, from the statistics)."""
    plt = _pyplot()
    ra, dec, density = density_summary(db)
    fig = plt.figure(figsize=(10, 5.5))
    ax = fig.add_subplot(111, projection="mollweide")
    x = -np.radians(np.where(ra > 180, ra - 360, ra))  # RA increases to the left
    sc = ax.scatter(
        x, np.radians(dec), c=np.log10(np.maximum(density, 1e-3)), s=6, cmap="viridis", marker="s"
    )
    ax.set_xticklabels([f"{int(t)}°" for t in (150, 120, 90, 60, 30, 0, 330, 300, 270, 240, 210)])
    ax.grid(True, alpha=0.3)
    fig.colorbar(sc, ax=ax, orientation="horizontal", pad=0.06, label="log10 objects / deg²")
    ax.set_title(f"{db.catdir.name}: {int(db.stats()['NAVERAGE'].sum())} objects")
    fig.savefig(path, dpi=100)
    plt.close(fig)
