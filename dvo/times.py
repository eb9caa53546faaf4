"""Time conventions of the tables: MJD (UTC) <-> DVO's unix seconds plus milliseconds.

Measure.TIME and Image.TZERO are whole unix seconds (DVO's ``e_time``), Measure.TIME_MSEC
the milliseconds; Image.MJD_OBS keeps the full-precision MJD.
"""

from __future__ import annotations

import numpy as np

__all__ = ["UNIX_MJD", "J2000_MJD", "mjd_to_time", "time_to_mjd"]

UNIX_MJD = 40587.0  # 1970-01-01
J2000_MJD = 51544.5


def mjd_to_time(mjd) -> tuple[np.ndarray, np.ndarray]:
    """(whole unix seconds, milliseconds) of an MJD, rounded to the millisecond.

    Examples
    --------
    >>> s, ms = mjd_to_time(UNIX_MJD + 1.5 / 86400)
    >>> int(s), int(ms)
    (1, 500)
    """
    ms = np.round((np.asarray(mjd, np.float64) - UNIX_MJD) * 86_400_000.0).astype(np.int64)
    return ms // 1000, ms % 1000


def time_to_mjd(seconds, msec=0) -> np.ndarray:
    """MJD of unix seconds plus milliseconds (the inverse of :func:`mjd_to_time`)."""
    total = np.asarray(seconds, np.float64) + np.asarray(msec, np.float64) / 1000.0
    return UNIX_MJD + total / 86400.0
