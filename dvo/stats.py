"""Per-partition statistics: the small index the query planner prunes with.

One row per populated partition: row counts, the bounds of its objects' positions, and per
average filter the range of mean magnitudes. Every commit that changes a partition rewrites
its row (the table is small: one row per partition).
"""

from __future__ import annotations

import numpy as np

from dvo._stats_kernels import mag_range
from dvo.partition import Partition

__all__ = ["STATS_VERSION", "stats_dtype", "empty_stats", "partition_stats", "merge_stats"]

STATS_VERSION = 1


def stats_dtype(nsecfilt: int) -> np.dtype:
    """The Stats table layout for a database with ``nsecfilt`` average filters."""
    return np.dtype(
        [
            ("INDEX", "i8"),
            ("NAVERAGE", "i8"),
            ("NMEASURE", "i8"),
            ("NLENSING", "i8"),
            ("NMEAS_MAX", "i4"),
            ("RA_MIN", "f8"),
            ("RA_MAX", "f8"),
            ("DEC_MIN", "f8"),
            ("DEC_MAX", "f8"),
            ("MAG_MIN", "f4", (nsecfilt,)),
            ("MAG_MAX", "f4", (nsecfilt,)),
        ]
    )


def empty_stats(nsecfilt: int) -> np.ndarray:
    """A Stats table with no rows."""
    return np.zeros(0, stats_dtype(nsecfilt))


def partition_stats(part: Partition) -> np.ndarray:
    """One Stats row describing ``part`` (NaN ranges for an empty one)."""
    row = np.zeros(1, stats_dtype(part.nsecfilt))
    row["INDEX"] = part.index
    row["NAVERAGE"], row["NMEASURE"] = len(part.average), len(part.measure)
    row["NLENSING"] = len(part.lensing)
    ave = part.average
    if len(ave) == 0:
        for col in ("RA_MIN", "RA_MAX", "DEC_MIN", "DEC_MAX", "MAG_MIN", "MAG_MAX"):
            row[col] = np.nan
        return row
    row["NMEAS_MAX"] = int(ave["NMEASURE"].max())
    row["RA_MIN"], row["RA_MAX"] = ave["RA"].min(), ave["RA"].max()
    row["DEC_MIN"], row["DEC_MAX"] = ave["DEC"].min(), ave["DEC"].max()
    mags = part.secfilt["MAG"].reshape(len(ave), part.nsecfilt)
    mag_range(mags, row["MAG_MIN"][0], row["MAG_MAX"][0])
    return row


def merge_stats(old: np.ndarray, new_rows: np.ndarray) -> np.ndarray:
    """Replace or add the rows of ``new_rows`` (by INDEX) in ``old``; sorted by INDEX."""
    keep = old[~np.isin(old["INDEX"], new_rows["INDEX"])]
    out = np.concatenate([keep, new_rows.astype(old.dtype)])
    return out[np.argsort(out["INDEX"], kind="stable")]
