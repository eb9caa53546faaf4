"""``simulate_survey``: stars, exposures, camera, then one vectorised pass per exposure.

Random streams are keyed by (seed, purpose[, exposure]) so a survey is reproducible and one
exposure does not depend on how many came before: 1 stars, 2 exposures, 4 camera and images,
3 per-exposure detections, 5 reference catalogue.
"""

from __future__ import annotations

import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dvo.gpc1 import FILTERS

from .camera import field_radius, random_poly
from .config import SurveyConfig
from .exposure import ChipSet, ExposureModel, simulate_exposure
from .reference import make_reference, write_reference
from .schedule import make_exposures
from .smf import write_atomic
from .stars import StarIndex, make_stars, ref_mjd
from .truth import DETECTION_DTYPE, IMAGE_DTYPE, TRUTH_FILE, Truth
from .writer import RowBuffers, smf_bytes

__all__ = ["simulate_survey", "smf_path"]

ZPT_ERR = 0.01  # mag, error of the header ZPT_OBS estimate


def smf_path(outdir: Path | str, exp_name: str) -> Path:
    """Path of an exposure's smf file."""
    return Path(outdir) / f"{exp_name}.smf"


def _camera(config: SurveyConfig, n_chips: int, rng: np.random.Generator):
    """Flat field (grid, smooth) and static distortion per chip."""
    a, c = config.flat_amplitude, config.flat_cells
    grid = rng.uniform(-a, a, (n_chips, c, c))
    smooth = random_poly(rng, (n_chips,), 2, config.flat_smooth_amplitude)
    static = random_poly(rng, (n_chips, 2), config.distortion_order, config.distortion)
    return grid, smooth, static


def make_images(config: SurveyConfig, exps: np.ndarray, chips: ChipSet, static: np.ndarray, rng):
    """One row per (exposure, chip) in IMAGE_DTYPE, exposure-major."""
    ne, nc = len(exps), len(chips.names)
    img = np.zeros(ne * nc, IMAGE_DTYPE)
    e = np.repeat(np.arange(ne), nc)
    k = np.tile(np.arange(nc), ne)
    for name in ("exp_index", "exp_name", "exp_id", "mjd", "airmass", "filter", "exptime"):
        img[name] = exps[name][e]
    for name in ("night", "cloudy", "dzp_exposure", "k_night"):
        img[name] = exps[name][e]
    img["chip"] = np.array(chips.names)[k]
    img["chip_index"] = k
    img["imageid"] = exps["exp_id"][e] * 100 + 10 * chips.cx[k] + chips.cy[k]
    img["dzp_chip"] = rng.normal(0.0, config.zp_chip_scatter, len(img))
    img["dzp"] = img["dzp_exposure"] + img["dzp_chip"]
    img["dead"] = rng.uniform(0.0, 1.0, len(img)) < config.dead_chip_fraction
    zp = np.array([FILTERS[f].zero_point for f in img["filter"]])
    kk = np.array([FILTERS[f].k for f in img["filter"]])
    img["zpt_err"] = ZPT_ERR
    img["zpt_obs"] = zp + kk * (img["airmass"] - 1) - img["dzp"] + rng.normal(0, ZPT_ERR, len(img))
    img["cerror"] = np.hypot(config.distortion + config.distortion_exposure, 0.02)
    per_image = random_poly(rng, (len(img), 2), 1, config.distortion_exposure)
    img["dist"] = static[k] + per_image
    return img


def _remove_stale(outdir: Path, names: set[str]) -> None:
    """Delete smf files of a previous simulation in ``outdir`` that this one does not rewrite.

    Only files listed in the previous ``truth.npz`` are touched; anything else is left alone.
    """
    try:
        old = np.load(outdir / TRUTH_FILE, allow_pickle=False)["exposures"]["exp_name"]
    except (OSError, KeyError, ValueError):
        return
    for name in set(map(str, old)) - names:
        smf_path(outdir, name).unlink(missing_ok=True)


def _detection_rows(exp: np.void, images: np.ndarray, det: dict) -> np.ndarray:
    """Truth rows (DETECTION_DTYPE) of one exposure's detections."""
    out = np.zeros(len(det["x"]), DETECTION_DTYPE)
    out["exp_index"] = exp["exp_index"]
    out["exp_id"] = exp["exp_id"]
    out["imageid"] = images["imageid"][det["chip"]]
    out["chip_index"] = det["chip"]
    for name in ("ipp_idet", "star_id", "x", "y", "ra_true", "dec_true"):
        out[name] = det[name]
    for name in ("pos_sig", "mag", "mag_true", "mag_sig"):
        out[name] = det[name]
    return out


@dataclass(frozen=True)
class _Run:
    """Everything the exposure loop needs (shared with forked workers)."""

    config: SurveyConfig
    outdir: Path
    chips: ChipSet
    radius: float
    stars: np.ndarray
    index: StarIndex
    exps: np.ndarray
    images: np.ndarray
    grid: np.ndarray
    smooth: np.ndarray


def _run_exposures(run: _Run, indices: list[int], verbose: bool = False):
    """Simulate and write exposures ``indices``; returns (truth rows, n_det per image)."""
    config, nc = run.config, len(run.chips.names)
    rows, ndet, t0 = [], np.zeros((len(indices), nc), np.int32), time.perf_counter()
    epoch, buffers = ref_mjd(config.ref_epoch), RowBuffers()
    with ThreadPoolExecutor(max_workers=1) as pool:  # writes overlap the next exposure
        pending = None
        for k, i in enumerate(indices):
            exp, img = run.exps[i], run.images[i * nc : (i + 1) * nc]
            model = ExposureModel(exp, ~img["dead"], img["dzp"], img["dist"], run.grid,
                                  run.smooth, epoch)  # fmt: skip
            det = simulate_exposure(config, run.chips, model, run.stars, run.index, run.radius)
            chunks = smf_bytes(
                config.smf_format, exp, run.chips, img, det, config.with_lensing, buffers, k % 2
            )
            if pending is not None:
                pending.result()
            pending = pool.submit(write_atomic, smf_path(run.outdir, str(exp["exp_name"])), chunks)
            ndet[k] = np.bincount(det["chip"], minlength=nc)
            rows.append(_detection_rows(exp, img, det))
            if verbose and (k + 1) % max(1, len(indices) // 10) == 0:
                print(f"{k + 1}/{len(indices)} exposures, {time.perf_counter() - t0:.1f} s")
        if pending is not None:
            pending.result()
    return rows, ndet


_RUN: _Run | None = None  # set in the parent just before forking workers


def _worker(indices: list[int]):
    assert _RUN is not None
    return _run_exposures(_RUN, indices)


def _run_parallel(run: _Run, workers: int):
    """The exposure loop over forked worker processes (exposure 0 first, in the parent)."""
    global _RUN
    rows, ndet = _run_exposures(run, [0])  # also loads the numba kernels before the fork
    rest = np.arange(1, len(run.exps))
    parts = [p.tolist() for p in np.array_split(rest, min(len(rest), 4 * workers))]
    _RUN = run
    try:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx) as pool:
            for r, n in pool.map(_worker, parts):
                rows += r
                ndet = np.concatenate([ndet, n])
    finally:
        _RUN = None
    return rows, ndet


def simulate_survey(
    config: SurveyConfig, outdir: Path | str, *, workers: int = 1, verbose: bool = False
) -> Truth:
    """Write ``outdir/<EXP_NAME>.smf`` for every exposure and ``outdir/truth.npz``.

    Parameters
    ----------
    config : SurveyConfig
        The survey.
    outdir : path
        Output folder (created if missing). smf files of a previous simulation written there
        (as listed by its truth.npz) that this survey does not rewrite are deleted.
    workers : int
        Processes for the exposure loop (forked; the result is identical for any number).
    verbose : bool
        Print one line per 10% of the exposures (single process only).

    Returns
    -------
    Truth
        The truth, as also saved in ``truth.npz``.
    """
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    chips = ChipSet.from_names(config.chip_names())
    radius = field_radius(chips.names) + 0.01
    stars = make_stars(config, radius)
    exps = make_exposures(config)
    _remove_stale(outdir, set(map(str, exps["exp_name"])))
    rng = np.random.default_rng([config.seed, 4])
    grid, smooth, static = _camera(config, len(chips.names), rng)
    images = make_images(config, exps, chips, static, rng)
    run = _Run(config, outdir, chips, radius, stars, StarIndex(stars), exps, images, grid, smooth)
    if workers > 1 and len(exps) > 1:
        rows, ndet = _run_parallel(run, workers)
    else:
        rows, ndet = _run_exposures(run, list(range(len(exps))), verbose)
    images["n_det"] = ndet.ravel()
    reference = make_reference(config, stars) if config.reference else None
    if reference is not None:
        write_reference(config, reference, outdir)
    truth = Truth(
        config, chips.names, stars, exps, images, np.concatenate(rows), grid, smooth, reference
    )
    truth.save(outdir)
    return truth
