"""All-sky picture of the partitions at one depth (matplotlib, Agg, imported lazily)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from dvo.skytable.table import Scheme, SkyTable

from dvo.errors import SkyTableError

__all__ = ["plot_partitions", "outlines"]

_STEPS = 16
_MAX_OUTLINES = 20_000


def _box_outlines(st: SkyTable, rows: np.ndarray) -> np.ndarray:
    """Closed outlines (n, 4 * steps + 1, 2) of boxes as (ra, dec), edges sampled."""
    t = np.linspace(0.0, 1.0, _STEPS, endpoint=False)
    r0, r1 = st.r_min[rows, None], st.r_max[rows, None]
    d0, d1 = st.d_min[rows, None], st.d_max[rows, None]
    ra = np.concatenate(
        [r0 + (r1 - r0) * t, r1 + 0 * t, r1 - (r1 - r0) * t, r0 + 0 * t, r0], axis=1
    )
    dec = np.concatenate(
        [d0 + 0 * t, d0 + (d1 - d0) * t, d1 + 0 * t, d1 - (d1 - d0) * t, d0], axis=1
    )
    return np.stack([ra, dec], axis=-1)


def _pixel_outlines(st: SkyTable, rows: np.ndarray) -> np.ndarray:
    import healpy as hp

    order = int(st.depth[rows[0]])
    vec = hp.boundaries(2**order, st.hpx_pix[rows], step=2, nest=True)
    vec = vec.reshape(len(rows), 3, -1)
    vec = np.concatenate([vec, vec[:, :, :1]], axis=2)
    ra = np.degrees(np.arctan2(vec[:, 1], vec[:, 0])) % 360.0
    dec = np.degrees(np.arcsin(np.clip(vec[:, 2], -1, 1)))
    return np.stack([ra, dec], axis=-1)


def mollweide(ra, dec) -> tuple[np.ndarray, np.ndarray]:
    """Mollweide x, y of (ra, dec) in degrees, RA increasing to the left, centred on RA 180.

    Examples
    --------
    >>> [round(float(v), 6) for v in mollweide(180.0, 90.0)]
    [0.0, 1.414214]
    """
    lam = np.radians(180.0 - np.asarray(ra, dtype=np.float64))
    phi = np.radians(np.asarray(dec, dtype=np.float64))
    theta = phi.copy()
    target = np.pi * np.sin(phi)
    for _ in range(30):  # Newton on 2t + sin 2t = pi sin(phi); fixed count, vectorised
        f = 2 * theta + np.sin(2 * theta) - target
        d = 2 + 2 * np.cos(2 * theta)
        theta = np.where(d > 1e-12, theta - f / np.where(d > 1e-12, d, 1.0), theta)
    return 2 * np.sqrt(2) / np.pi * lam * np.cos(theta), np.sqrt(2) * np.sin(theta)


def outlines(st: SkyTable, level: int) -> list[np.ndarray]:
    """Outlines (polylines, (k, 2) arrays) of the rows at depth ``level``, Mollweide x/y.

    Outlines crossing the RA seam are cut into the segments on either side.
    """
    rows = np.flatnonzero(st.depth == level)
    if rows.size == 0:
        raise SkyTableError(f"no rows at level {level} (depths {st.depth.min()}..{st.depth.max()})")
    outline = _pixel_outlines if st.scheme is Scheme.HEALPIX else _box_outlines
    path = outline(st, rows)
    ra = np.where(path[..., 0] >= 360.0, 360.0 - 1e-9, path[..., 0])
    x, y = mollweide(ra, path[..., 1])
    xy = np.stack([x, y], axis=-1)
    jump = np.abs(np.diff(x, axis=1)) > 2.0  # across the RA seam
    whole = ~jump.any(axis=1)
    seg = np.stack([xy[~whole, :-1], xy[~whole, 1:]], axis=2)[~jump[~whole]]
    return list(xy[whole]) + list(seg)


def _edge_raster(st: SkyTable, level: int, width: int = 2400) -> np.ndarray:
    """Image (rows, cols) that is 1 where neighbouring pixels lie in different boxes."""
    h = width // 2
    x, y = np.meshgrid(np.linspace(-2.83, 2.83, width), np.linspace(-1.415, 1.415, h))
    theta = np.arcsin(np.clip(y / np.sqrt(2), -1, 1))
    dec = np.degrees(np.arcsin(np.clip((2 * theta + np.sin(2 * theta)) / np.pi, -1, 1)))
    lam = np.pi * x / (2 * np.sqrt(2) * np.maximum(np.cos(theta), 1e-12))
    inside = np.abs(lam) <= np.pi
    ra = np.mod(180.0 - np.degrees(np.where(inside, lam, 0.0)), 360.0)
    idx = st.lookup(ra.ravel(), dec.ravel(), level=level).reshape(ra.shape)
    edge = np.zeros(idx.shape, dtype=float)
    edge[:, 1:] += idx[:, 1:] != idx[:, :-1]
    edge[1:, :] += idx[1:, :] != idx[:-1, :]
    return np.where(inside, np.minimum(edge, 1.0), np.nan)


def plot_partitions(st: SkyTable, level: int, path: str | Path, *, dpi: int = 120) -> Path:
    """Draw the rows at depth ``level`` on a Mollweide all-sky map (PNG); returns the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection

    n = int(np.count_nonzero(st.depth == level))
    if n == 0:
        raise SkyTableError(f"no rows at level {level} (depths {st.depth.min()}..{st.depth.max()})")
    fig, ax = plt.subplots(figsize=(12, 6.5))
    if n <= _MAX_OUTLINES:
        ax.add_collection(LineCollection(outlines(st, level), linewidths=0.6, colors="tab:blue"))
    else:  # too many outlines to stroke: draw where the lookup changes, pixel by pixel
        ax.imshow(
            _edge_raster(st, level),
            extent=(-2.83, 2.83, -1.415, 1.415),
            origin="lower",
            cmap="Blues",
            interpolation="nearest",
        )
    t = np.linspace(-90, 90, 181)
    for ra in (0.0, 360.0 - 1e-9):
        ax.plot(*mollweide(np.full_like(t, ra), t), color="k", lw=1)
    for ra in range(0, 360, 60):
        x, y = mollweide(ra, 0.0)
        ax.annotate(f"{ra}", (float(x), float(y)), fontsize=8, color="0.3")
    ax.set_xlim(-2.9, 2.9)
    ax.set_ylim(-1.5, 1.5)
    ax.set_aspect("equal")
    ax.axis("off")
    ax.set_title(
        f"dvo SkyTable {st.scheme.value}, depth {level}: {n} boxes (Mollweide, RA 180 centre)"
    )
    path = Path(path)
    try:
        fig.savefig(path, dpi=dpi)
    except OSError as exc:
        raise SkyTableError(f"{path}: cannot write picture ({exc})") from exc
    finally:
        plt.close(fig)
    return path
