"""``python -m dvo.tools.simulate``: write a simulated survey and say what was written."""

from __future__ import annotations

import argparse
import json
import time

from .config import PRESETS, SimulateConfigError, preset
from .reference import reference_path
from .survey import simulate_survey
from .truth import TRUTH_FILE

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the simulator CLI."""
    p = argparse.ArgumentParser(prog="python -m dvo.tools.simulate", description=__doc__)
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--exposures", type=int, default=None, help="number of exposures")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--preset", choices=sorted(PRESETS), default="demo")
    p.add_argument("--format", choices=("PS1_V5", "PS1_V3"), default="PS1_V5")
    p.add_argument("--lensing", action="store_true", help="write XYnn.lensing tables")
    p.add_argument("--all-chips", action="store_true", help="use all 60 GPC1 chips")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any SurveyConfig field, VALUE as JSON (e.g. --set distortion=0.5)",
    )
    p.add_argument("--workers", type=int, default=1, help="processes for the exposure loop")
    p.add_argument("-v", "--verbose", action="store_true")
    return p


def _overrides(items: list[str]) -> dict:
    """``KEY=VALUE`` strings as a dict, VALUE parsed as JSON when it is JSON, else a string."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SimulateConfigError(f"--set expects KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
        if isinstance(out[key], list):
            out[key] = tuple(tuple(v) if isinstance(v, list) else v for v in out[key])
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code."""
    args = build_parser().parse_args(argv)
    overrides: dict = {"seed": args.seed, "smf_format": args.format, "with_lensing": args.lensing}
    if args.exposures is not None:
        overrides["n_exposures"] = args.exposures
    if args.all_chips:
        overrides["chips"] = None
    overrides.update(_overrides(args.set))
    try:
        config = preset(args.preset, **overrides)
    except TypeError as exc:
        raise SimulateConfigError(str(exc)) from exc
    t0 = time.perf_counter()
    truth = simulate_survey(config, args.out, workers=args.workers, verbose=args.verbose)
    dt = time.perf_counter() - t0
    n_det = len(truth.detections)
    n_img = int((~truth.images["dead"]).sum())
    print(
        f"wrote {len(truth.exposures)} smf files ({n_img} chip images, {n_det} detections, "
        f"{len(truth.stars)} stars) to {args.out} in {dt:.2f} s ({n_det / dt:,.0f} det/s)"
    )
    print(f"truth: {args.out}/{TRUTH_FILE}")
    if truth.reference is not None:
        path = reference_path(args.out, config.reference_format)
        print(f"reference catalogue: {path} ({len(truth.reference)} stars)")
    return 0
