"""Numba kernels of :mod:`dvo.builder`: the rows of chosen objects in Measure order, row
scatters for the merge, and the position columns of new rows."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def object_rows(objects, base_off, base_cnt, n_base_obj, n_base, tail_last, tail_prev, out_off):
    """Fill ``out_off`` (len(objects) + 1) and return, per chosen object, its rows: first its
    sorted base rows ``base_off .. base_off + base_cnt - 1``, then its tail rows in arrival
    order (a chain through ``tail_prev`` ending at ``tail_last``), tail rows numbered from
    ``n_base``. This is the order the rows take once the partition is sorted."""
    total = 0
    counts = np.empty(objects.shape[0], np.int64)
    for k in range(objects.shape[0]):
        obj = objects[k]
        c = base_cnt[obj] if obj < n_base_obj else 0
        j = tail_last[obj]
        while j >= 0:
            c += 1
            j = tail_prev[j]
        counts[k] = c
        out_off[k] = total
        total += c
    out_off[objects.shape[0]] = total
    rows = np.empty(total, np.int64)
    for k in range(objects.shape[0]):
        obj = objects[k]
        pos = out_off[k]
        if obj < n_base_obj:
            for i in range(base_cnt[obj]):
                rows[pos + i] = base_off[obj] + i
        end = out_off[k + 1] - 1
        j = tail_last[obj]
        while j >= 0:
            rows[end] = n_base + j
            end -= 1
            j = tail_prev[j]
    return rows


@njit(cache=True)
def scatter_rows(out, dest, src):
    """``out[dest[i]] = src[i]`` for 2-D arrays of row words (a structured array's rows seen
    as uint64 or uint8 columns): a word loop per row, faster than numpy's void scatter."""
    w = src.shape[1]
    for i in range(src.shape[0]):
        d = dest[i]
        for k in range(w):
            out[d, k] = src[i, k]


@njit(cache=True)
def copy_positions(measure, pos):
    """The fields :data:`dvo.averages.POSITION_INPUTS` of Measure rows ``measure`` into the
    rows ``pos`` (those fields only), in one pass over the rows."""
    for i in range(measure.shape[0]):
        m, p = measure[i], pos[i]
        p.RA, p.DEC, p.X_CCD_ERR, p.Y_CCD_ERR = m.RA, m.DEC, m.X_CCD_ERR, m.Y_CCD_ERR
        p.PLTSCALE, p.PHOTCODE, p.DB_FLAGS, p.TIME = m.PLTSCALE, m.PHOTCODE, m.DB_FLAGS, m.TIME
