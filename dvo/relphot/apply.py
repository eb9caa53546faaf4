"""Write a relphot solution into the database, all in one transaction.

Images: MCAL_PSF = MCAL_APER (zero point without the flat), DMCAL, XM (reduced chi2 of the
image's residuals), N_FIT_PHOTOM (measurements used) and the relphot bits of FLAGS
(PHOTOM_NOCAL, PHOTOM_POOR, PHOTOM_FEW, replaced). Uncalibrated images keep their MCAL.
Measure rows of calibrated images: MCAL_PSF = MCAL_APER = the image's MCAL, M_FLAT = the flat
cell of the measurement's pixel. Then Average/SecFilt are recomputed (dvo.averages.recompute).
Every file is staged and committed at once, so an interruption leaves the database as it was.
"""

from __future__ import annotations

import numpy as np

from dvo import codecs, layout
from dvo.averages import recompute
from dvo.flags import ImageFlags
from dvo.partition import write_partition
from dvo.schema import IMAGE
from dvo.stats import merge_stats, partition_stats
from dvo.transaction import Transaction

from .run import Solution
from .select import flat_cell

__all__ = ["apply_solution", "updated_images"]

_BITS = np.uint32(ImageFlags.PHOTOM_NOCAL | ImageFlags.PHOTOM_POOR | ImageFlags.PHOTOM_FEW)


def updated_images(images: np.ndarray, sol: Solution) -> np.ndarray:
    """A copy of the Images table with the solution's columns written."""
    out = images.copy()
    rows = sol.model.row
    out["MCAL_PSF"][rows] = sol.mcal
    out["MCAL_APER"][rows] = sol.mcal
    cal = sol.calibrated
    out["DMCAL"][rows[cal]] = sol.dmcal[cal]
    out["XM"][rows] = sol.chi2
    out["N_FIT_PHOTOM"][rows] = np.minimum(sol.nstar, np.iinfo(np.int16).max)
    out["FLAGS"][rows] = (out["FLAGS"][rows] & ~_BITS) | sol.flags
    return out


def _update_measures(m: np.ndarray, sol: Solution) -> None:
    model = sol.model
    j = model.image_index(m["IMAGE_ID"])
    sel = np.flatnonzero(j >= 0)
    sel = sel[sol.calibrated[j[sel]]]
    if len(sel) == 0:
        return
    jj = j[sel]
    mcal = sol.mcal[jj].astype(np.float32)
    m["MCAL_PSF"][sel] = mcal
    m["MCAL_APER"][sel] = mcal
    if model.options.flat:
        g = model.options.flat_grid
        cell = flat_cell(model, jj, m["X_CCD"][sel], m["Y_CCD"][sel], g)
        m["M_FLAT"][sel] = sol.theta[model.fbase[jj] + cell]
    else:
        m["M_FLAT"][sel] = 0.0


def apply_solution(db, sol: Solution, *, progress=None) -> int:
    """Write ``sol`` into ``db`` in one transaction; returns the partitions rewritten.

    The caller holds the writer lock.
    """
    compression, tile_rows = db.settings["compression"], int(db.settings["tile_rows"])
    sky, photcodes = db.skytable, db.photcodes
    stats = db.stats()
    images = updated_images(db.images(), sol)
    next_id = db.next_image_id()
    new_rows = []
    with Transaction(db.catdir) as tx:
        for index in db.populated():
            part = db.partition(int(index))
            _update_measures(part.measure, sol)
            part = recompute(part, photcodes)
            bounds = (sky.r_min[index], sky.r_max[index], sky.d_min[index], sky.d_max[index])
            write_partition(
                part, tx.stage, compression=compression, tile_rows=tile_rows, bounds=bounds
            )
            new_rows.append(partition_stats(part))
            if progress is not None:
                progress(1)
        codecs.write_table(
            tx.stage(layout.IMAGES),
            IMAGE.conform(images),
            compression=compression,
            tile_rows=tile_rows,
            extname=IMAGE.name,
            units=IMAGE.units,
            header={"IMAGEID": next_id},
        )
        if new_rows:
            stats = merge_stats(stats, np.concatenate(new_rows))
        codecs.write_table(tx.stage(layout.STATS), stats, compression="none", extname="DVO_STATS")
    return len(new_rows)
