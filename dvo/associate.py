"""Association: which existing object each detection belongs to.

:class:`Matcher` is the strategy (lsdb's ``KdTreeCrossmatch`` shape): ``validate`` checks the
inputs, ``match`` returns index arrays. :func:`one_per_image` enforces DVO's rule that an object
gets at most one measurement from an image: the closest detection wins and the others are
returned as losers, which addstar flags as blends and turns into objects of their own.
:func:`associate_batch` applies both to one input file against the partitions it touches and
groups the file's rows by target partition (a :class:`dvo.wal.Delta`). It matches through
:meth:`Matcher.match_partitions`, which keeps each partition's positions in a grid from file
to file (updated with what each Delta changes), with results identical to ``match``'s.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from dvo._assoc_kernels import (
    extent,
    first_per_key,
    grid_append,
    grid_build,
    grid_move,
    grid_nearest,
    group_order,
    nearest_within,
    new_objects,
    prepare_queries,
    read_rows,
    take_rows,
)
from dvo.errors import DvoError
from dvo.flags import MeasFlags
from dvo.schema import AVERAGE, MEASURE
from dvo.wal import Delta

__all__ = ["Matcher", "one_per_image", "associate_batch"]


@dataclass(frozen=True)
class Matcher:
    """Nearest-object matching within ``radius`` arcsec (closest wins, as DVO's addstar).

    Examples
    --------
    >>> m = Matcher(1.0)
    >>> idx, sep = m.match(np.array([10.0, 10.01]), np.array([0.0, 0.0]),
    ...                    np.array([10.0001, 50.0]), np.array([0.0, 0.0]))
    >>> idx.tolist(), round(float(sep[0]), 2)
    ([0, -1], 0.36)
    """

    radius: float  # arcsec
    # partition index -> _Grid of the partition state last seen (see match_partitions)
    _grids: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.radius) and 0 < self.radius <= 3600):
            raise DvoError(f"match radius must be in (0, 3600] arcsec, got {self.radius}")

    @staticmethod
    def validate(ra: np.ndarray, dec: np.ndarray) -> None:
        """Raise DvoError unless positions are finite degrees with |dec| <= 90."""
        _refuse(
            not (np.isfinite(ra).all() and np.isfinite(dec).all()), bool((np.abs(dec) > 90).any())
        )

    def match(
        self, ra: np.ndarray, dec: np.ndarray, obj_ra: np.ndarray, obj_dec: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Index of the closest object within the radius for each detection (-1 for none),
        and the separation in arcsec (inf for none)."""
        ra, dec = np.asarray(ra, np.float64) % 360.0, np.asarray(dec, np.float64)
        obj_ra, obj_dec = np.asarray(obj_ra, np.float64) % 360.0, np.asarray(obj_dec, np.float64)
        self.validate(ra, dec)
        self.validate(obj_ra, obj_dec)
        height = self.radius / 3600.0
        candidates = _near_box(ra, dec, obj_ra, obj_dec, height)
        if len(candidates) == 0 or len(ra) == 0:
            return np.full(len(ra), -1, np.int64), np.full(len(ra), np.inf)
        zone = np.floor((obj_dec[candidates] + 90.0) / height).astype(np.int64)
        perm = np.lexsort((obj_ra[candidates], zone))
        order, zs = candidates[perm], zone[perm]
        zmin = int(zs[0])
        starts = np.searchsorted(zs, np.arange(zmin, int(zs[-1]) + 2)).astype(np.int64)
        idx, hav = nearest_within(
            ra, dec, obj_ra[order], obj_dec[order], starts, zmin, height, height
        )
        found = idx >= 0
        out = np.where(found, order[np.maximum(idx, 0)], -1)
        sep = np.full(len(ra), np.inf)
        sep[found] = _arcsec(hav[found])
        return out, sep

    def match_partitions(
        self, ra: np.ndarray, dec: np.ndarray, parts: list, boxes: np.ndarray, keys=None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`match` against the objects of ``parts`` concatenated, without the
        concatenation: for each detection the position in ``parts`` and the row of the
        closest object (-1, -1 for none), and the separation in arcsec.

        Identical to ``match(ra, dec, concatenated RA, concatenated DEC)``. The positions of
        each partition state are kept from call to call in a grid (:class:`_Grid`;
        ``boxes``: the partitions' sky boxes, RA min, max, Dec min, max; ``keys``: their
        indices) brought up to date with the rows that changed (:meth:`note_changes`), so
        that the cost of a call follows the detections, not the partitions.
        """
        return self._match_prepared(_Queries(ra, dec), parts, boxes, keys)

    def _match_prepared(self, q: _Queries, parts, boxes, keys):
        ra, dec, stats = q.ra, q.dec, q.stats
        _refuse(bool(stats[0]), bool(stats[1]))
        height = self.radius / 3600.0
        keys = [id(p) for p in parts] if keys is None else [int(k) for k in keys]
        for k in [k for k, g in self._grids.items() if g.ref() is None]:
            del self._grids[k]  # partition states gone
        grids, bad = [], [False, False]
        for key, part, box in zip(keys, parts, boxes, strict=True):
            grids.append(self._grid(key, part, box, height, bad))
        _refuse(*bad)
        n = len(ra)
        best_p = np.full(n, -1, np.int64)
        best_row = np.full(n, -1, np.int64)
        sep = np.full(n, np.inf)
        if n == 0 or all(g.n == 0 for g in grids):
            return best_p, best_row, sep
        hav = np.full(n, np.inf)
        best_ra, best_dec = np.empty(n), np.empty(n)
        box = _prefilter_box(ra, stats[2:], height)
        tab, dec_reach = self._reach_table
        for t, g in enumerate(grids):
            if g.n:
                grid_nearest(
                    ra, dec, tab, _STEP, dec_reach, g.ra, g.dec, g.cdec, g.onext, g.geo, g.start,
                    g.pos, g.slot_row, g.ohead, g.obox, height, height, box, t, hav, best_p,
                    best_row, best_ra, best_dec,
                )  # fmt: skip
        found = best_p >= 0
        sep[found] = _arcsec(hav[found])
        return best_p, best_row, sep

    def note_changes(self, keys, parts: list, rows: list) -> None:
        """Tell the grids which existing rows of ``parts`` the Delta about to be applied
        changes: they are read again on the next call."""
        for key, part, changed in zip(keys, parts, rows, strict=True):
            grid = self._grids.get(int(key))
            if grid is not None and grid.ref() is part:
                grid.pending = np.concatenate([grid.pending, changed.astype(np.int64)])

    def _grid(self, key: int, part, box, height: float, bad: list) -> _Grid:
        """The partition state's grid, brought up to date (a new one for a new state)."""
        grid = self._grids.get(key)
        if grid is None or grid.ref() is not part or part.nobjects < grid.n:
            grid = _Grid(box, height)
            try:
                grid.ref = weakref.ref(part)
                self._grids[key] = grid
            except TypeError:  # not weakly referenceable: not kept
                self._grids.pop(key, None)
        error = grid.refresh(part)
        if error[0] or error[1]:
            self._grids.pop(key, None)  # read in full again next time, and fail again
            bad[0], bad[1] = bad[0] or error[0], bad[1] or error[1]
        return grid

    @cached_property
    def _reach_table(self) -> tuple[np.ndarray, float]:
        """Bounds on the Dec and RA offsets (deg) of an object that can pass the haversine
        test, the RA one by |Dec| of the detection (entry ``int(|dec| / _STEP)``): wide
        margins over the radius, so rounding never leaves a passing object out."""
        height = self.radius / 3600.0
        dec_reach = height * (1 + 1e-6) + 1e-10
        s = np.sin(0.5 * np.radians(height)) * (1 + 1e-6)  # >= sqrt of the haversine limit
        top = np.minimum((np.arange(int(90 / _STEP) + 2) + 1) * _STEP + dec_reach, 90.0)
        c = np.cos(np.radians(top))  # lower bound of cos(Dec) of query and object
        reach = np.full(len(top), 360.0)
        ok = c > 2 * s
        reach[ok] = 2 * np.degrees(np.arcsin(s / c[ok])) * (1 + 1e-6) + 1e-9
        return reach, dec_reach


def _refuse(nonfinite: bool, outside: bool) -> None:
    """DvoError for positions that are not finite, or declinations outside [-90, 90]."""
    if nonfinite:
        raise DvoError("positions must be finite")
    if outside:
        raise DvoError("declinations must lie in [-90, 90]")


def _arcsec(hav: np.ndarray) -> np.ndarray:
    """Separations (arcsec) from haversines of the angular distance."""
    return np.degrees(2 * np.arcsin(np.sqrt(hav))) * 3600.0


class _Queries:
    """Detections as matching takes them, read in one pass: contiguous RA (modulo 360, as
    numpy's ``%``) and Dec, and ``stats`` (see :func:`prepare_queries`)."""

    def __init__(self, ra, dec) -> None:
        ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
        self.ra, self.dec, self.stats = np.empty(len(ra)), np.empty(len(dec)), np.empty(6)
        prepare_queries(ra, dec, self.ra, self.dec, self.stats)


_STEP = 0.01  # deg of |Dec| per entry of the RA reach table
_PER_CELL = 4.0  # objects per grid cell aimed at
_MAX_SIDE = 4096  # grid rows or columns at most


def _prefilter_box(ra: np.ndarray, stats: np.ndarray, margin: float) -> np.ndarray:
    """:func:`_near_box`'s test as numbers for the kernel: Dec min, max, whether RA is
    tested (1.0/0.0), the RA reference, relative RA min, max, computed as it does from the
    detections' Dec min, max and relative RA min, max (``stats``)."""
    dmin, dmax, lo, hi = (np.float64(x) for x in stats)
    box = np.array([dmin - margin, dmax + margin, 0.0, 0.0, 0.0, 0.0])
    top = max(abs(float(dmin)), abs(float(dmax))) + margin
    if top < 80.0 and float(hi) - float(lo) < 180.0:
        widen = 1.01 * margin / np.cos(np.radians(top))
        box[2:] = 1.0, float(ra[0]), float(lo) - widen, float(hi) + widen
    return box


class _Grid:
    """The positions of one partition state's objects (RA modulo 360, as match sees them)
    in a grid of cells (layout and kernels in :mod:`dvo._assoc_kernels`).

    It stays exact as the partition changes: new objects are appended rows, read when first
    seen; existing objects move only through a Delta's rows, which ``pending`` lists (see
    :meth:`Matcher.note_changes`) and :meth:`refresh` reads again. A new partition state (a
    new object, e.g. after a checkpoint) gets a new grid. Objects added or moved to another
    cell since the grid was built are chained in overflow lists; the grid is built again
    when they are a quarter of the objects, and redrawn when the objects have doubled.
    """

    def __init__(self, box: np.ndarray, height: float) -> None:
        self.ref = lambda: None
        self.box, self.height = np.asarray(box, np.float64), height
        self.n, self.n_drawn, self.n_overflow = 0, -1, 0
        self.ra, self.dec, self.cdec = np.empty(0), np.empty(0), np.empty(0)
        self.cell, self.row_slot, self.onext = (np.empty(0, np.int64) for _ in range(3))
        self.pending = np.zeros(0, np.int64)

    def refresh(self, part) -> tuple[bool, bool]:
        """Read the changed and new rows of ``part``; returns (non-finite, |Dec| > 90) of
        what was read."""
        avg, total = part.average, part.nobjects
        ra_col, dec_col = avg["RA"], avg["DEC"]
        bad = np.zeros(2, np.bool_)
        rows = np.sort(self.pending[self.pending < self.n])  # in order: the reads stream
        self.pending = np.zeros(0, np.int64)
        if len(rows):
            self.n_overflow += grid_move(
                rows, ra_col, dec_col, self.ra, self.dec, self.cdec, self.cell, self.row_slot,
                self.onext, self.geo, self.pos, self.ohead, self.obox, bad,
            )  # fmt: skip
        if total > self.n:
            self._reserve(total)
            read_rows(self.n, total, ra_col, dec_col, self.ra, self.dec, self.cdec, bad)
            first, self.n = self.n, total
            if self.n_drawn >= 0:
                grid_append(first, total, self.ra, self.dec, self.cell, self.row_slot,
                            self.onext, self.geo, self.ohead, self.obox)  # fmt: skip
                self.n_overflow += total - first
        if self.n_drawn < 0 or self.n > 2 * self.n_drawn + 4096:
            self._draw()
        elif self.n_overflow > self.n // 4 + 1024:
            self._build()
        return bool(bad[0]), bool(bad[1])

    def _reserve(self, n: int) -> None:
        if n <= len(self.ra):
            return
        cap = max(n + n // 4, 1024)
        for name in ("ra", "dec", "cdec", "cell", "row_slot", "onext"):
            old = getattr(self, name)
            new = np.empty(cap, old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def _draw(self) -> None:
        """A grid for the current objects over the partition's box (padded): cells of about
        ``_PER_CELL`` objects where the objects are, at least two radii wide."""
        r0, r1, d0, d1 = (float(x) for x in self.box)
        pad = 2.0 * self.height
        dlo, dhi = max(d0 - pad, -90.0), min(d1 + pad, 90.0)
        ctop = np.cos(np.radians(min(max(abs(dlo), abs(dhi)), 90.0)))
        half = min((r1 - r0) / 2.0 + pad / max(ctop, 1e-6), 180.0)
        ref = ((r0 + r1) / 2.0) % 360.0
        cmid = np.cos(np.radians((dlo + dhi) / 2.0))
        area = 2 * half * cmid * (dhi - dlo)
        if self.n:  # where the objects are (a survey may cover part of the box)
            e = extent(self.n, self.ra, self.dec, ref)
            span = min(max(float(e[3] - e[2]), 0.0), 2 * half)
            area = min(area, span * cmid * max(min(e[1], dhi) - max(e[0], dlo), 0.0))
        side = max(np.sqrt(max(area, 1e-12) * _PER_CELL / max(self.n, 1)), 2.0 * self.height)
        nrow = int(min(max(np.ceil((dhi - dlo) / side), 1), _MAX_SIDE))
        ncol = int(min(max(np.ceil(2 * half * max(ctop, 1e-6) / side), 1), _MAX_SIDE))
        self.geo = np.array([dlo, (dhi - dlo) / nrow, nrow, -half, 2 * half / ncol, ncol, ref])
        self.n_drawn = self.n
        self._build()

    def _build(self) -> None:
        """Store the objects cell after cell (no overflow)."""
        ncell = int(self.geo[2]) * int(self.geo[5])
        self.start = np.empty(ncell + 1, np.int64)
        self.pos = np.empty((self.n, 3))  # RA, Dec, cos(Dec) of each stored object
        self.slot_row = np.empty(self.n, np.int64)
        self.ohead = np.empty(ncell, np.int64)
        self.obox = np.empty(4)
        self._reserve(self.n)
        grid_build(self.n, self.ra, self.dec, self.cdec, self.cell, self.row_slot, self.geo,
                   self.start, self.pos, self.slot_row, self.ohead, self.obox)  # fmt: skip
        self.n_overflow = 0


def _near_box(ra, dec, obj_ra, obj_dec, margin: float) -> np.ndarray:
    """Indices of the objects inside the detections' bounding box widened by ``margin`` deg:
    only those can be within ``margin`` of a detection. It keeps the sort that follows
    proportional to the file's footprint, not to the partitions it touches."""
    if len(ra) == 0:
        return np.zeros(0, np.int64)
    keep = (obj_dec >= dec.min() - margin) & (obj_dec <= dec.max() + margin)
    top = max(abs(float(dec.min())), abs(float(dec.max()))) + margin
    if top < 80.0:  # away from the poles an RA interval bounds the box too
        ref = float(ra[0])
        rel = (ra - ref + 180.0) % 360.0 - 180.0
        lo, hi = float(rel.min()), float(rel.max())
        if hi - lo < 180.0:
            widen = 1.01 * margin / np.cos(np.radians(top))
            obj_rel = (obj_ra - ref + 180.0) % 360.0 - 180.0
            keep &= (obj_rel >= lo - widen) & (obj_rel <= hi + widen)
    return np.flatnonzero(keep)


def one_per_image(obj: np.ndarray, image: np.ndarray, sep: np.ndarray) -> np.ndarray:
    """Mask of matched detections that lose to a closer detection of the same image on the
    same object (ties broken by input order)."""
    loser = np.zeros(len(obj), bool)
    first_per_key(
        np.ascontiguousarray(obj, np.int64),
        np.ascontiguousarray(image, np.int64),
        np.ascontiguousarray(sep, np.float64),
        loser,
    )
    return loser


def associate_batch(db, source, batch, ids, matcher, prefetch=None) -> tuple[Delta, dict]:
    """Match a batch's detections to objects (``source(index)`` gives a partition's current
    state; ``prefetch(indices)``, if given, is told every partition about to be asked for)
    and return the file's changes and counts.

    ``matcher`` keeps the positions of the partition states it has seen (see
    :meth:`Matcher.match_partitions`): a state asked for again must have changed only by
    the Delta returned for it (applied before the next call, or not at all); any other
    change needs a new state object (as PartitionBuilder, a checkpoint, or a re-read give).
    """
    images = batch.images.copy()
    images["IMAGE_ID"] = ids
    m = batch.measure  # read only: each partition's rows are taken out by _group_rows
    counts = {"new": 0, "matched": 0, "blends": 0}
    if len(m) == 0:
        return Delta(images), counts
    image_id = ids[batch.meas_image]
    sky = db.skytable
    q = _Queries(m["RA"], m["DEC"])  # RA modulo 360: the same partitions
    home, touched = sky.lookup_near(q.ra, q.dec, 2 * matcher.radius / 3600.0)
    if prefetch is not None:
        prefetch(touched)
    states = [source(int(i)) for i in touched]
    boxes = np.stack([sky.r_min[touched], sky.r_max[touched], sky.d_min[touched],
                      sky.d_max[touched]], axis=1)  # fmt: skip
    part_of, obj_row, sep = matcher._match_prepared(q, states, boxes, touched)
    sizes = np.array([p.nobjects for p in states], np.int64)
    first = np.zeros(len(sizes), np.int64)
    np.cumsum(sizes[:-1], out=first[1:])
    idx = np.where(part_of >= 0, first[np.maximum(part_of, 0)] + obj_row, -1)
    loser = one_per_image(idx, image_id, sep)
    matched = (idx >= 0) & ~loser
    group = np.where(matched, part_of, np.searchsorted(touched, home))  # position in touched
    row = np.where(matched, obj_row, -1)
    counts.update(new=int((~matched).sum()), matched=int(matched.sum()), blends=int(loser.sum()))
    groups, changed = _group_rows(touched, states, batch, image_id, loser, group, row)
    matcher.note_changes(touched, states, changed)
    return Delta(images, groups), counts


def _words(dtype: np.dtype, names, kind=np.uint32) -> np.ndarray:
    """Word (uint32) indices of the fields in a row (two per float64); the schemas keep
    these fields native ``kind`` at 4-byte offsets in rows of whole words."""
    if dtype.itemsize % 4 or any(
        dtype.fields[n][0] != np.dtype(kind) or dtype.fields[n][1] % 4 for n in names
    ):
        raise TypeError(f"fields {names} are not whole words of {dtype}")
    size = np.dtype(kind).itemsize // 4
    return np.array([dtype.fields[n][1] // 4 + w for n in names for w in range(size)], np.int64)


_MEASURE_WORDS = _words(MEASURE.dtype, ("IMAGE_ID", "AVE_REF", "CAT_ID", "OBJ_ID", "DB_FLAGS"))
_MEASURE_POS = _words(MEASURE.dtype, ("RA", "DEC"), np.float64)
_AVERAGE_WORDS = _words(AVERAGE.dtype, ("OBJ_ID", "CAT_ID"))
_AVERAGE_POS = _words(AVERAGE.dtype, ("RA", "DEC"), np.float64)
_AVERAGE_TEMPLATE = AVERAGE.empty(1).view(np.uint32).copy()


def _group_rows(touched, states, batch, image_id, loser, group, row) -> tuple[list, list]:
    """Per target partition (``touched[g]``, state ``states[g]``, ascending): new objects
    for unmatched detections, and the Measure and Lensing rows with their image and
    objects set (``loser``: flagged as blends). ``group``/``row`` give each detection's
    partition (position in ``touched``) and Average row (-1: a new object). Also returns,
    per partition, the existing rows the Delta changes."""
    m = np.ascontiguousarray(batch.measure, MEASURE.dtype)
    order, bounds = group_order(group.astype(np.int64), len(touched))
    averef = np.empty(len(m), np.int64)
    out = np.empty(len(m), MEASURE.dtype)
    lens_group = group[batch.lens_meas]
    lorder, lbounds = group_order(lens_group.astype(np.int64), len(touched))
    result, changed = [], []
    for g, p in enumerate(touched.tolist()):
        s, e = int(bounds[g]), int(bounds[g + 1])
        part = states[g]
        sel = order[s:e]
        refs = row[sel]
        new = refs < 0
        changed.append(refs[~new])
        if s == e:
            continue
        n_new = int(new.sum())
        refs[new] = part.nobjects + np.arange(n_new)
        averef[sel] = refs
        fresh = sel[new]
        new_avg = np.empty(n_new, AVERAGE.dtype)
        new_objects(_as_words(m), fresh, _as_words(new_avg), _AVERAGE_TEMPLATE, _MEASURE_POS,
                    _AVERAGE_POS, _AVERAGE_WORDS, part.next_objid, p)  # fmt: skip
        mm = out[s:e]
        take_rows(_as_words(m), sel, _as_words(mm), _MEASURE_WORDS, image_id, loser,
                  np.uint32(MeasFlags.BLEND_OBJ), refs, _obj_ids(part, refs), p)  # fmt: skip
        lsel_rows = lorder[lbounds[g] : lbounds[g + 1]]  # a lensing row goes with its detection
        lsel = batch.lens_meas[lsel_rows]
        ll = batch.lensing[lsel_rows]
        ll["AVE_REF"], ll["CAT_ID"], ll["IMAGE_ID"] = averef[lsel], p, image_id[lsel]
        ll["OBJ_ID"] = _obj_ids(part, averef[lsel])
        result.append((p, new_avg, mm, ll))
    return result, changed


def _as_words(a: np.ndarray) -> np.ndarray:
    """A contiguous structured array's rows as uint32 words (a view)."""
    return a.view(np.uint32).reshape(len(a), a.dtype.itemsize // 4)


def _obj_ids(part, refs: np.ndarray) -> np.ndarray:
    """objIDs of Average rows ``refs``: existing objects' from the partition, new ones
    (rows from ``nobjects`` on) numbered on from its counter."""
    n = part.nobjects
    old = refs < n
    out = part.next_objid + (refs - n)
    out[old] = part.average["OBJ_ID"][refs[old]]
    return out
