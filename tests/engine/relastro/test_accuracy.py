"""relastro against the truth of the simulated survey (issue 7's acceptance tests).

Expected errors are computed from the injected per-measurement centroid noise and the epochs
and parallax factors of each object's measurements (the Cramer-Rao bound of the 5-parameter
model), not from the errors relastro reports.
"""

from __future__ import annotations

import numpy as np
import pytest

from dvo.database import open_database
from dvo.flags import ObjFlags
from dvo.relastro.model import chip_uv, sky_to_offsets

YEAR_DAYS = 365.25


@pytest.fixture(scope="module")
def matched(solved, astro_survey):
    """Per DEP measure: partition rows joined to the truth detections, plus the Averages."""
    truth = astro_survey[2]
    db = open_database(solved[0])
    images = db.images()
    gaia = db.photcodes.code("GAIA")
    det = truth.detections
    key_t = det["imageid"].astype(np.int64) * 2**32 + det["ipp_idet"].astype(np.int64)
    order = np.argsort(key_t)
    extern_of = dict(zip(images["IMAGE_ID"].tolist(), images["EXTERN_ID"].tolist(), strict=True))
    meas, aves, offset = [], [], 0
    for part in (db.partition(i) for i in db.populated()):
        m = part.measure[part.measure["PHOTCODE"] != gaia]
        uniq, inv = np.unique(m["IMAGE_ID"], return_inverse=True)
        ext = np.array([extern_of[i] for i in uniq.tolist()], np.int64)[inv]
        key = ext * 2**32 + m["DET_ID"].astype(np.int64)
        pos = np.clip(np.searchsorted(key_t[order], key), 0, len(order) - 1)
        assert (key_t[order][pos] == key).all()
        d = det[order][pos]
        real = d["star_id"] >= 0
        meas.append((m[real], d[real], m["AVE_REF"][real].astype(np.int64) + offset))
        aves.append(part.average)
        offset += len(part.average)
    m = np.concatenate([x[0] for x in meas])
    d = np.concatenate([x[1] for x in meas])
    obj = np.concatenate([x[2] for x in meas])
    ave = np.concatenate(aves)
    star = np.full(len(ave), -1)
    star[obj] = d["star_id"]
    return {"m": m, "d": d, "obj": obj, "ave": ave, "star": star, "truth": truth, "db": db}


def _expected_errors(mt: dict, objs: np.ndarray) -> np.ndarray:
    """(n, 5) CRB of (a, d, pm_a, pm_d, plx) per object from the true noise and epochs."""
    truth, d = mt["truth"], mt["d"]
    sel = np.isin(mt["obj"], objs)
    k = np.searchsorted(objs, mt["obj"][sel])
    d = d[sel]
    exp = truth.exposures[d["exp_index"]]
    earth = np.stack([exp["earth_x"], exp["earth_y"], exp["earth_z"]], axis=1)
    s = truth.stars[d["star_id"]]
    a, de = np.radians(s["ra"]), np.radians(s["dec"])
    pa = earth[:, 0] * np.sin(a) - earth[:, 1] * np.cos(a)
    pd = (earth[:, 0] * np.cos(a) + earth[:, 1] * np.sin(a)) * np.sin(de) - earth[:, 2] * np.cos(de)
    tau = (exp["mjd"] - truth.config.mjd_start) / YEAR_DAYS
    one, zero = np.ones(len(d)), np.zeros(len(d))
    gx = np.stack([one, zero, tau, zero, pa], axis=1)
    gy = np.stack([zero, one, zero, tau, pd], axis=1)
    w = 1.0 / d["pos_sig"].astype(np.float64) ** 2
    outer = (gx[:, :, None] * gx[:, None, :] + gy[:, :, None] * gy[:, None, :]) * w[:, None, None]
    normal = np.zeros((len(objs), 5, 5))
    np.add.at(normal, k, outer)
    return np.sqrt(np.diagonal(np.linalg.inv(normal), axis1=1, axis2=2))


def _parallax_objects(mt: dict) -> np.ndarray:
    """Objects fitted with parallax, matched to a star, without a reference measurement."""
    ave, star = mt["ave"], mt["star"]
    flags = ave["FLAGS"]
    par = (flags & np.uint32(ObjFlags.FIT_PAR)) != 0
    ref_stars = mt["truth"].reference["source_id"]
    return np.flatnonzero(par & (star >= 0) & ~np.isin(star, ref_stars))


def test_bright_residuals_within_noise(matched, solved):
    m, d = matched["m"], matched["d"]
    dx, dy = sky_to_offsets(m["RA"], m["DEC"], d["ra_true"], d["dec_true"])
    sig = d["pos_sig"].astype(np.float64)
    bright = sig <= 0.012
    assert bright.sum() > 2000
    res = np.sqrt(np.mean(dx[bright] ** 2 + dy[bright] ** 2) / 2)
    noise = np.sqrt(np.mean(sig[bright] ** 2))
    print(f"bright residual {res * 1e3:.2f} mas, injected {noise * 1e3:.2f} mas")
    assert res <= 1.2 * noise
    bright = solved[1].residuals["bright"]
    assert bright["after_mas"] < 0.2 * bright["before_mas"]


def test_proper_motions_and_parallaxes_against_truth(matched):
    objs = _parallax_objects(matched)
    assert len(objs) > 1000
    ave = matched["ave"][objs]
    s = matched["truth"].stars[matched["star"][objs]]
    expected = _expected_errors(matched, objs) * 1e3  # mas, mas/yr
    errors = {
        "pm_ra": (ave["U_RA"] * 1e3 - s["pm_ra"], expected[:, 2]),
        "pm_dec": (ave["U_DEC"] * 1e3 - s["pm_dec"], expected[:, 3]),
        "parallax": (ave["PAR"] * 1e3 - s["parallax"], expected[:, 4]),
    }
    for name, (err, exp) in errors.items():
        ratio = np.sqrt(np.mean((err / exp) ** 2))
        print(f"{name}: rms(error/expected) {ratio:.3f}, mean {err.mean():.3f} mas")
        assert ratio <= (1.3 if name == "parallax" else 1.2)
    err, exp = errors["parallax"]
    assert abs(err.mean()) < 3.0 * err.std() / np.sqrt(len(err))


def test_reported_errors_are_honest(matched):
    objs = _parallax_objects(matched)
    ave = matched["ave"][objs]
    s = matched["truth"].stars[matched["star"][objs]]
    pull = (ave["PAR"] * 1e3 - s["parallax"]) / (ave["PAR_ERR"] * 1e3)
    assert 0.7 < np.sqrt(np.mean(pull**2)) < 1.3


def test_chip_distortions_recovered(solved, astro_survey):
    """The chip corrections undo the injected distortion where the chips have stars."""
    from dvo import codecs, layout
    from dvo.relastro._kernels import chip_correction

    truth = astro_survey[2]
    db = open_database(solved[0])
    table = codecs.read_table(db.catdir / layout.RELASTRO)
    images = db.images()
    ext = dict(zip(images["IMAGE_ID"].tolist(), images["EXTERN_ID"].tolist(), strict=True))
    chip_of = {ext[int(i)]: j for j, i in enumerate(table["IMAGE_ID"].tolist())}
    det = truth.detections[truth.detections["star_id"] >= 0]
    chip = np.array([chip_of[int(i)] for i in det["imageid"].tolist()], np.int64)
    row_of = {int(v): i for i, v in enumerate(truth.images["imageid"].tolist())}
    rows = np.array([row_of[int(i)] for i in det["imageid"].tolist()])
    x, y = det["x"].astype(np.float64), det["y"].astype(np.float64)
    u, v = chip_uv(x, y, 4846, 4868)
    coeff = np.asarray(table["COEFF"], np.float64).reshape(-1, 2, 10)
    cx, cy = np.empty(len(x)), np.empty(len(x))
    chip_correction(chip, u, v, coeff, cx, cy)
    tx, ty = truth.distortion(rows, x, y)
    per_chip = np.sqrt(np.bincount(chip, (cx + tx) ** 2 + (cy + ty) ** 2) / np.bincount(chip))
    raw = np.sqrt(np.bincount(chip, tx**2 + ty**2) / np.bincount(chip))
    # statistical expectation of a weighted 10-term fit per axis: mean w e^2 = 10 / sum(w)
    weight = np.bincount(chip, det["pos_sig"].astype(np.float64) ** -2)
    expected = np.sqrt(2 * 10 / weight)
    amplitude = np.abs(truth.images["dist"]).sum(axis=-1).max()
    print(
        f"distortion up to {amplitude:.3f} arcsec (rms {np.median(raw) * 1e3:.0f} mas per chip); "
        f"after correction median {np.median(per_chip) * 1e3:.1f} mas "
        f"(expected {np.median(expected) * 1e3:.1f}), worst {per_chip.max() * 1e3:.1f} mas; "
        f"median ratio {np.median(per_chip / expected):.2f}"
    )
    assert amplitude > 0.3
    assert np.median(per_chip) < 0.1 * np.median(raw)
    assert np.median(per_chip / expected) < 2.0
    assert per_chip.max() < 0.2 * np.median(raw)
