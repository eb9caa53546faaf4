"""Benchmark of relastro at the relphot benchmark's scale: 10k chip images, 1M stars, 20M
measurements (plus a Gaia-like reference for the bright stars).

``build`` writes the database directly through the engine (as ``tools/querydata.py`` does:
addstar would take an hour at this size): 167 exposures of the 60-chip GPC1 camera over 3
years, boresights uniform in a 7 x 7 deg box, stars with proper motions (N(0, 10) mas/yr,
at most 100) and parallaxes (Exp(1 mas), at most 50), centroid noise from S/N (5 mas floor),
a random order-3 distortion up to 0.5 arcsec per chip image, and the truth in ``truth.npz``.
``run`` times relastro in a fresh process (peak RSS from getrusage) and checks the accuracy
against the truth. Results go to ``bench/relastro_results.md`` by hand.

Usage: python bench/relastro.py build DIR [--stars N] [--exposures N]
       python bench/relastro.py run DIR [--iterations N]
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
from dvo.tools.simulate.camera import PITCH_X, PITCH_Y, TERMS, chip_crpix, random_poly

from dvo import codecs, layout
from dvo.builder import attach
from dvo.database import create_database, open_database
from dvo.gpc1 import CHIP_NX, CHIP_NY, CHIPS, PIXEL_SCALE, chip_code
from dvo.partition import Partition, write_partition
from dvo.photometry import ZERO_POINT
from dvo.relastro.model import chip_uv, offsets_to_sky, sky_to_offsets
from dvo.relastro.parallax import earth_positions, parallax_factors
from dvo.schema import AVERAGE, IMAGE, LENSING, MEASURE
from dvo.stats import partition_stats
from dvo.times import UNIX_MJD
from dvo.transaction import Transaction

RA0, DEC0, SIDE = 150.0, 20.0, 7.0
MJD0, SPAN = 57000.0, 3 * 365.25
REF_MJD = 57388.5  # J2016
GAIA = 2100
CHIP_XY = np.array(CHIPS)


def _stars(rng, n: int) -> dict:
    ra = RA0 + rng.uniform(-SIDE / 2, SIDE / 2, n) / np.cos(np.radians(DEC0))
    dec = DEC0 + rng.uniform(-SIDE / 2, SIDE / 2, n)
    mag = np.log10(10 ** (0.3 * 15) + rng.uniform(0, 1, n) * (10**6.6 - 10**4.5)) / 0.3
    pm = rng.normal(0, 10, (n, 2))
    pm *= np.minimum(1, 100 / np.hypot(pm[:, 0], pm[:, 1]))[:, None]
    plx = np.minimum(rng.exponential(1.0, n), 50.0)
    return {"ra": ra, "dec": dec, "mag": mag, "pm": pm, "plx": plx}


def _exposures(rng, n: int) -> dict:
    mjd = np.sort(MJD0 + rng.uniform(0, SPAN, n))
    return {
        "ra": RA0 + rng.uniform(-SIDE / 2, SIDE / 2, n) / np.cos(np.radians(DEC0)),
        "dec": DEC0 + rng.uniform(-SIDE / 2, SIDE / 2, n),
        "mjd": mjd,
        "earth": earth_positions(mjd),
        "dist": random_poly(rng, (n, len(CHIPS), 2), 3, 0.5),
    }


def _observe(rng, s: dict, e: dict, j: int) -> dict:
    """Detections of exposure j: star index, chip slot, pixels, errors, observed RA/Dec."""
    near = np.abs(s["dec"] - e["dec"][j]) < 2.0
    idx = np.flatnonzero(near)
    dt = (e["mjd"][j] - REF_MJD) / 365.25
    pa, pd = parallax_factors(s["ra"][idx], s["dec"][idx], e["earth"][j][None, :])
    dxi = (s["pm"][idx, 0] * dt + s["plx"][idx] * pa) / 1e3
    deta = (s["pm"][idx, 1] * dt + s["plx"][idx] * pd) / 1e3
    ra, dec = offsets_to_sky(dxi, deta, s["ra"][idx], s["dec"][idx])
    xi, eta = sky_to_offsets(ra, dec, e["ra"][j], e["dec"][j])  # arcsec from boresight
    lx, ly = -xi / PIXEL_SCALE, eta / PIXEL_SCALE  # posangle 0: CD = s * diag(-1, 1)
    cx, cy = np.floor(lx / PITCH_X + 4).astype(int), np.floor(ly / PITCH_Y + 4).astype(int)
    x = lx - (cx - 3.5) * PITCH_X + (CHIP_NX - 1) / 2
    y = ly - (cy - 3.5) * PITCH_Y + (CHIP_NY - 1) / 2
    slot_of = np.full((8, 8), -1)
    slot_of[CHIP_XY[:, 0], CHIP_XY[:, 1]] = np.arange(len(CHIPS))
    inside = (cx >= 0) & (cx < 8) & (cy >= 0) & (cy < 8)
    slot = np.where(inside, slot_of[np.clip(cx, 0, 7), np.clip(cy, 0, 7)], -1)
    ok = (slot >= 0) & (x >= 0) & (x <= CHIP_NX - 1) & (y >= 0) & (y <= CHIP_NY - 1)
    idx, slot, x, y, xi, eta = idx[ok], slot[ok], x[ok], y[ok], xi[ok], eta[ok]
    snr = 5 * 10 ** (-0.4 * (s["mag"][idx] - 22))
    sig = np.hypot(0.66 / snr, 0.005)
    u, v = chip_uv(x, y, CHIP_NX, CHIP_NY)
    basis = np.stack([u**a * v**b for a, b in TERMS], 1)
    dist = e["dist"][j][slot]  # (n, 2, 10)
    ox = (basis * dist[:, 0]).sum(1) + rng.normal(0, 1, len(idx)) * sig
    oy = (basis * dist[:, 1]).sum(1) + rng.normal(0, 1, len(idx)) * sig
    x_obs, y_obs = x - ox / PIXEL_SCALE, y + oy / PIXEL_SCALE
    ra_obs, dec_obs = offsets_to_sky(xi + ox, eta + oy, e["ra"][j], e["dec"][j])
    return {"star": idx, "slot": slot, "x": x_obs, "y": y_obs, "sig": sig, "ra": ra_obs,
            "dec": dec_obs}  # fmt: skip


def _images(e: dict) -> np.ndarray:
    n = len(e["mjd"])
    img = IMAGE.empty(n * len(CHIPS) + 1)
    exp, slot = np.divmod(np.arange(n * len(CHIPS)), len(CHIPS))
    chip = img[:-1]
    chip["IMAGE_ID"] = np.arange(1, len(chip) + 1)
    chip["PHOTCODE"] = [chip_code("r", int(a), int(b)) for a, b in CHIP_XY[slot]]
    crpix = np.array([chip_crpix(int(a), int(b)) for a, b in CHIP_XY])[slot]
    chip["CRVAL1"], chip["CRVAL2"] = e["ra"][exp], e["dec"][exp]
    chip["CRPIX1"], chip["CRPIX2"] = crpix[:, 0], crpix[:, 1]
    chip["CDELT1"] = chip["CDELT2"] = PIXEL_SCALE / 3600
    chip["PC1_1"], chip["PC2_2"], chip["PC1_2"], chip["PC2_1"] = -1.0, 1.0, 0.0, 0.0
    chip["NX"], chip["NY"], chip["EXP_ID"] = CHIP_NX, CHIP_NY, exp + 1
    chip["MJD_OBS"] = e["mjd"][exp]
    chip["TZERO"] = ((e["mjd"][exp] - UNIX_MJD) * 86400).astype(np.int64)
    chip["RA_CENTER"], chip["DEC_CENTER"] = e["ra"][exp], e["dec"][exp]  # (approximate)
    chip["EXPTIME"], chip["SECZ"] = 40.0, 1.1
    chip["NAME"] = [f"bench.{a}.{b}".encode() for a, b in zip(exp, slot, strict=True)]
    img["IMAGE_ID"][-1], img["PHOTCODE"][-1], img["EXP_ID"][-1] = len(chip) + 1, GAIA, -1
    img["NAME"][-1] = b"gaia-like"
    return img


def _measure(s, det, images, db, ref_image) -> np.ndarray:
    """MEASURE rows of detections (dict of arrays) plus their AVE_REF set by the caller."""
    n = len(det["star"])
    m = MEASURE.empty(n)
    img_row = det["image_row"]
    m["RA"], m["DEC"] = det["ra"], det["dec"]
    m["X_CCD"], m["Y_CCD"] = det["x"], det["y"]
    m["X_CCD_ERR"] = m["Y_CCD_ERR"] = np.clip(np.round(det["sig"] / PIXEL_SCALE * 100), 1, 32767)
    m["PLTSCALE"] = PIXEL_SCALE
    m["MAG"] = s["mag"][det["star"]] + ZERO_POINT - 2.5 * np.log10(40.0)
    m["MAG_ERR"] = 0.01
    m["AIRMASS"], m["MCAL_PSF"], m["M_FLAT"] = 1.1, 0.0, 0.0
    m["IMAGE_ID"], m["PHOTCODE"] = images["IMAGE_ID"][img_row], images["PHOTCODE"][img_row]
    m["TIME"] = images["TZERO"][img_row]
    return m


def _reference(rng, s: dict, sel: np.ndarray) -> dict:
    """Gaia-like rows (dict) of the bright stars among ``sel``."""
    b = sel[s["mag"][sel] < 18.5]
    sig = np.hypot(0.015, 0.5 * 10 ** (0.3 * (s["mag"][b] - 20)))  # mas
    g = rng.normal(size=(len(b), 5))
    ra, dec = offsets_to_sky(g[:, 0] * sig / 1e3, g[:, 1] * sig / 1e3, s["ra"][b], s["dec"][b])
    return {"star": b, "ra": ra, "dec": dec, "sig": sig,
            "pm": s["pm"][b] + g[:, 2:4] * 1.1 * sig[:, None],
            "plx": s["plx"][b] + g[:, 4] * 1.25 * sig}  # fmt: skip


def _ref_measure(r: dict, ref_image: np.void) -> np.ndarray:
    m = MEASURE.empty(len(r["star"]))
    m["RA"], m["DEC"] = r["ra"], r["dec"]
    m["X_CCD_ERR"] = m["Y_CCD_ERR"] = np.clip(np.round(r["sig"] * 100), 1, 32767)
    m["PLTSCALE"], m["PHOTCODE"], m["IMAGE_ID"] = 0.001, GAIA, ref_image["IMAGE_ID"]
    m["TIME"] = int((REF_MJD - UNIX_MJD) * 86400)
    m["MAG"], m["MAG_ERR"], m["AIRMASS"] = 18.0 + ZERO_POINT, 0.001, 1.0
    m["X_FIX"], m["Y_FIX"] = r["pm"][:, 0], r["pm"][:, 1]
    m["X_OFF_KH"] = m["Y_OFF_KH"] = 1.1 * r["sig"]
    m["X_OFF_DCR"], m["Y_OFF_DCR"] = r["plx"], 1.25 * r["sig"]
    return m


def _partition(db, index, stars_sel, s, det, images, rng) -> Partition:
    """One partition: its stars as objects (EXT_ID = star index), detections and reference."""
    part = Partition(int(index), str(db.skytable.name[index]), db.nsecfilt)
    ave = AVERAGE.empty(len(stars_sel))
    ave["RA"], ave["DEC"] = s["ra"][stars_sel], s["dec"][stars_sel]
    ave["OBJ_ID"], ave["CAT_ID"], ave["EXT_ID"] = np.arange(len(stars_sel)), index, stars_sel
    lut = {"rows": np.searchsorted(stars_sel, det["star"])}
    m = _measure(s, det, images, db, images[-1])
    r = _reference(rng, s, stars_sel)
    mr = _ref_measure(r, images[-1])
    m = np.concatenate([m, mr])
    m["AVE_REF"] = np.concatenate([lut["rows"], np.searchsorted(stars_sel, r["star"])])
    m["OBJ_ID"], m["CAT_ID"] = m["AVE_REF"], index
    m["DET_ID"] = np.arange(len(m))
    return attach(part, ave, m, LENSING.empty(0), db.photcodes)


def build(out: Path, n_stars: int, n_exp: int, seed: int = 1) -> None:
    """Write the benchmark database and its truth under ``out``."""
    rng = np.random.default_rng(seed)
    s, e = _stars(rng, n_stars), _exposures(rng, n_exp)
    t0 = time.perf_counter()
    dets = [_observe(rng, s, e, j) for j in range(n_exp)]
    for j, d in enumerate(dets):
        d["image_row"] = j * len(CHIPS) + d.pop("slot")
    det = {k: np.concatenate([d[k] for d in dets]) for k in dets[0]}
    del dets
    print(f"observed {len(det['star']):,} detections in {time.perf_counter() - t0:.0f} s")
    db = create_database(out / "db")
    images = _images(e)
    where = db.skytable.lookup(s["ra"], s["dec"])
    order = np.argsort(where[det["star"]], kind="stable")
    det = {k: v[order] for k, v in det.items()}
    det_part = where[det["star"]]
    stats = []
    with db.writer(), Transaction(db.catdir) as tx:
        for index in np.unique(where).tolist():
            lo, hi = np.searchsorted(det_part, [index, index + 1])
            sub = {k: v[lo:hi] for k, v in det.items()}
            part = _partition(db, index, np.flatnonzero(where == index), s, sub, images, rng)
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
    np.savez(out / "truth.npz", pm=s["pm"], plx=s["plx"], mag=s["mag"], dist=e["dist"])
    print(f"built {out / 'db'} in {time.perf_counter() - t0:.0f} s")


def _accuracy(db, truth) -> dict:
    """pm/plx errors of parallax-fitted objects against truth, in units of reported errors."""
    out = {}
    cols = {"average": ["U_RA", "PAR", "V_RA_ERR", "PAR_ERR", "FLAGS", "EXT_ID"]}
    parts = [db.partition(i, kinds=("average",), columns=cols).average for i in db.populated()]
    ave = np.concatenate(parts)
    par = (ave["FLAGS"] & 4) != 0
    a, star = ave[par], ave["EXT_ID"][par]
    for name, col, err, true in (("pm_ra", "U_RA", "V_RA_ERR", truth["pm"][:, 0]),
                                 ("parallax", "PAR", "PAR_ERR", truth["plx"])):  # fmt: skip
        d = a[col] * 1e3 - true[star]
        out[name] = {"n": int(len(d)), "mean": float(d.mean()), "rms": float(d.std()),
                     "pull_rms": float(np.sqrt(np.mean((d / (a[err] * 1e3)) ** 2)))}  # fmt: skip
    return out


def run(out: Path, iterations: int) -> None:
    """Time relastro on the benchmark database and print figures."""
    import logging

    from dvo.relastro import relastro

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    db = open_database(out / "db")
    t0, c0 = time.perf_counter(), time.process_time()
    report = relastro(db, iterations=iterations, report_dir=out / "report")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(report.summary())
    print(f"wall {wall:.0f} s, cpu {cpu:.0f} s, peak RSS {peak:.2f} GB, "
          f"{report.n_measures:,} measures, {report.n_chips:,} chips, "
          f"{report.iterations} iterations")  # fmt: skip
    for h in report.history:
        print(h)
    print(report.residuals["bright"], report.residuals["all"])
    print(_accuracy(db, np.load(out / "truth.npz")))


def main() -> None:
    """Parse arguments and build or run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("what", choices=["build", "run"])
    p.add_argument("out", type=Path)
    p.add_argument("--stars", type=int, default=1_000_000)
    p.add_argument("--exposures", type=int, default=167)
    p.add_argument("--iterations", type=int, default=20)
    a = p.parse_args()
    if a.what == "build":
        build(a.out, a.stars, a.exposures)
    else:
        run(a.out, a.iterations)


if __name__ == "__main__":
    main()
