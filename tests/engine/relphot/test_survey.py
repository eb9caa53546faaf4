"""relphot against the truth of the issue's simulated survey (200 exposures x 60 chips)."""

from __future__ import annotations

import numpy as np
from relphot_survey import image_truth

from dvo.flags import ImageFlags


def _solution(calibrated):
    db, report, truth = calibrated
    sol = report.solution
    images = db.images()[sol.model.row]
    return db, report, truth, sol, image_truth(images, truth)


def _chip_flat_means(sol, truth, pos):
    """Per image: mean of the fitted flat cells of its chip, and of the true flat cells."""
    flat = sol.flat().reshape(len(sol.model.flat_codes), -1).mean(axis=1)
    code_row = np.searchsorted(sol.model.flat_codes, sol.model.photcode)
    true_flat = truth.flat_grid.reshape(len(truth.flat_grid), -1).mean(axis=1)
    return flat[code_row], true_flat[truth.images["chip_index"][pos]]


def _statistical_limit(truth, pos, max_error: float) -> np.ndarray:
    """Per image: per-star noise / sqrt(stars), i.e. (sum 1/sigma^2)^-1/2 over its detections."""
    det = truth.detections
    ok = det["mag_sig"] <= max_error
    ids = truth.images["imageid"][pos]
    order = np.argsort(ids)
    where = np.searchsorted(ids, det["imageid"][ok], sorter=order)
    where = np.clip(where, 0, len(ids) - 1)
    hit = ids[order[where]] == det["imageid"][ok]
    w = np.bincount(order[where[hit]], weights=det["mag_sig"][ok][hit] ** -2.0, minlength=len(ids))
    return 1.0 / np.sqrt(w)


def test_zero_points_within_1p2_of_the_statistical_limit(calibrated):
    db, report, truth, sol, pos = _solution(calibrated)
    fit_flat, true_flat = _chip_flat_means(sol, truth, pos)
    # image mode pins each chip's flat mean to 0: a chip's level is part of its zero points
    err = (sol.mcal + fit_flat) - (truth.images["dzp"][pos] + true_flat)
    cal = sol.calibrated
    err = err - np.mean(err[cal])
    limit = _statistical_limit(truth, pos, sol.model.options.max_error)
    rms_err = float(np.sqrt(np.mean(err[cal] ** 2)))
    rms_limit = float(np.sqrt(np.mean(limit[cal] ** 2)))
    print(f"zero points: rms error {1e3 * rms_err:.2f} mmag, limit {1e3 * rms_limit:.2f} mmag")
    assert cal.sum() > 0.95 * len(cal)
    assert rms_err <= 1.2 * rms_limit


def test_bright_star_repeatability_reaches_the_noise_floor(calibrated):
    _, report, truth, *_ = _solution(calibrated)
    rep = report.repeatability["bright"]
    print({k: round(1e3 * v, 2) for k, v in rep.items()})
    assert rep["raw"] > 5 * rep["floor"]
    assert rep["after"] <= 1.1 * rep["floor"]
    # the floor itself: scatter of the injected noise of bright stars about their means
    det = truth.detections
    bright = det["mag_sig"] < report.solution.model.options.bright_error
    noise = (det["mag"] - det["mag_true"])[bright].astype(np.float64)
    star = det["star_id"][bright]
    _, inv, cnt = np.unique(star, return_inverse=True, return_counts=True)
    mean = np.bincount(inv, weights=noise) / cnt
    keep = cnt[inv] >= 3
    true_floor = np.sqrt(np.mean((noise - mean[inv])[keep] ** 2))
    assert abs(rep["floor"] / true_floor - 1) < 0.25


def test_flat_field_recovered_to_a_few_mmag(calibrated):
    _, _, truth, sol, pos = _solution(calibrated)
    g = sol.model.options.flat_grid
    assert truth.flat_grid.shape[-1] == g
    fit = sol.flat()
    chip = np.array([truth.chip_index(f"XY{int(c) % 100:02d}") for c in sol.model.flat_codes])
    true = truth.flat_grid[chip]
    d = (fit - fit.mean(axis=(1, 2), keepdims=True)) - (
        true - true.mean(axis=(1, 2), keepdims=True)
    )
    rms = float(np.sqrt(np.mean(d**2)))
    print(f"flat: rms error {1e3 * rms:.2f} mmag of a {1e3 * np.std(true):.1f} mmag pattern")
    assert rms < 0.003


def test_cloudy_images_are_flagged(calibrated):
    _, _, truth, sol, pos = _solution(calibrated)
    poor = (sol.flags & np.uint32(ImageFlags.PHOTOM_POOR)) != 0
    exp = truth.exposures
    cloud = exp["dzp_cloud"][truth.images["exp_index"][pos]]
    # clear exposures scatter by 0.1 mag: clouds beyond ~5 sigma of that must all be caught
    # (where at least 3 stars measure the offset; deep clouds can leave a chip with fewer)
    measurable = sol.nstar >= 3
    assert poor[(cloud > 0.6) & measurable].all()
    assert truth.images["cloudy"][pos][poor].mean() >= 0.9
    assert poor[cloud > 0].mean() > 0.5


def test_database_is_written_and_valid(calibrated, helpers):
    db, report, _, sol, _ = _solution(calibrated)
    helpers.assert_db_valid(db)
    assert report.written and not report.dry_run
    images = db.images()[sol.model.row]
    np.testing.assert_allclose(images["MCAL_PSF"], sol.mcal, atol=1e-6)
    flags = images["FLAGS"] & np.uint32(ImageFlags.PHOTOM_NOCAL | ImageFlags.PHOTOM_POOR)
    assert (
        flags == (sol.flags & np.uint32(ImageFlags.PHOTOM_NOCAL | ImageFlags.PHOTOM_POOR))
    ).all()
    part = db.partition(int(db.populated()[0]), kinds=("measure",))
    j = sol.model.image_index(part.measure["IMAGE_ID"])
    on = (j >= 0) & sol.calibrated[np.maximum(j, 0)]
    np.testing.assert_allclose(part.measure["MCAL_PSF"][on], sol.mcal[j[on]], atol=1e-6)
    assert np.abs(part.measure["M_FLAT"][on]).max() > 0.005


def test_report_files(calibrated):
    db, report, *_ = _solution(calibrated)
    names = {p.rsplit("/", 1)[-1] for p in report.files}
    assert {"relphot.json", "zeropoints.png", "residual_map.png", "repeatability.png"} <= names
    d = report.to_dict()
    assert d["images"]["calibrated"] == report.images["calibrated"]
    assert len(d["iterations"]) >= 3 and d["iterations"][-1]["cg_converged"]
