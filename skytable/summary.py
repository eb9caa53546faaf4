"""Text summary of a SkyTable: rows and partitions per depth and per Dec band, area spread."""

from __future__ import annotations

import numpy as np
from dvo.skytable.table import Scheme, SkyTable

__all__ = ["summarize", "format_summary", "band_of"]


def band_of(st: SkyTable, rows: np.ndarray) -> np.ndarray:
    """7.5-deg Dec band (0 = -90..-82.5 .. 23) of each row's centre (GSC: its depth-1 ancestor).

    Examples
    --------
    >>> st = SkyTable.gsc(2)
    >>> band_of(st, np.array([st.index_of("n0000/z367")])).tolist()
    [12]
    """
    rows = np.asarray(rows, dtype=np.int64)
    if st.scheme is Scheme.GSC:
        node = rows.copy()
        for _ in range(int(st.depth.max())):
            node = np.where(st.depth[node] > 1, st.parent[node], node)
        return np.where(st.depth[node] == 1, node - 1, -1)
    _, dec = st.centre(rows)
    return np.minimum(((dec + 90.0) // 7.5).astype(np.int64), 23)


def summarize(st: SkyTable) -> dict:
    """Counts per depth and per band, and the area spread of the partitions.

    Examples
    --------
    >>> s = summarize(SkyTable.gsc(2))
    >>> s["partitions"], s["rows_per_depth"]
    (734, {0: 1, 1: 24, 2: 734})
    """
    parts = st.partitions
    area = st.area(parts)
    depth_rows = np.bincount(st.depth)
    depth_parts = np.bincount(st.depth[parts], minlength=depth_rows.size)
    bands = np.bincount(band_of(st, parts), minlength=24)
    return {
        "scheme": st.scheme.value,
        "level": st.level,
        "rows": len(st),
        "partitions": int(parts.size),
        "rows_per_depth": {d: int(n) for d, n in enumerate(depth_rows) if n},
        "partitions_per_depth": {d: int(n) for d, n in enumerate(depth_parts) if n},
        "partitions_per_band": bands.tolist(),
        "area_min": float(area.min()),
        "area_median": float(np.median(area)),
        "area_max": float(area.max()),
        "hosts": sorted(set(np.unique(st.host_id[parts]).tolist())),
    }


def _band_label(b: int) -> str:
    lo = -90.0 + 7.5 * b
    edge = lo if lo >= 0 else -(lo + 7.5)
    return f"{'n' if lo >= 0 else 's'}{int(edge):02d}{int(round(edge % 1 * 60)):02d}"


def format_summary(st: SkyTable) -> str:
    """The summary as printable lines (what ``dvo skytable show`` prints)."""
    s = summarize(st)
    lines = [
        f"scheme {s['scheme']}  level {s['level']}  rows {s['rows']}  partitions {s['partitions']}",
        "depth  rows  partitions",
    ]
    for d, n in s["rows_per_depth"].items():
        lines.append(f"{d:5d} {n:7d} {s['partitions_per_depth'].get(d, 0):9d}")
    lines.append("partitions per Dec band (north then south, from the equator):")
    order = list(range(12, 24)) + list(range(11, -1, -1))
    counts = s["partitions_per_band"]
    lines.append("  " + "  ".join(f"{_band_label(b)} {counts[b]}" for b in order[:12]))
    lines.append("  " + "  ".join(f"{_band_label(b)} {counts[b]}" for b in order[12:]))
    lines.append(
        f"partition area deg^2: min {s['area_min']:.4g}  median {s['area_median']:.4g}  "
        f"max {s['area_max']:.4g}"
    )
    lines.append(f"host ids: {s['hosts']}")
    return "\n".join(lines)
