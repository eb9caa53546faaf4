"""Benchmark of relphot: 10k chip images, 1M stars, 20M measurements, against injected truth.

``build`` writes the database directly through the engine (addstar would take hours at this
size), as bench/relastro.py does: 167 exposures of the 60-chip GPC1 camera over 10 nights,
boresights uniform in a 7 x 7 deg box, per-exposure zero points N(0, 0.1) mag, 10% cloudy
exposures (+0.1..1 mag), per-night extinction k ~ N(0, 0.02) mag/airmass at airmass 1..2,
a +-20 mmag 2x2-cell flat per chip, photometric noise sqrt(4^2 + (20 * 10^(0.4 (m - 19)))^2)
mmag. ``run`` times relphot (peak RSS from getrusage) and compares with the truth.

Usage: python bench/relphot.py build DIR [--stars N] [--exposures N]
       python bench/relphot.py run DIR [--iterations N] [--dry-run]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
from dvo.tools.simulate.camera import PITCH_X, PITCH_Y

from dvo import codecs, layout
from dvo.builder import attach
from dvo.database import create_database, open_database
from dvo.gpc1 import CHIP_NX, CHIP_NY, CHIPS, PIXEL_SCALE, chip_code
from dvo.partition import Partition, write_partition
from dvo.photometry import ZERO_POINT
from dvo.relastro.model import sky_to_offsets
from dvo.schema import AVERAGE, IMAGE, LENSING, MEASURE
from dvo.stats import partition_stats
from dvo.times import UNIX_MJD
from dvo.transaction import Transaction

RA0, DEC0, SIDE = 150.0, 20.0, 7.0
MJD0, NIGHTS = 57000.0, 10
CHIP_XY = np.array(CHIPS)


def _stars(rng, n: int) -> dict:
    ra = RA0 + rng.uniform(-SIDE / 2, SIDE / 2, n) / np.cos(np.radians(DEC0))
    dec = DEC0 + rng.uniform(-SIDE / 2, SIDE / 2, n)
    mag = np.log10(10 ** (0.3 * 15) + rng.uniform(0, 1, n) * (10**6.6 - 10**4.5)) / 0.3
    return {"ra": ra, "dec": dec, "mag": mag}


def _exposures(rng, n: int) -> dict:
    night = np.sort(rng.integers(0, NIGHTS, n))
    airmass = rng.uniform(1.0, 2.0, n)
    k_night = rng.normal(0, 0.02, NIGHTS)
    cloudy = rng.uniform(0, 1, n) < 0.1
    dzp = rng.normal(0, 0.1, n) + cloudy * rng.uniform(0.1, 1.0, n)
    dzp -= k_night[night] * (airmass - 1)
    return {
        "ra": RA0 + rng.uniform(-SIDE / 2, SIDE / 2, n) / np.cos(np.radians(DEC0)),
        "dec": DEC0 + rng.uniform(-SIDE / 2, SIDE / 2, n),
        "mjd": MJD0 + night + rng.uniform(0.3, 0.6, n),
        "airmass": airmass,
        "cloudy": cloudy,
        "dzp": dzp,
    }


def _observe(s: dict, e: dict, j: int) -> dict:
    """Detections of exposure j: star index, chip slot and pixels."""
    idx = np.flatnonzero(np.abs(s["dec"] - e["dec"][j]) < 2.0)
    xi, eta = sky_to_offsets(s["ra"][idx], s["dec"][idx], e["ra"][j], e["dec"][j])
    lx, ly = -xi / PIXEL_SCALE, eta / PIXEL_SCALE
    cx, cy = np.floor(lx / PITCH_X + 4).astype(int), np.floor(ly / PITCH_Y + 4).astype(int)
    x = lx - (cx - 3.5) * PITCH_X + (CHIP_NX - 1) / 2
    y = ly - (cy - 3.5) * PITCH_Y + (CHIP_NY - 1) / 2
    slot_of = np.full((8, 8), -1)
    slot_of[CHIP_XY[:, 0], CHIP_XY[:, 1]] = np.arange(len(CHIPS))
    inside = (cx >= 0) & (cx < 8) & (cy >= 0) & (cy < 8)
    slot = np.where(inside, slot_of[np.clip(cx, 0, 7), np.clip(cy, 0, 7)], -1)
    ok = (slot >= 0) & (x >= 0) & (x <= CHIP_NX - 1) & (y >= 0) & (y <= CHIP_NY - 1)
    return {"star": idx[ok], "image_row": j * len(CHIPS) + slot[ok], "x": x[ok], "y": y[ok]}


def _images(e: dict, photcodes) -> np.ndarray:
    n = len(e["mjd"])
    img = IMAGE.empty(n * len(CHIPS))
    exp, slot = np.divmod(np.arange(len(img)), len(CHIPS))
    img["IMAGE_ID"] = np.arange(1, len(img) + 1)
    img["PHOTCODE"] = [chip_code("r", int(a), int(b)) for a, b in CHIP_XY[slot]]
    img["NX"], img["NY"], img["EXP_ID"] = CHIP_NX, CHIP_NY, exp + 1
    img["MJD_OBS"] = e["mjd"][exp]
    img["TZERO"] = ((e["mjd"][exp] - UNIX_MJD) * 86400).astype(np.int64)
    img["RA_CENTER"], img["DEC_CENTER"] = e["ra"][exp], e["dec"][exp]
    img["EXPTIME"], img["SECZ"] = 40.0, e["airmass"][exp]
    img["NAME"] = [f"bench.{a}.{b}".encode() for a, b in zip(exp, slot, strict=True)]
    return img


def _measure(rng, s, e, det, images, flat, photcodes) -> np.ndarray:
    m = MEASURE.empty(len(det["star"]))
    row = det["image_row"]
    exp, slot = np.divmod(row, len(CHIPS))
    code = images["PHOTCODE"][row]
    c_lam = photcodes.column("C_LAM", code).astype(np.float64)
    k = photcodes.column("K", code).astype(np.float64)
    mag = s["mag"][det["star"]]
    sig = np.hypot(0.004, 0.02 * 10 ** (0.4 * (mag - 19)))
    ix = np.clip(np.floor((det["x"] + 0.5) * 2 / CHIP_NX), 0, 1).astype(int)
    iy = np.clip(np.floor((det["y"] + 0.5) * 2 / CHIP_NY), 0, 1).astype(int)
    obs = mag + e["dzp"][exp] + flat[slot, iy, ix] + rng.normal(0, 1, len(m)) * sig
    x1 = e["airmass"][exp] - 1
    m["MAG"] = obs + ZERO_POINT - 0.001 * c_lam - k * x1
    m["MAG_ERR"], m["AIRMASS"] = sig, x1 + 1
    m["X_CCD"], m["Y_CCD"] = det["x"], det["y"]
    m["MCAL_PSF"] = m["MCAL_APER"] = m["M_FLAT"] = 0.0
    m["IMAGE_ID"], m["PHOTCODE"] = images["IMAGE_ID"][row], code
    m["TIME"] = images["TZERO"][row]
    m["RA"], m["DEC"] = s["ra"][det["star"]], s["dec"][det["star"]]
    return m


def _partition(db, index, stars_sel, m) -> Partition:
    part = Partition(int(index), str(db.skytable.name[index]), db.nsecfilt)
    ave = AVERAGE.empty(len(stars_sel))
    ave["OBJ_ID"], ave["CAT_ID"], ave["EXT_ID"] = np.arange(len(stars_sel)), index, stars_sel
    m["AVE_REF"] = np.searchsorted(stars_sel, m["AVE_REF"])
    m["OBJ_ID"], m["CAT_ID"], m["DET_ID"] = m["AVE_REF"], index, np.arange(len(m))
    return attach(part, ave, m, LENSING.empty(0), db.photcodes)


def build(out: Path, n_stars: int, n_exp: int, seed: int = 1) -> None:
    """Write the benchmark database and its truth under ``out``."""
    rng = np.random.default_rng(seed)
    s, e = _stars(rng, n_stars), _exposures(rng, n_exp)
    flat = rng.uniform(-0.02, 0.02, (len(CHIPS), 2, 2))
    t0 = time.perf_counter()
    dets = [_observe(s, e, j) for j in range(n_exp)]
    det = {k: np.concatenate([d[k] for d in dets]) for k in dets[0]}
    del dets
    print(f"observed {len(det['star']):,} detections in {time.perf_counter() - t0:.0f} s")
    db = create_database(out / "db")
    images = _images(e, db.photcodes)
    where = db.skytable.lookup(s["ra"], s["dec"])
    order = np.argsort(where[det["star"]], kind="stable")
    det = {k: v[order] for k, v in det.items()}
    det_part = where[det["star"]]
    stats = []
    with db.writer(), Transaction(db.catdir) as tx:
        for index in np.unique(where).tolist():
            lo, hi = np.searchsorted(det_part, [index, index + 1])
            sub = {k: v[lo:hi] for k, v in det.items()}
            m = _measure(rng, s, e, sub, images, flat, db.photcodes)
            m["AVE_REF"] = sub["star"]
            part = _partition(db, index, np.flatnonzero(where == index), m)
            part.average["RA"], part.average["DEC"] = (
                s["ra"][where == index],
                s["dec"][where == index],
            )
            st = db.skytable
            box = (st.r_min[index], st.r_max[index], st.d_min[index], st.d_max[index])
            write_partition(part, tx.stage, compression=db.settings["compression"],
                            tile_rows=int(db.settings["tile_rows"]), bounds=box)  # fmt: skip
            stats.append(partition_stats(part))
        codecs.write_table(tx.stage(layout.IMAGES), IMAGE.conform(images),
                           compression=db.settings["compression"], extname=IMAGE.name,
                           units=IMAGE.units, header={"IMAGEID": len(images) + 1})  # fmt: skip
        codecs.write_table(tx.stage(layout.STATS), np.concatenate(stats), compression="none",
                           extname="DVO_STATS")  # fmt: skip
    np.savez(out / "truth.npz", dzp=e["dzp"], cloudy=e["cloudy"], flat=flat)
    print(f"built {out / 'db'} ({len(det['star']):,} measures) in {time.perf_counter() - t0:.0f} s")


def _accuracy(report, truth) -> dict:
    sol = report.solution
    exp = sol.model.exposure
    slot = (sol.model.image_id - 1) % len(CHIPS)
    fit_flat = sol.flat().reshape(len(sol.model.flat_codes), -1).mean(1)
    code_row = np.searchsorted(sol.model.flat_codes, sol.model.photcode)
    true_flat = truth["flat"].reshape(len(CHIPS), -1).mean(1)
    err = sol.mcal + fit_flat[code_row] - truth["dzp"][exp] - true_flat[slot]
    cal = sol.calibrated
    err -= err[cal].mean()
    limit = sol.dmcal[cal]
    poor = (sol.flags & 2) != 0
    cloudy = truth["cloudy"][exp]
    return {
        "zp_rms_mmag": 1e3 * float(np.sqrt(np.mean(err[cal] ** 2))),
        "zp_limit_mmag": 1e3 * float(np.sqrt(np.mean(limit**2))),
        "calibrated": int(cal.sum()),
        "poor": int(poor.sum()),
        "poor_and_cloudy": int((poor & cloudy).sum()),
        "repeatability_mmag": {k: 1e3 * v for k, v in report.repeatability["bright"].items()},
    }


def run(out: Path, iterations: int, dry_run: bool) -> None:
    """Time relphot on the benchmark database and print figures."""
    import logging

    from dvo.relphot import relphot

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    db = open_database(out / "db")
    t0 = time.perf_counter()
    report = relphot(db, iterations=iterations, report_dir=out / "report", dry_run=dry_run)
    wall = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(report.summary())
    print(f"wall {wall:.0f} s (solve {report.seconds:.0f} s), peak RSS {peak:.2f} GB, "
          f"{len(report.iterations)} iterations")  # fmt: skip
    for h in report.iterations:
        print(h)
    print(_accuracy(report, np.load(out / "truth.npz")))


def main() -> None:
    """Parse arguments and build or run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["build", "run"])
    p.add_argument("out", type=Path)
    p.add_argument("--stars", type=int, default=1_000_000)
    p.add_argument("--exposures", type=int, default=167)
    p.add_argument("--iterations", type=int, default=8)
    p.add_argument("--dry-run", action="store_true")
    a = p.parse_args()
    if a.what == "build":
        build(a.out, a.stars, a.exposures)
    else:
        run(a.out, a.iterations, a.dry_run)


if __name__ == "__main__":
    main()
