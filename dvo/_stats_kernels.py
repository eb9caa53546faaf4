"""Numba kernel of :mod:`dvo.stats`: per-filter magnitude ranges in one pass."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def mag_range(mags, out_min, out_max):
    """NaN-ignoring min and max of each column of ``mags`` (objects x filters, a strided
    SecFilt view); a column without finite values gets NaN, as np.nanmin/nanmax."""
    nsec = mags.shape[1]
    out_min[:] = np.nan
    out_max[:] = np.nan
    for i in range(mags.shape[0]):
        for k in range(nsec):
            x = mags[i, k]
            if np.isnan(x):
                continue
            if not (x >= out_min[k]):  # also true while out_min[k] is NaN
                out_min[k] = x
            if not (x <= out_max[k]):
                out_max[k] = x
