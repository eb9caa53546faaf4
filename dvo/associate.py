"""Association: which existing object each detection belongs to.

:class:`Matcher` is the strategy (lsdb's ``KdTreeCrossmatch`` shape): ``validate`` checks the
inputs, ``match`` returns index arrays. :func:`one_per_image` enforces DVO's rule that an object
gets at most one measurement from an image: the closest detection wins and the others are
returned as losers, which addstar flags as blends and turns into objects of their own.
:func:`associate_batch` applies both to one input file against the partitions it touches and
groups the file's rows by target partition (a :class:`dvo.wal.Delta`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dvo._assoc_kernels import nearest_within
from dvo.errors import DvoError
from dvo.flags import MeasFlags
from dvo.partition import expand_ranges
from dvo.schema import AVERAGE, opaque
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

    def __post_init__(self) -> None:
        if not (np.isfinite(self.radius) and 0 < self.radius <= 3600):
            raise DvoError(f"match radius must be in (0, 3600] arcsec, got {self.radius}")

    @staticmethod
    def validate(ra: np.ndarray, dec: np.ndarray) -> None:
        """Raise DvoError unless positions are finite degrees with |dec| <= 90."""
        if not (np.isfinite(ra).all() and np.isfinite(dec).all()):
            raise DvoError("positions must be finite")
        if (np.abs(dec) > 90).any():
            raise DvoError("declinations must lie in [-90, 90]")

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
        sep[found] = np.degrees(2 * np.arcsin(np.sqrt(hav[found]))) * 3600.0
        return out, sep


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
    matched = np.flatnonzero(obj >= 0)
    if len(matched) == 0:
        return np.zeros(len(obj), bool)
    order = matched[np.lexsort((matched, sep[matched], image[matched], obj[matched]))]
    o, im = obj[order], image[order]
    dup = np.zeros(len(order), bool)
    dup[1:] = (o[1:] == o[:-1]) & (im[1:] == im[:-1])
    loser = np.zeros(len(obj), bool)
    loser[order[dup]] = True
    return loser


def associate_batch(db, source, batch, ids, matcher, prefetch=None) -> tuple[Delta, dict]:
    """Match a batch's detections to objects (``source(index)`` gives a partition's current
    state; ``prefetch(indices)``, if given, is told every partition about to be asked for)
    and return the file's changes and counts."""
    images = batch.images.copy()
    images["IMAGE_ID"] = ids
    m = batch.measure  # read only: each partition's rows are taken out by _group_rows
    counts = {"new": 0, "matched": 0, "blends": 0}
    if len(m) == 0:
        return Delta(images), counts
    image_id = ids[batch.meas_image]
    sky = db.skytable
    home = sky.lookup(m["RA"], m["DEC"])
    _, near = sky.near(m["RA"], m["DEC"], 2 * matcher.radius / 3600.0)
    touched = np.union1d(near, home).astype(np.int64)
    if prefetch is not None:
        prefetch(touched)
    parts = {int(i): source(int(i)) for i in touched}
    sizes = np.array([p.nobjects for p in parts.values()], np.int64)
    owner, obj_row = expand_ranges(np.zeros_like(sizes), sizes)
    obj_part = touched[owner]
    obj_ra = np.concatenate([p.average["RA"] for p in parts.values()])
    obj_dec = np.concatenate([p.average["DEC"] for p in parts.values()])
    idx, sep = matcher.match(m["RA"], m["DEC"], obj_ra, obj_dec)
    loser = one_per_image(idx, image_id, sep)
    idx[loser] = -1
    matched = idx >= 0
    # a sentinel at the end: idx = -1 (no match) picks it
    target = np.where(matched, np.append(obj_part, -1)[idx], home)
    row = np.append(obj_row, -1)[idx]
    counts.update(new=int((~matched).sum()), matched=int(matched.sum()), blends=int(loser.sum()))
    groups = _group_rows(parts, batch, image_id, loser, target, row)
    return Delta(images, groups), counts


def _group_rows(parts, batch, image_id, loser, target, row) -> list[tuple]:
    """Per target partition: new objects for unmatched detections, and the Measure and
    Lensing rows with their image and objects set (``loser``: flagged as blends).
    ``target``/``row`` give each detection's partition and Average row (-1: a new object)."""
    m = batch.measure
    order = np.argsort(target, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(target[order])) + 1)
    averef = np.empty(len(m), np.int64)
    lens_target = target[batch.lens_meas]
    result = []
    for sel in groups:
        p = int(target[sel[0]])
        part = parts[p]
        refs = row[sel].copy()
        new = refs < 0
        n_new = int(new.sum())
        refs[new] = part.nobjects + np.arange(n_new)
        averef[sel] = refs
        new_avg = AVERAGE.empty(n_new)
        new_avg["RA"], new_avg["DEC"] = m["RA"][sel][new], m["DEC"][sel][new]
        new_avg["OBJ_ID"] = part.next_objid + np.arange(n_new)
        new_avg["CAT_ID"] = p
        mm = opaque(m)[sel].view(m.dtype)
        mm["IMAGE_ID"], mm["AVE_REF"], mm["CAT_ID"] = image_id[sel], refs, p
        mm["OBJ_ID"] = _obj_ids(part, refs)
        mm["DB_FLAGS"][loser[sel]] |= np.uint32(MeasFlags.BLEND_OBJ)
        in_p = lens_target == p  # a lensing row goes where its detection went
        lsel = batch.lens_meas[in_p]
        ll = batch.lensing[in_p].copy()
        ll["AVE_REF"], ll["CAT_ID"], ll["IMAGE_ID"] = averef[lsel], p, image_id[lsel]
        ll["OBJ_ID"] = _obj_ids(part, averef[lsel])
        result.append((p, new_avg, mm, ll))
    return result


def _obj_ids(part, refs: np.ndarray) -> np.ndarray:
    """objIDs of Average rows ``refs``: existing objects' from the partition, new ones
    (rows from ``nobjects`` on) numbered on from its counter."""
    n = part.nobjects
    old = refs < n
    out = part.next_objid + (refs - n)
    out[old] = part.average["OBJ_ID"][refs[old]]
    return out
