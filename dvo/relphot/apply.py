"""Write a relphot solution into the database, all in one transaction.

Images: MCAL_PSF = MCAL_APER (zero point without the flat), DMCAL, XM (reduced chi2 of the
image's residuals), N_FIT_PHOTOM (measurements used) and the relphot bits of FLAGS
(PHOTOM_NOCAL, PHOTOM_POOR, PHOTOM_FEW, replaced). Uncalibrated images keep their MCAL.
Measure rows of calibrated images: MCAL_PSF = MCAL_APER = the image's MCAL, M_FLAT = the flat
cell of the measurement's pixel. Then Average/SecFilt are recomputed (dvo.averages.recompute).
Every file is staged and committed at once, so an interruption leaves the database as it was.
Partitions pushed to partition hosts are rewritten on their hosts instead, in a two-phase
write around the local commit (:mod:`dvo.hosts.twophase`): each partition is entirely before
or entirely after, and a write a host could not finish is recorded as pending.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dvo import codecs, layout
from dvo.averages import recompute
from dvo.flags import ImageFlags
from dvo.partition import Partition, write_partition
from dvo.schema import IMAGE
from dvo.stats import merge_stats, partition_stats
from dvo.transaction import Transaction

from .model import image_index
from .run import Solution
from .select import flat_cell

__all__ = ["apply_solution", "updated_images", "ApplyModel", "rewrite_partition"]

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


@dataclass(frozen=True)
class ApplyModel:
    """What rewriting a partition needs of a solution (arrays per chip image, by IMAGE_ID)."""

    image_id: np.ndarray
    calibrated: np.ndarray  # bool
    mcal: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    fbase: np.ndarray  # first flat column of the image's photcode (-1 without flat)
    theta: np.ndarray  # the parameters (flat cells)
    flat: bool
    flat_grid: int

    @classmethod
    def of(cls, sol: Solution) -> ApplyModel:
        """The apply inputs of a solution."""
        m = sol.model
        return cls(m.image_id, np.asarray(sol.calibrated, bool), sol.mcal, m.nx, m.ny, m.fbase,
                   sol.theta, bool(m.options.flat), int(m.options.flat_grid))  # fmt: skip

    def image_index(self, image_id: np.ndarray) -> np.ndarray:
        """Index of each IMAGE_ID among the chip images (-1 when not a chip image)."""
        return image_index(self.image_id, image_id)


def _update_measures(m: np.ndarray, am: ApplyModel) -> None:
    j = am.image_index(m["IMAGE_ID"])
    sel = np.flatnonzero(j >= 0)
    sel = sel[am.calibrated[j[sel]]]
    if len(sel) == 0:
        return
    jj = j[sel]
    mcal = am.mcal[jj].astype(np.float32)
    m["MCAL_PSF"][sel] = mcal
    m["MCAL_APER"][sel] = mcal
    if am.flat:
        cell = flat_cell(am, jj, m["X_CCD"][sel], m["Y_CCD"][sel], am.flat_grid)
        m["M_FLAT"][sel] = am.theta[am.fbase[jj] + cell]
    else:
        m["M_FLAT"][sel] = 0.0


def rewrite_partition(part: Partition, am: ApplyModel, photcodes) -> Partition:
    """The partition with the solution in its Measure rows and its averages recomputed."""
    _update_measures(part.measure, am)
    return recompute(part, photcodes)


def apply_solution(db, sol: Solution, *, progress=None, hosts=None) -> int:
    """Write ``sol`` into ``db`` in one transaction; returns the partitions rewritten.

    The caller holds the writer lock. With ``hosts`` (a :class:`dvo.hosts.twophase.HostWrite`)
    the partitions pushed to partition hosts are rewritten there, in two phases around the
    local commit; the others, Images and the statistics index are written here.
    """
    compression, tile_rows = db.settings["compression"], int(db.settings["tile_rows"])
    sky, photcodes = db.skytable, db.photcodes
    am = ApplyModel.of(sol)
    populated = [int(i) for i in db.populated()]
    remote = hosts.remote(populated) if hosts is not None else []
    rows: dict[int, np.ndarray] = {}
    tx = Transaction(db.catdir)
    try:
        if remote:
            from .remote import PrepareTask

            prepared = hosts.prepare(PrepareTask(am, db.nsecfilt, sky.name), remote)
            rows.update({i: p.stats for i, p in prepared.items()})
            if progress is not None:
                progress(len(remote))
        for index in sorted(set(populated) - set(remote)):
            part = rewrite_partition(db.partition(index), am, photcodes)
            bounds = (sky.r_min[index], sky.r_max[index], sky.d_min[index], sky.d_max[index])
            write_partition(
                part, tx.stage, compression=compression, tile_rows=tile_rows, bounds=bounds
            )
            rows[index] = partition_stats(part)
            if progress is not None:
                progress(1)
        codecs.write_table(
            tx.stage(layout.IMAGES),
            IMAGE.conform(updated_images(db.images(), sol)),
            compression=compression,
            tile_rows=tile_rows,
            extname=IMAGE.name,
            units=IMAGE.units,
            header={"IMAGEID": db.next_image_id()},
        )
        stats = db.stats()
        if rows:
            stats = merge_stats(stats, np.concatenate([rows[i] for i in sorted(rows)]))
        codecs.write_table(tx.stage(layout.STATS), stats, compression="none", extname="DVO_STATS")
        if remote:
            hosts.stage_decision(tx)
    except BaseException:
        tx.abort()
        if remote and hosts.files:  # prepared on the hosts, but nothing decided here
            hosts.abort()
        raise
    tx.commit()  # the commit point (with the pending host write, if any)
    if remote:
        hosts.commit()
    return len(rows)
