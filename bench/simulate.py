"""Benchmark of the survey simulator: detections written per second.

Runs a dense all-chip survey (the relphot preset at 20,000 stars/deg^2, ~140k detections per
exposure) into a temporary folder and prints the total rate (setup, smf files and truth.npz) and
the same per CPU-second (less sensitive to other work on the shared machine), with 1 and 2
worker processes. A tiny warm-up run first loads the cached numba kernels so compilation is
not timed.

Usage: python bench/simulate.py [--exposures N] [--density D] [--workers 1 2]

Last results (2026-11-21, 2 shared cores at load average ~8 from other work, so wall times
are 3-4x the CPU times): 30 exposures, 974,124 stars, 4,349,702 detections:
    1 worker: wall 21.3 s (204k det/s), cpu 6.84 s (636k det per cpu-second)
Per exposure in steady state (144,968 detections; cpu ms): simulate 60, pack records 19,
write 50, truth rows 10 -> 1.04M detections per cpu-second; the rest of the cpu time is
the star catalogue (~0.8 s per million stars) and truth.npz (~0.6 s for 4.3M detections).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from dvo.tools.simulate import SurveyConfig, preset, simulate_survey


def run(n_exposures: int, density: float, workers: int) -> None:
    """Time one survey and print the rates."""
    with tempfile.TemporaryDirectory() as warm:
        simulate_survey(SurveyConfig(n_exposures=1, star_density=100.0), warm)
    config = preset("relphot", n_exposures=n_exposures, star_density=density)
    with tempfile.TemporaryDirectory() as out:
        t0, c0 = time.perf_counter(), time.process_time()
        truth = simulate_survey(config, out, workers=workers)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(truth.detections)
    print(
        f"{n_exposures} exposures x 60 chips, {len(truth.stars):,} stars, {n:,} detections, "
        f"{workers} worker(s)"
    )
    print(f"wall {wall:.2f} s: {n / wall:,.0f} detections/s (incl. star catalogue, truth.npz)")
    if workers == 1:
        print(f"cpu  {cpu:.2f} s: {n / cpu:,.0f} detections per cpu-second (all threads)")
    print(f"load average while running: {os.getloadavg()[0]:.1f} (2 shared cores)")


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exposures", type=int, default=20)
    p.add_argument("--density", type=float, default=20000.0)
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = p.parse_args()
    for workers in args.workers:
        run(args.exposures, args.density, workers)


if __name__ == "__main__":
    main()
