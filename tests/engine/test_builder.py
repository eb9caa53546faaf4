"""The pieces PartitionBuilder keeps new rows in: GrowableRows and the position columns."""

from __future__ import annotations

import numpy as np

from dvo._builder_kernels import copy_positions
from dvo.averages import POSITION_INPUTS
from dvo.builder import _POSITION_DTYPE, GrowableRows
from dvo.schema import MEASURE


def _random_rows(n: int, seed: int) -> np.ndarray:
    """Measure rows of random bytes: every bit pattern, NaNs included."""
    raw = np.random.default_rng(seed).integers(0, 256, (n, MEASURE.dtype.itemsize), np.uint8)
    return raw.view(MEASURE.dtype).reshape(n)


def test_copy_positions_copies_exactly_the_position_inputs():
    rows = _random_rows(5000, 1)
    want = np.zeros(len(rows), _POSITION_DTYPE)
    for name in POSITION_INPUTS:
        want[name] = rows[name]
    got = np.zeros(len(rows), _POSITION_DTYPE)
    copy_positions(rows, got)
    assert _POSITION_DTYPE.names == POSITION_INPUTS
    assert got.tobytes() == want.tobytes()
    strided = np.zeros(2 * len(rows), _POSITION_DTYPE)[::2]  # read-only, strided input too
    rows.flags.writeable = False
    copy_positions(rows[::-1], strided)
    assert strided.tobytes() == want[::-1].tobytes()


def test_growable_rows_keep_what_was_added():
    first = _random_rows(3, 2)
    grow = GrowableRows(first)
    added = [first]
    for k, n in enumerate([0, 1, 1500, 7, 4000]):
        rows = _random_rows(n, 10 + k)
        if k % 2:
            grow.append(rows)
        else:
            grow.extend(n)[:] = rows
        added.append(rows)
        assert grow.view.tobytes() == np.concatenate(added).tobytes()
    assert first.tobytes() == _random_rows(3, 2).tobytes()  # the array it was made from
