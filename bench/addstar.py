"""Benchmark addstar: ingest simulated exposures into a growing database.

Prints the detections/s of each tenth of the exposures, the peak memory, and, measured in the
same run, a naive baseline: astropy ``search_around_sky`` association of the same detections
against the objects seen so far (association only, no file I/O).

The survey scans a strip of sky twice (two epochs), so each tenth adds new sky while the
second pass matches against the first: the rate should not fall as the database grows.

Before the timed run, three files are ingested in another process, so that numba compiles and
caches any kernel not yet cached (once per installation); the timed run loads them from the
cache, as every addstar run does.

    python bench/addstar.py [--exposures 100] [--density 14000] [--checkpoint N]
        [--compression ZSTD] [--out /tmp/dvo-bench-addstar]
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def simulate(out: Path, n_exposures: int, density: float):
    """Two passes along a strip at dec 20 deg, boresights 1.6 deg apart."""
    from dvo.tools.simulate import SurveyConfig, simulate_survey

    per_pass = max(n_exposures // 2, 1)
    strip = tuple((30.0 + 1.6 * i, 20.0) for i in range(per_pass))
    config = SurveyConfig(
        seed=11,
        pointings=strip,
        chips=None,
        n_exposures=n_exposures,
        filters="r",
        star_density=density,
        span_days=30.0,
        n_nights=2,
    )
    t0 = time.perf_counter()
    truth = simulate_survey(config, out)
    return sorted(out.glob("*.smf")), truth, time.perf_counter() - t0


_WARM_UP = """
import sys
from pathlib import Path
from dvo.database import create_database
from dvo.ingest import addstar
db = create_database(Path(sys.argv[1]), filters=("g", "r", "i", "z", "y"), compression=sys.argv[2])
addstar(db, [Path(f) for f in sys.argv[3:]])
"""


def warm_kernels(files: list[Path], db_path: Path, compression: str) -> float:
    """Ingest three files in another process first, so that numba compiles and caches its
    kernels there (once per installation) and the timed run loads them from the cache, as
    every addstar run does. In this process they would stay loaded, and the timed run would
    not pay the ~0.8 s of loading them."""
    shutil.rmtree(db_path, ignore_errors=True)
    t0 = time.perf_counter()
    # neighbours overlap, and the middle one starts the second pass over the first
    picked = sorted({str(files[k]) for k in (0, min(1, len(files) - 1), len(files) // 2)})
    cmd = [sys.executable, "-c", _WARM_UP, str(db_path), compression, *picked]
    subprocess.run(cmd, check=True)
    shutil.rmtree(db_path, ignore_errors=True)
    return time.perf_counter() - t0


def bench_dvo(
    files: list[Path], db_path: Path, compression: str, checkpoint: int | None
) -> tuple[list[tuple[int, float]], float]:
    """One addstar run over all files: (detections, seconds) per tenth of the files, and the
    seconds of the final checkpoint (included in the last tenth)."""
    from dvo.database import create_database
    from dvo.ingest import addstar

    shutil.rmtree(db_path, ignore_errors=True)
    db = create_database(db_path, filters=("g", "r", "i", "z", "y"), compression=compression)
    counts = [fitsio_rows(f) for f in files]
    stamps: list[float] = []
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    report = addstar(
        db, files, checkpoint=checkpoint, progress=lambda _: stamps.append(time.perf_counter())
    )
    end = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime - r0.ru_utime, r1.ru_stime - r0.ru_stime)
    assert not report.failed, report.failed
    tenth = max(len(files) // 10, 1)
    rows, prev = [], t0
    for start in range(0, len(files), tenth):
        stop = min(start + tenth, len(files))
        t = end if stop == len(files) else stamps[stop - 1]
        rows.append((sum(counts[start:stop]), t - prev))
        prev = t
    return rows, end - stamps[-1], cpu


def bench_astropy(files: list[Path], limit_seconds: float) -> tuple[int, float]:
    """Naive association with astropy: each exposure against all objects so far."""
    import fitsio
    from astropy import units as u
    from astropy.coordinates import SkyCoord, search_around_sky

    obj_ra, obj_dec = np.zeros(0), np.zeros(0)
    n_det, t0 = 0, time.perf_counter()
    for path in files:
        with fitsio.FITS(str(path)) as f:
            cols = [
                h.read(columns=["RA_PSF", "DEC_PSF"]) for h in f if h.get_extname().endswith(".psf")
            ]
        det = np.concatenate(cols)
        ra, dec = det["RA_PSF"].astype(float), det["DEC_PSF"].astype(float)
        if len(obj_ra):
            i, _, _, _ = search_around_sky(
                SkyCoord(ra * u.deg, dec * u.deg),
                SkyCoord(obj_ra * u.deg, obj_dec * u.deg),
                1 * u.arcsec,
            )
            new = np.ones(len(ra), bool)
            new[i] = False
        else:
            new = np.ones(len(ra), bool)
        obj_ra, obj_dec = np.r_[obj_ra, ra[new]], np.r_[obj_dec, dec[new]]
        n_det += len(ra)
        if time.perf_counter() - t0 > limit_seconds:
            break
    return n_det, time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--exposures", type=int, default=100)
    ap.add_argument("--density", type=float, default=14000.0, help="stars per deg^2")
    ap.add_argument("--checkpoint", type=int, default=None, help="files per checkpoint")
    ap.add_argument("--compression", default="default", help="database compression")
    ap.add_argument("--out", type=Path, default=Path("/tmp/dvo-bench-addstar"))
    args = ap.parse_args()
    smf_dir = args.out / f"smf-{args.exposures}-{int(args.density)}"
    if not smf_dir.exists():
        files, _, sim_s = simulate(smf_dir, args.exposures, args.density)
        n = sum(fitsio_rows(f) for f in files)
        print(
            f"simulated {len(files)} exposures, {n:,} detections in {sim_s:.1f} s "
            f"({n / sim_s:,.0f} detections/s)"
        )
    files = sorted(smf_dir.glob("*.smf"))
    warm_s = warm_kernels(files, args.out / "db-warm-up", args.compression)
    print(f"warm-up (3 files in another process; compiles kernels not cached): {warm_s:.1f} s")
    rows, final_s, (user_s, kernel_s) = bench_dvo(
        files, args.out / "db", args.compression, args.checkpoint
    )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    total_det = sum(r[0] for r in rows)
    total_s = sum(r[1] for r in rows)
    base_det, base_s = bench_astropy(files, limit_seconds=max(total_s, 30.0))
    print(
        f"\naddstar, {len(files)} exposures in one run, checkpoint "
        f"{args.checkpoint or 'at the end'}, compression {args.compression}"
    )
    print("| tenth | detections | seconds | detections/s |")
    print("|---|---|---|---|")
    for k, (n, s) in enumerate(rows, 1):
        print(f"| {k} | {n:,} | {s:.1f} | {n / s:,.0f} |")
    print(f"| all | {total_det:,} | {total_s:.1f} | {total_det / total_s:,.0f} |")
    print(f"(the last tenth includes the final checkpoint: {final_s:.1f} s)")
    print(f"\npeak memory (RSS): {peak:,.0f} MB")
    print(
        f"cpu time of the run: {user_s:.1f} s user, {kernel_s:.1f} s kernel (zeroing new "
        f"pages, copies to and from the page cache)"
    )
    print(
        f"baseline astropy search_around_sky (association only, same detections): "
        f"{base_det:,} detections in {base_s:.1f} s = {base_det / base_s:,.0f} detections/s"
    )
    print(
        f"dvo end to end / astropy association alone: "
        f"{(total_det / total_s) / (base_det / base_s):.2f}x"
    )


def fitsio_rows(path: Path) -> int:
    import fitsio

    with fitsio.FITS(str(path)) as f:
        return sum(h.get_nrows() for h in f if h.get_extname().endswith(".psf"))


if __name__ == "__main__":
    main()
