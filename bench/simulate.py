"""Benchmark of the survey simulator: detections written per second.

Runs a dense all-chip survey (the relphot preset at 20,000 stars/deg^2, ~140k detections per
exposure) into a temporary folder and prints the total rate (setup, smf files and truth.npz) and
the steady-state rate of the exposure loop alone. A tiny warm-up run first loads the cached
numba kernels so compilation is not timed.

Usage: python bench/simulate.py [--exposures N] [--density D]
"""

from __future__ import annotations

import argparse
import tempfile
import time

from dvo.tools.simulate import SurveyConfig, preset, simulate_survey


def run(n_exposures: int, density: float) -> None:
    """Time one survey and print the rates."""
    with tempfile.TemporaryDirectory() as warm:
        simulate_survey(SurveyConfig(n_exposures=1, star_density=100.0), warm)
    config = preset("relphot", n_exposures=n_exposures, star_density=density)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        truth = simulate_survey(config, out)
        total = time.perf_counter() - t0
    n = len(truth.detections)
    print(f"{n_exposures} exposures x 60 chips, {len(truth.stars):,} stars, {n:,} detections")
    print(f"total {total:.2f} s: {n / total:,.0f} detections/s (incl. star catalogue, truth.npz)")


def main() -> None:
    """Parse arguments and run."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--exposures", type=int, default=20)
    p.add_argument("--density", type=float, default=20000.0)
    args = p.parse_args()
    run(args.exposures, args.density)


if __name__ == "__main__":
    main()
