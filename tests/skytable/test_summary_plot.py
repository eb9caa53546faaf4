"""The library functions behind ``dvo skytable show`` and ``plot``."""

from __future__ import annotations

import numpy as np
import pytest
from dvo.skytable.plot import mollweide, outlines, plot_partitions
from dvo.skytable.summary import band_of, format_summary, summarize

from dvo.errors import SkyTableError


def test_summary_counts(st):
    s = summarize(st)
    assert s["partitions"] == len(st.partitions) == sum(s["partitions_per_band"])
    assert sum(s["rows_per_depth"].values()) == len(st)
    assert 0 < s["area_min"] <= s["area_median"] <= s["area_max"]
    text = format_summary(st)
    assert "n0000" in text and "s8230" in text and f"partitions {s['partitions']}" in text


def test_band_of_agrees_with_dec(gsc3):
    _, dec = gsc3.centre(gsc3.partitions)
    expect = np.minimum(((dec + 90) // 7.5).astype(int), 23)
    assert np.array_equal(band_of(gsc3, gsc3.partitions), expect)


def test_mollweide_frame():
    x, y = mollweide(np.array([180.0, 0.0, 359.999999, 180.0]), np.array([0.0, 0.0, 0.0, -90.0]))
    assert (
        np.allclose([x[0], y[0]], 0)
        and x[1] > 2.8
        and x[2] < -2.8
        and y[3] == pytest.approx(-np.sqrt(2))
    )


@pytest.mark.parametrize(("table", "level"), [("gsc3", 2), ("gsc3", 3), ("hpx", 3), ("hpx", 6)])
def test_plot_writes_png(request, tmp_path, table, level):
    st = request.getfixturevalue(table)
    out = plot_partitions(st, level, tmp_path / "map.png", dpi=40)
    assert out.read_bytes()[:4] == b"\x89PNG"


def test_outlines_and_bad_level(gsc3):
    lines = outlines(gsc3, 1)
    assert len(lines) == 24 and all(np.isfinite(seg).all() for seg in lines)
    with pytest.raises(SkyTableError, match="no rows at level 9"):
        outlines(gsc3, 9)
    with pytest.raises(SkyTableError, match="no rows at level 9"):
        plot_partitions(gsc3, 9, "unused.png")
