"""A partition growing during an addstar run, at a cost that follows what is added.

:class:`PartitionBuilder` takes a sorted :class:`~dvo.partition.Partition` and accepts new
objects, measurements and lensing rows file after file. New rows go to tails with spare
capacity (no copy of the partition per file); each object's tail rows are chained in arrival
order, so the averages of the objects a file touched are recomputed from exactly the rows, in
exactly the order, that the sorted partition will hold. :meth:`PartitionBuilder.finish` sorts
once and gives the Partition to write, identical to what adding the same rows one file at a
time to sorted partitions gives.
"""

from __future__ import annotations

import numpy as np

from dvo._builder_kernels import object_rows
from dvo.averages import MEASURE_INPUTS, update_objects
from dvo.partition import Partition, index_ranges
from dvo.photcodes import Photcodes
from dvo.schema import LENSING, MEASURE, SECFILT, opaque

__all__ = ["PartitionBuilder", "attach"]


def _copy(a: np.ndarray) -> np.ndarray:
    return opaque(np.ascontiguousarray(a)).copy().view(a.dtype)


class _Rows:
    """An array that grows at the end with amortised doubling. It starts as a copy (with a
    quarter of headroom) so that the array it was made from is never changed."""

    def __init__(self, initial: np.ndarray) -> None:
        self.n = len(initial)
        self._data = np.empty(self.n + max(self.n // 4, 1024), initial.dtype)
        opaque(self._data)[: self.n] = opaque(np.ascontiguousarray(initial))

    @property
    def view(self) -> np.ndarray:
        """The rows so far (a view: valid until the next append)."""
        return self._data[: self.n]

    def take(self) -> np.ndarray:
        """The rows so far, for a caller that keeps them and drops this object: the buffer
        itself unless more than a third of it is unused."""
        return self.view if 3 * self.n >= 2 * len(self._data) else _copy(self.view)

    def append(self, rows: np.ndarray) -> None:
        need = self.n + len(rows)
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)), self._data.dtype)
            opaque(grown)[: self.n] = opaque(self._data)[: self.n]
            self._data = grown
        if rows.dtype == self._data.dtype:
            opaque(self._data)[self.n : need] = opaque(np.ascontiguousarray(rows))
        else:
            self._data[self.n : need] = rows
        self.n = need

    @property
    def nbytes(self) -> int:
        return self._data.nbytes


class PartitionBuilder:
    """One partition being added to; see the module docstring.

    Examples
    --------
    >>> from dvo.photcodes import default_photcodes
    >>> from dvo.schema import AVERAGE
    >>> b = PartitionBuilder(Partition(7, "n0000/0001", nsecfilt=1))
    >>> ave, m = AVERAGE.empty(1), MEASURE.empty(2)
    >>> ave["RA"], ave["DEC"] = 10.0, 20.0
    >>> m["RA"], m["DEC"], m["AVE_REF"], m["PHOTCODE"] = 10.0, [20.0, 20.0002], 0, 1
    >>> b.add(ave, m, LENSING.empty(0), default_photcodes(("g",)))
    >>> part = b.finish()
    >>> int(part.average["NMEASURE"][0]), round(float(part.average["DEC"][0]), 4)
    (2, 20.0001)
    """

    def __init__(self, part: Partition) -> None:
        self.index, self.name, self.nsecfilt = part.index, part.name, part.nsecfilt
        self.next_objid = part.next_objid
        self._average = _Rows(part.average)
        self._secfilt = _Rows(part.secfilt)
        self._base, self._base_lensing = part.measure, part.lensing
        self._base_off, self._base_cnt = index_ranges(part.measure["AVE_REF"], part.nobjects)
        self._tail = _Rows(MEASURE.empty(0))
        self._tail_lensing = _Rows(LENSING.empty(0))
        self._tail_prev = _Rows(np.empty(0, np.int64))  # previous tail row of the same object
        self._tail_last = _Rows(np.full(part.nobjects, -1, np.int64))  # per object

    @property
    def average(self) -> np.ndarray:
        """The Average rows so far, with current positions and magnitudes."""
        return self._average.view

    @property
    def nobjects(self) -> int:
        return self._average.n

    @property
    def nbytes(self) -> int:
        """Memory held (tails' spare capacity included)."""
        parts = (self._average, self._secfilt, self._tail, self._tail_lensing, self._tail_prev)
        return self._base.nbytes + self._base_lensing.nbytes + sum(r.nbytes for r in parts)

    def add(
        self,
        new_average: np.ndarray,
        new_measure: np.ndarray,
        new_lensing: np.ndarray,
        photcodes: Photcodes,
    ) -> None:
        """Append new objects and rows (AVE_REF set, objects numbered after the existing ones)
        and recompute the averages of every object that got a row."""
        self._average.append(new_average)
        self._secfilt.append(SECFILT.empty(len(new_average) * self.nsecfilt))
        self._tail_last.append(np.full(len(new_average), -1, np.int64))
        self.next_objid += len(new_average)
        self._chain(new_measure["AVE_REF"].astype(np.int64))
        self._tail.append(new_measure)
        self._tail_lensing.append(new_lensing)
        touched = np.unique(np.concatenate([new_measure["AVE_REF"], new_lensing["AVE_REF"]]))
        self._update(touched.astype(np.int64), photcodes)

    def _chain(self, refs: np.ndarray) -> None:
        """Link new tail rows (about to be appended) behind their objects' previous ones."""
        rows = self._tail.n + np.arange(len(refs), dtype=np.int64)
        order = np.argsort(refs, kind="stable")
        r, rows = refs[order], rows[order]
        first = np.ones(len(r), bool)
        first[1:] = r[1:] != r[:-1]
        last = self._tail_last.view
        prev = np.empty(len(r), np.int64)
        prev[first] = last[r[first]]
        prev[~first] = rows[np.flatnonzero(~first) - 1]
        chained = np.empty(len(r), np.int64)
        chained[order] = prev
        self._tail_prev.append(chained)
        ends = np.ones(len(r), bool)
        ends[:-1] = first[1:]
        last[r[ends]] = rows[ends]

    def _update(self, objects: np.ndarray, photcodes: Photcodes) -> None:
        if len(objects) == 0:
            return
        off = np.empty(len(objects) + 1, np.int64)
        rows = object_rows(
            objects,
            self._base_off,
            self._base_cnt,
            len(self._base_cnt),
            len(self._base),
            self._tail_last.view,
            self._tail_prev.view,
            off,
        )
        in_base = rows < len(self._base)
        base_rows, tail_rows = rows[in_base], rows[~in_base] - len(self._base)
        tail = self._tail.view
        sub = {}
        for col in MEASURE_INPUTS:
            values = np.empty(len(rows), MEASURE.dtype[col])
            values[in_base] = self._base[col][base_rows]
            values[~in_base] = tail[col][tail_rows]
            sub[col] = values
        sub["AVE_REF"] = np.repeat(np.arange(len(objects)), np.diff(off))
        update_objects(
            self._average.view,
            self._secfilt.view,
            self.nsecfilt,
            objects,
            sub,
            off[:-1],
            np.diff(off),
            photcodes,
        )

    def finish(self) -> Partition:
        """The sorted Partition: rows ordered by (AVE_REF, arrival), offsets and counts set.
        The builder hands its buffers over: do not add to it afterwards."""
        nobj = self.nobjects
        measure = _merge_sorted(self._base, self._tail.view)
        lensing = _merge_sorted(self._base_lensing, self._tail_lensing.view)
        average = self._average.take()
        average["OFF_MEASURE"], average["NMEASURE"] = index_ranges(measure["AVE_REF"], nobj)
        average["OFF_LENSING"], average["NLENSING"] = index_ranges(lensing["AVE_REF"], nobj)
        return Partition(
            self.index,
            self.name,
            self.nsecfilt,
            average=average,
            secfilt=self._secfilt.take(),
            measure=measure,
            lensing=lensing,
            next_objid=self.next_objid,
        )


def _merge_sorted(old: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Insert ``new`` rows into ``old`` (sorted by AVE_REF) after equal keys: stable merge."""
    if len(new) == 0:
        return old
    new = np.asarray(new, old.dtype)
    new = opaque(new)[np.argsort(new["AVE_REF"], kind="stable")].view(old.dtype)
    if len(old) == 0:
        return new
    pos = np.searchsorted(old["AVE_REF"], new["AVE_REF"], side="right")
    return np.insert(opaque(old), pos, opaque(new)).view(old.dtype)


def attach(
    part: Partition,
    new_average: np.ndarray,
    new_measure: np.ndarray,
    new_lensing: np.ndarray,
    photcodes: Photcodes,
) -> Partition:
    """``part`` with objects and rows appended, sorted, and the touched averages recomputed."""
    builder = PartitionBuilder(part)
    builder.add(new_average, new_measure, new_lensing, photcodes)
    return builder.finish()
