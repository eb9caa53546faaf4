"""The statistics index row of a partition against a direct numpy computation."""

from __future__ import annotations

import numpy as np

from dvo.partition import Partition
from dvo.schema import AVERAGE, MEASURE, SECFILT
from dvo.stats import partition_stats


def test_partition_stats_equal_numpy(rng):
    n, nsec = 5000, 4
    ave = AVERAGE.empty(n)
    ave["RA"], ave["DEC"] = rng.uniform(10, 11, n), rng.uniform(-1, 1, n)
    ave["NMEASURE"] = rng.integers(0, 9, n)
    sf = SECFILT.empty(n * nsec)
    mags = sf["MAG"].reshape(n, nsec)
    mags[:, 1] = rng.uniform(14, 22, n)
    some = rng.random(n) < 0.3
    mags[some, 2] = rng.uniform(12, 23, some.sum())  # slot 2 partly NaN, slot 0 all NaN
    mags[7, 3] = 18.5
    part = Partition(3, "n0000/0003", nsec, average=ave, secfilt=sf, measure=MEASURE.empty(2))
    row = partition_stats(part)[0]
    assert row["INDEX"] == 3 and row["NAVERAGE"] == n and row["NMEASURE"] == 2
    assert row["NMEAS_MAX"] == ave["NMEASURE"].max()
    assert (row["RA_MIN"], row["RA_MAX"]) == (ave["RA"].min(), ave["RA"].max())
    assert (row["DEC_MIN"], row["DEC_MAX"]) == (ave["DEC"].min(), ave["DEC"].max())
    finite = np.isfinite(mags)
    want_min = [mags[finite[:, k], k].min() if finite[:, k].any() else np.nan for k in range(nsec)]
    want_max = [mags[finite[:, k], k].max() if finite[:, k].any() else np.nan for k in range(nsec)]
    assert np.array_equal(row["MAG_MIN"], np.float32(want_min), equal_nan=True)
    assert np.array_equal(row["MAG_MAX"], np.float32(want_max), equal_nan=True)
    assert np.isnan(row["MAG_MIN"][0]) and row["MAG_MIN"][3] == row["MAG_MAX"][3] == 18.5
