"""Synthetic databases for query tests and benchmarks, written through the engine directly.

addstar associates detections one file at a time, which is right for real data and slow for
building a multi-million object database for a benchmark. :func:`build_database` instead knows
the answer (which detections belong to which object) and writes each partition with the
engine's own primitives: :func:`dvo.builder.attach` (sorted measures, recomputed averages),
:func:`dvo.partition.write_partition`, :mod:`dvo.stats` and one
:class:`dvo.transaction.Transaction`, so the result is an ordinary database.

Objects get ``n_epochs`` visits; each visit observes every filter on one GPC1 chip image, and
each detection is kept with probability ``detect``. Positions jitter by 50 mas, magnitudes by
their error, times are MJD 55000 + 3.1 days per epoch.

Examples
--------
>>> import numpy as np
>>> ra, dec = sky_positions(1000, np.random.default_rng(1))
>>> bool((ra >= 0).all() and (ra < 360).all() and (abs(dec) <= 90).all())
True
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dvo import codecs, layout
from dvo.builder import attach
from dvo.database import create_database
from dvo.gpc1 import chip_code
from dvo.partition import Partition, write_partition
from dvo.photometry import ZERO_POINT
from dvo.schema import AVERAGE, IMAGE, LENSING, MEASURE
from dvo.stats import STATS_VERSION, partition_stats
from dvo.times import mjd_to_time
from dvo.transaction import Transaction

__all__ = ["sky_positions", "patch_positions", "build_database"]

MJD0, CADENCE = 55000.0, 3.1


def sky_positions(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Uniform over the sphere, plus clusters at (0, 0) and both poles (a quarter each 1/8)."""
    k = n // 8
    ra = np.concatenate(
        [
            rng.uniform(0, 360, n - 3 * k),
            np.mod(rng.normal(0, 1.5, k), 360),
            rng.uniform(0, 360, 2 * k),
        ]
    )
    dec = np.concatenate(
        [
            np.degrees(np.arcsin(rng.uniform(-1, 1, n - 3 * k))),
            rng.normal(0, 1.5, k),
            90 - np.abs(rng.normal(0, 2, k)),
            -90 + np.abs(rng.normal(0, 2, k)),
        ]
    )
    return ra, np.clip(dec, -90, 90)


def patch_positions(n: int, rng, ra0: float, ra1: float, dec0: float, dec1: float):
    """Uniform (on the sphere) in an RA/Dec box."""
    s0, s1 = np.sin(np.radians(dec0)), np.sin(np.radians(dec1))
    return rng.uniform(ra0, ra1, n) % 360, np.degrees(np.arcsin(rng.uniform(s0, s1, n)))


def _images(n_epochs: int, filters: str) -> np.ndarray:
    nf = len(filters)
    img = IMAGE.empty(n_epochs * nf)
    e, f = np.divmod(np.arange(len(img)), nf)
    img["IMAGE_ID"] = np.arange(1, len(img) + 1)
    img["PHOTCODE"] = [chip_code(filters[k], 0, 1) for k in f]
    img["MJD_OBS"] = MJD0 + CADENCE * e + 0.01 * f
    img["TZERO"] = mjd_to_time(img["MJD_OBS"])[0]
    img["EXP_ID"] = 1 + e * nf + f
    img["EXPTIME"], img["SECZ"] = 30.0, 1.2
    img["NAME"] = [f"synthetic.{a}.{filters[b]}".encode() for a, b in zip(e, f, strict=True)]
    return img


def _measures(rng, ra, dec, mag, images, db, detect: float) -> np.ndarray:
    """Detections of the objects of one partition, rows (object, image) where detected."""
    nobj, nimg = len(ra), len(images)
    hit = rng.random((nobj, nimg)) < detect
    obj, im = np.nonzero(hit)
    m = MEASURE.empty(len(obj))
    jit = rng.normal(0, 0.05 / 3600, (2, len(obj)))
    m["RA"] = np.mod(ra[obj] + jit[0] / np.maximum(np.cos(np.radians(dec[obj])), 1e-3), 360)
    m["DEC"] = np.clip(dec[obj] + jit[1], -90, 90)
    codes = images["PHOTCODE"][im]
    slot = db.photcodes.sec_slot(codes)
    err = 0.01 + 0.02 * np.exp(mag[obj, slot] - 20)
    c_lam = db.photcodes.column("C_LAM", codes) * 0.001
    k = db.photcodes.column("K", codes)
    m["MAG"] = mag[obj, slot] + rng.normal(0, 1, len(obj)) * err + ZERO_POINT - c_lam - k * 0.2
    m["MAG_ERR"], m["AIRMASS"], m["MCAL_PSF"] = err, 1.2, 0.0
    m["PHOTCODE"], m["IMAGE_ID"] = codes, images["IMAGE_ID"][im]
    m["TIME"] = images["TZERO"][im]
    m["AVE_REF"] = obj
    m["X_CCD_ERR"] = m["Y_CCD_ERR"] = 5
    m["PLTSCALE"] = 0.25
    return m


def _partition(db, index, ra, dec, mag, images, rng, detect) -> Partition:
    part = Partition(int(index), str(db.skytable.name[index]), db.nsecfilt)
    ave = AVERAGE.empty(len(ra))
    ave["RA"], ave["DEC"] = ra, dec
    ave["OBJ_ID"], ave["CAT_ID"] = np.arange(len(ra)), index
    m = _measures(rng, ra, dec, mag, images, db, detect)
    m["OBJ_ID"], m["CAT_ID"] = m["AVE_REF"], index
    m["DET_ID"] = np.arange(len(m))
    return attach(part, ave, m, LENSING.empty(0), db.photcodes)


def build_database(
    path,
    ra,
    dec,
    *,
    n_epochs: int = 10,
    filters: str = "gri",
    detect: float = 0.9,
    seed: int = 1,
    scheme: str = "gsc",
    level: int = 3,
    progress=None,
):
    """Create a database at ``path`` holding one object at each (ra, dec) with measurements.

    Returns the opened :class:`dvo.database.Database`.
    """
    db = create_database(path, scheme=scheme, level=level, order=level)
    rng = np.random.default_rng(seed)
    ra, dec = np.asarray(ra, np.float64), np.asarray(dec, np.float64)
    mag = rng.uniform(14, 22, (len(ra), db.nsecfilt)).astype(np.float64)
    where = db.skytable.lookup(ra, dec)
    order = np.argsort(where, kind="stable")
    parts, starts = np.unique(where[order], return_index=True)
    bounds = np.append(starts, len(order))
    images = _images(n_epochs, filters)
    stats = []
    with db.writer(), Transaction(db.catdir) as tx:
        for k, index in enumerate(parts):
            sel = order[bounds[k] : bounds[k + 1]]
            prng = np.random.default_rng([seed, int(index)])
            part = _partition(db, index, ra[sel], dec[sel], mag[sel], images, prng, detect)
            st = db.skytable
            box = (st.r_min[index], st.r_max[index], st.d_min[index], st.d_max[index])
            write_partition(
                part,
                tx.stage,
                compression=db.settings["compression"],
                tile_rows=int(db.settings["tile_rows"]),
                bounds=box,
            )
            stats.append(partition_stats(part))
            if progress is not None:
                progress(1)
        _write_tables(db, tx, images, stats)
    return db


def _write_tables(db, tx, images, stats) -> None:
    comp = db.settings["compression"]
    codecs.write_table(
        tx.stage(layout.IMAGES),
        IMAGE.conform(images),
        compression=comp,
        extname=IMAGE.name,
        units=IMAGE.units,
        header={"IMAGEID": int(images["IMAGE_ID"].max()) + 1},
    )
    table = np.concatenate(stats) if stats else db.stats()
    codecs.write_table(
        tx.stage(layout.STATS),
        table,
        compression="none",
        extname="DVO_STATS",
        header={"STATSVER": STATS_VERSION},
    )


def main(argv=None) -> None:
    """``python -m dvo.tools.querydata OUT N_OBJECTS N_EPOCHS`` (a patch at RA 180, Dec 0)."""
    import sys

    out, n, epochs = (argv or sys.argv[1:])[:3]
    ra, dec = patch_positions(int(n), np.random.default_rng(3), 150.0, 210.0, -15.0, 15.0)
    build_database(Path(out), ra, dec, n_epochs=int(epochs))


if __name__ == "__main__":
    main()
