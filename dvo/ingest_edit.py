"""Removing images' measurements from partitions (addstar ``--replace``).

Objects left without any measurement are removed and the remaining rows renumbered (AVE_REF);
objIDs of the remaining objects do not change.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from dvo.averages import recompute
from dvo.partition import Partition
from dvo.skytable import Cone

__all__ = ["remove_images", "drop_measures"]


def drop_measures(part: Partition, drop: np.ndarray, photcodes) -> Partition:
    """``part`` without the Measure rows in mask ``drop`` (and their Lensing rows), compacted."""
    measure = part.measure[~drop]
    gone = (part.measure["IMAGE_ID"][drop], part.measure["DET_ID"][drop])
    lens_drop = np.isin(part.lensing["IMAGE_ID"], gone[0]) & np.isin(
        part.lensing["DET_ID"], gone[1]
    )
    lensing = part.lensing[~lens_drop]
    nobj = part.nobjects
    keep_obj = np.bincount(measure["AVE_REF"].astype(np.int64), minlength=nobj)[:nobj] > 0
    new_row = np.cumsum(keep_obj) - 1
    measure = measure.copy()
    lensing = lensing.copy()
    measure["AVE_REF"] = new_row[measure["AVE_REF"].astype(np.int64)]
    lensing["AVE_REF"] = new_row[lensing["AVE_REF"].astype(np.int64)]
    secfilt = part.secfilt.reshape(nobj, part.nsecfilt)[keep_obj].reshape(-1)
    out = dataclasses.replace(
        part, average=part.average[keep_obj], secfilt=secfilt, measure=measure, lensing=lensing
    )
    return recompute(out, photcodes)


def remove_images(db, cache, images: np.ndarray, which: np.ndarray):
    """Remove the measurements of the images selected by mask ``which``.

    Returns the changed partitions (by index) and the Images table without those rows. The
    partitions searched are those within each image's footprint (centre, radius) plus twice
    the match radius.
    """
    ids = images["IMAGE_ID"][which]
    sky = db.skytable
    margin = 2 * db.match_radius / 3600.0
    candidates: set[int] = set()
    for ra, dec, rad in zip(
        images["RA_CENTER"][which],
        images["DEC_CENTER"][which],
        images["RADIUS"][which],
        strict=True,
    ):
        if np.isfinite(ra) and np.isfinite(dec):
            radius = min(float(np.nan_to_num(rad)) + margin, 180.0)
            candidates.update(
                int(i) for i in sky.partitions_in(Cone(float(ra), float(dec), radius))
            )
    changed = {}
    for index in sorted(candidates):
        part = cache.get(index)
        drop = np.isin(part.measure["IMAGE_ID"], ids)
        if drop.any():
            changed[index] = drop_measures(part, drop, db.photcodes)
    return changed, images[~which]
