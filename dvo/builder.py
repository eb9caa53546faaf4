"""A partition growing during an addstar run, at a cost that follows what is added.

:class:`PartitionBuilder` takes a sorted :class:`~dvo.partition.Partition` and accepts new
objects, measurements and lensing rows file after file. New rows are kept as the arrays they
came in (no copy of the partition, nor of the new rows, per file), or, when the write-ahead
log holds them, only as where they are in the log (read back when the partition is
written: memory then follows the objects, not the measurements), with a narrow copy of the
columns positions need; each object's new rows are chained in arrival order, so the positions
of the objects a file touched are recomputed from exactly the rows, in exactly the order, that
the sorted partition will hold: association of the next file sees them. Magnitudes (SecFilt)
are only read once the partition is written, so they are computed then, once per touched
object. :meth:`PartitionBuilder.finish` sorts once and gives the Partition to write, identical
to what adding the same rows one file at a time to sorted partitions gives.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dvo._builder_kernels import copy_positions, object_rows, scatter_rows
from dvo.averages import POSITION_INPUTS, update_magnitudes, update_positions
from dvo.partition import Partition, expand_ranges, index_ranges
from dvo.photcodes import Photcodes
from dvo.schema import LENSING, MEASURE, SECFILT, opaque

__all__ = ["PartitionBuilder", "GrowableRows", "attach"]


def _copy(a: np.ndarray) -> np.ndarray:
    return opaque(np.ascontiguousarray(a)).copy().view(a.dtype)


class GrowableRows:
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
        new = self.extend(len(rows))
        if rows.dtype == new.dtype:
            opaque(new)[:] = opaque(np.ascontiguousarray(rows))
        else:
            new[:] = rows

    def extend(self, count: int) -> np.ndarray:
        """``count`` more rows at the end, returned (a view, to fill before the next call)."""
        need = self.n + count
        if need > len(self._data):
            grown = np.empty(max(need, 2 * len(self._data)), self._data.dtype)
            opaque(grown)[: self.n] = opaque(self._data)[: self.n]
            self._data = grown
        self.n = need
        return self._data[need - count : need]

    @property
    def nbytes(self) -> int:
        return self._data.nbytes


#: The new rows' columns kept apart for position updates.
_POSITION_DTYPE = np.dtype([(c, MEASURE.dtype[c]) for c in POSITION_INPUTS])


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
        self._average = GrowableRows(part.average)
        self._base_secfilt = part.secfilt
        self._base, self._base_lensing = part.measure, part.lensing
        self._base_off, self._base_cnt = index_ranges(part.measure["AVE_REF"], part.nobjects)
        self._new: list = []  # new Measure rows (arrays or dvo.wal.LoggedRows), file by file
        self._new_refs: list[np.ndarray] = []  # their AVE_REF
        self._new_lensing: list[np.ndarray] = []
        self._tail_pos = GrowableRows(np.empty(0, _POSITION_DTYPE))  # their POSITION_INPUTS
        # per tail row, the previous tail row of the same object; per object, its last one
        self._tail_prev = GrowableRows(np.empty(0, np.int64))
        self._tail_last = GrowableRows(np.full(part.nobjects, -1, np.int64))
        self._touched = GrowableRows(np.zeros(part.nobjects, bool))  # magnitudes due at finish
        self._photcodes: Photcodes | None = None

    @property
    def average(self) -> np.ndarray:
        """The Average rows so far, with current positions (magnitudes: see finish)."""
        return self._average.view

    @property
    def nobjects(self) -> int:
        return self._average.n

    @property
    def nbytes(self) -> int:
        """Memory held (spare capacity included)."""
        rows = (self._average, self._tail_pos, self._tail_prev, self._tail_last, self._touched)
        held = (self._base, self._base_lensing, self._base_secfilt, *self._new, *self._new_refs,
                *self._new_lensing)  # fmt: skip
        return sum(a.nbytes for a in held) + sum(r.nbytes for r in rows)

    def add(
        self,
        new_average: np.ndarray,
        new_measure: np.ndarray,
        new_lensing: np.ndarray,
        photcodes: Photcodes,
        logged=None,
    ) -> None:
        """Append new objects and rows (AVE_REF set, objects numbered after the existing ones)
        and recompute the positions of every object that got a measurement. The rows are
        handed over: the caller must not change them afterwards. With ``logged`` (the
        :class:`dvo.wal.LoggedRows` holding the same Measure rows) only that is kept of them."""
        new_measure = np.asarray(new_measure, MEASURE.dtype)
        photcodes.rows(new_measure["PHOTCODE"])  # SchemaError for an unknown code, first
        self._photcodes = photcodes
        n_new = len(new_average)
        self._average.append(new_average)
        self._tail_last.append(np.full(n_new, -1, np.int64))
        self._touched.append(np.zeros(n_new, bool))
        self.next_objid += n_new
        ave_ref = new_measure["AVE_REF"].copy()
        touched = self._chain(ave_ref.astype(np.int64))
        if logged is not None and logged.count != len(new_measure):
            raise ValueError("the logged rows are not the rows added")
        self._new.append(new_measure if logged is None else logged)
        self._new_refs.append(ave_ref)
        copy_positions(new_measure, self._tail_pos.extend(len(new_measure)))
        if len(new_lensing):
            self._new_lensing.append(np.asarray(new_lensing, LENSING.dtype))
        self._touched.view[touched] = True
        self._update_positions(touched, photcodes)

    def _chain(self, refs: np.ndarray) -> np.ndarray:
        """Link new tail rows (about to be appended) behind their objects' previous ones;
        return the objects they belong to (sorted, unique)."""
        rows = self._tail_pos.n + np.arange(len(refs), dtype=np.int64)  # tail rows so far
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
        return r[first]

    def _update_positions(self, objects: np.ndarray, photcodes: Photcodes) -> None:
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
        update_positions(
            self._average.view, objects, off, rows, self._base, self._tail_pos.view, photcodes
        )

    @property
    def logged(self) -> list:
        """The :class:`dvo.wal.LoggedRows` whose rows :meth:`finish` reads back."""
        return [a for a in self._new if not isinstance(a, np.ndarray)]

    def finish(self, read: Callable[..., np.ndarray] | None = None) -> Partition:
        """The sorted Partition: rows ordered by (AVE_REF, arrival), offsets and counts set,
        magnitudes of the touched objects computed. ``read(logged)`` gives the rows of one
        of :attr:`logged` (default: its own ``read()``). The builder hands its buffers
        over: do not add to it afterwards."""
        nobj, nsec = self.nobjects, self.nsecfilt
        measure = _merge_sorted(self._base, self._new, self._new_refs, read)
        lensing = _merge_sorted(self._base_lensing, self._new_lensing)
        self._new, self._new_refs, self._new_lensing = [], [], []
        average = self._average.take()
        off, cnt = index_ranges(measure["AVE_REF"], nobj)
        average["OFF_MEASURE"], average["NMEASURE"] = off, cnt
        average["OFF_LENSING"], average["NLENSING"] = index_ranges(lensing["AVE_REF"], nobj)
        secfilt = np.empty(nobj * nsec, SECFILT.dtype)
        nbase = len(self._base_secfilt)
        opaque(secfilt)[:nbase] = opaque(self._base_secfilt)
        opaque(secfilt)[nbase:] = opaque(SECFILT.empty(1))[0]
        objects = np.flatnonzero(self._touched.view)
        if len(objects):
            _, rows = expand_ranges(off[objects], cnt[objects])
            ends = np.concatenate([[0], np.cumsum(cnt[objects])])
            update_magnitudes(secfilt, nsec, objects, ends, rows, measure, self._photcodes)
        return Partition(
            self.index,
            self.name,
            self.nsecfilt,
            average=average,
            secfilt=secfilt,
            measure=measure,
            lensing=lensing,
            next_objid=self.next_objid,
        )


def _merge_sorted(
    old: np.ndarray, new: list, refs: list[np.ndarray] | None = None, read=None
) -> np.ndarray:
    """``old`` (sorted by AVE_REF) with the rows of ``new`` (in arrival order: arrays, or
    objects whose ``read()``, or ``read(object)``, gives them, with their AVE_REF in
    ``refs``) inserted after equal keys, in arrival order: a stable merge, each row copied
    once."""
    if not new:
        return old
    refs = np.concatenate([a["AVE_REF"] for a in new] if refs is None else refs)
    order = np.argsort(refs, kind="stable")
    pos = np.searchsorted(old["AVE_REF"], refs[order], side="right")
    dest = np.empty(len(refs), np.int64)
    dest[order] = pos + np.arange(len(refs))  # where np.insert would put each new row
    out = np.empty(len(old) + len(refs), old.dtype)
    if len(old):
        shift = np.searchsorted(pos, np.arange(len(old)), side="right")
        scatter_rows(_words(out), np.arange(len(old)) + shift, _words(old))
    start = 0
    for a in new:
        rows = a if isinstance(a, np.ndarray) else a.read() if read is None else read(a)
        scatter_rows(_words(out), dest[start : start + len(rows)], _words(rows))
        start += len(rows)
    return out


def _words(rows: np.ndarray) -> np.ndarray:
    """Contiguous structured rows as a 2-D array of 8-byte (else single-byte) words."""
    size = rows.dtype.itemsize
    word = 8 if size % 8 == 0 else 1
    return np.ascontiguousarray(rows).view(f"u{word}").reshape(len(rows), size // word)


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
