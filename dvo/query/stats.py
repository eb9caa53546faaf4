"""A text summary of a database from its statistics index (no partition is read).

Examples
--------
>>> import dvo                        # doctest: +SKIP
>>> print(summary(dvo.open("db")))    # doctest: +SKIP
"""

from __future__ import annotations

import warnings

import numpy as np

__all__ = ["summary"]


def summary(db) -> str:
    """Partitions, objects, measurements, lensing rows, images, and per-filter magnitude ranges."""
    st = db.stats()
    populated = st[st["NAVERAGE"] > 0]
    nimages = len(db.images(columns=["IMAGE_ID"]))
    lines = [
        f"database: {db.catdir}",
        f"sky partitions: {len(db.skytable.partitions)} ({db.skytable.scheme.name.lower()}), "
        f"populated {len(populated)}",
        f"objects: {int(st['NAVERAGE'].sum())}",
        f"measurements: {int(st['NMEASURE'].sum())}",
        f"lensing rows: {int(st['NLENSING'].sum())}",
        f"images: {nimages}",
    ]
    if len(populated):
        big = populated[np.argmax(populated["NAVERAGE"])]
        lines.append(
            f"largest partition: {db.skytable.name[int(big['INDEX'])]} "
            f"({int(big['NAVERAGE'])} objects, {int(big['NMEASURE'])} measurements)"
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            lo, hi = (
                np.nanmin(populated["MAG_MIN"], axis=0),
                np.nanmax(populated["MAG_MAX"], axis=0),
            )
        for k, name in enumerate(db.photcodes.sec_names):
            if np.isfinite(lo[k]):
                lines.append(f"  {name:>3}: {lo[k]:7.3f} .. {hi[k]:7.3f} mag")
    return "\n".join(lines)
