"""The relastro driver: alternate object fits and chip fits, partition by partition.

Memory is bounded by the largest partition plus image-level arrays: each partition's working
set (``workset.py``) is built once and kept in a scratch folder, then every iteration streams
the partitions, fits their objects with the current chip corrections and adds their
residuals to the per-chip normal equations; the chips are solved after each pass. The last
pass refits the objects with the final corrections and writes everything in one transaction
(``apply.py``).

Reference catalogue: the measures of the REF photcode ``ref_photcode`` (default GAIA, loaded by
addstar from a Gaia-like table) tie the frame. Each gives its object a position constraint at
the catalogue epoch (TIME) with the catalogue error (X/Y_CCD_ERR at 1 mas/pixel), and, when
the catalogue had them, proper-motion and parallax constraints, which addstar keeps in the
REF rows' X_FIX/Y_FIX (pm, mas/yr), X_OFF_KH/Y_OFF_KH (their errors) and X_OFF_DCR/Y_OFF_DCR
(parallax and error, mas); see ``dvo.catalog_input``. Without a reference the solution's
free offset and rotation are pinned (mean chip offset and rotation zero) and reported.

Iteration: the first pass does not clip (distortions dominate the residuals); later passes
clip at ``nsigma`` times each measure's error inflated by its chip's reduced chi. Chip
updates after the first are over-relaxed by ``relax`` (alternating fits converge slowly on
the modes the objects absorb).
"""

from __future__ import annotations

import functools
import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo.errors import CalibrationError
from dvo.photcodes import PhotType
from dvo.stats import merge_stats, partition_stats
from dvo.transaction import Transaction

from . import apply, workset
from .chips import ChipAccumulator, max_change, pin_frame, solve
from .objects import ObjectOptions, choose_models, fit
from .report import ReportAccumulator

__all__ = ["relastro", "RelastroReport"]

log = logging.getLogger("dvo.relastro")

NO_CHIPS = "no chip images to calibrate"
NO_MEASURES = "no detector measurements on chip images"
NOT_REF = "photcode {} is not a REF photcode"
BAD_OPTION = "{} must be {}, got {!r}"
WORKERS = 2  # threads over partitions in the iterations (the kernels release the GIL)


@dataclass
class RelastroReport:
    """What a relastro run did (``to_dict`` is the JSON report)."""

    iterations: int = 0
    converged: bool = False
    dry_run: bool = False
    n_chips: int = 0
    n_chips_fitted: int = 0
    n_measures: int = 0
    n_objects: int = 0
    n_reference_objects: int = 0
    models: dict = field(default_factory=dict)
    frame_pinned: bool = False
    frame_offset_mas: list = field(default_factory=lambda: [0.0, 0.0])
    frame_rotation_mas: float = 0.0
    history: list = field(default_factory=list)
    residuals: dict = field(default_factory=dict)
    seconds: float = 0.0
    files: list = field(default_factory=list)

    def to_dict(self) -> dict:
        """The report as plain JSON-able values."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__}

    def summary(self) -> str:
        """A few human-readable lines."""
        r = self.residuals.get("bright", {})
        state = "converged" if self.converged else "not converged"
        return (
            f"relastro: {self.iterations} iterations ({state}), "
            f"{self.n_chips_fitted}/{self.n_chips} chips, {self.n_objects} objects "
            f"({self.n_reference_objects} with reference), models {self.models}\n"
            f"bright-star residual RMS: {r.get('before_mas', float('nan')):.1f} -> "
            f"{r.get('after_mas', float('nan')):.1f} mas; {self.seconds:.1f} s"
            + (" (dry run: nothing written)" if self.dry_run else "")
        )


def _ref_codes(db, name: str | None) -> np.ndarray:
    if name is None:
        return np.zeros(0, np.int64)
    pc = db.photcodes
    try:
        code = pc.code(name)
    except Exception:  # noqa: BLE001 - SchemaError for unknown names, re-raised as ours
        raise CalibrationError(f"unknown photcode {name}") from None
    if pc.type(code) is not PhotType.REF:
        raise CalibrationError(NOT_REF.format(name))
    return np.array([code], np.int64)


def _check(iterations: int, order_max: int, nsigma: float, relax: float) -> None:
    if iterations < 1:
        raise CalibrationError(BAD_OPTION.format("iterations", "at least 1", iterations))
    if not 0 <= order_max <= 3:
        raise CalibrationError(BAD_OPTION.format("order_max", "0..3", order_max))
    if not 0 < relax < 2:
        raise CalibrationError(BAD_OPTION.format("relax", "in (0, 2)", relax))
    if nsigma <= 0:
        raise CalibrationError(BAD_OPTION.format("nsigma", "positive", nsigma))


def _build_worksets(db, chips, ref_codes, scratch: Path) -> tuple[dict, RelastroReport]:
    report = RelastroReport(n_chips=len(chips))
    paths = {}
    cols = {"measure": workset.MEASURE_COLUMNS, "average": workset.AVERAGE_COLUMNS}
    for idx in db.populated().tolist():
        part = db.partition(idx, kinds=("average", "measure"), columns=cols)
        ws = workset.build(part, chips, db.photcodes, ref_codes)
        if ws is None:
            continue
        paths[idx] = scratch / f"ws{idx}.npz"
        workset.save(ws, paths[idx])
        report.n_measures += len(ws["obj"])
        report.n_objects += len(ws["ave_row"])
        report.n_reference_objects += int((ws["ref"][:, 3] > 0).sum())
    if not paths:
        raise CalibrationError(NO_MEASURES)
    return paths, report


def _one_pass(paths: list, nchip: int, coeff, scale, opts, clip: bool, workers: int):
    """Fit every partition's objects and sum the chip normal equations (``workers`` threads,
    each streaming its share of the partitions into its own accumulator)."""

    def work(share: list) -> ChipAccumulator:
        acc = ChipAccumulator(nchip)
        for path in share:
            ws = workset.load(path)
            acc.add(ws, fit(ws, coeff, scale, choose_models(ws, opts), opts, clip=clip))
        return acc

    shares = [paths[i::workers] for i in range(min(workers, len(paths)))]
    if len(shares) == 1:
        return work(shares[0])
    with ThreadPoolExecutor(len(shares)) as pool:
        accs = list(pool.map(work, shares))
    return functools.reduce(ChipAccumulator.merge, accs)


def _iterate(paths, nchip, coeff, opts, order_max, tol, iterations, seeded, chips, report, relax):
    scale = np.ones(nchip)
    has_ref = report.n_reference_objects > 0
    paths = list(paths.values())
    for it in range(iterations):
        acc = _one_pass(paths, nchip, coeff, scale, opts, seeded or it > 0, WORKERS)
        sol = solve(acc, order_max)
        if it > 0:
            sol.coeff = coeff + relax * (sol.coeff - coeff)
        if not has_ref:
            off, rot = pin_frame(sol, chips.center)
            report.frame_pinned = True
            report.frame_offset_mas = (np.asarray(report.frame_offset_mas) + off * 1e3).tolist()
            report.frame_rotation_mas += rot * 1e3
        delta = max_change(sol.coeff - coeff, acc)
        rms = float(np.sqrt(acc.sum2.sum() / max(acc.nres.sum(), 1) / 2)) * 1e3
        report.history.append({"iteration": it + 1, "rms_mas": rms, "max_change_mas": delta * 1e3})
        log.info("iteration %d: rms %.2f mas, max change %.3f mas", it + 1, rms, delta * 1e3)
        coeff, scale = sol.coeff, acc.scale()
        report.iterations = it + 1
        if delta < tol:
            report.converged = True
            break
    return sol, scale


def _final_fits(ws, coeff, scale, opts):
    npar = choose_models(ws, opts)
    f = fit(ws, coeff, scale, npar, opts)
    chi2s = {5: (f.chi2, f.nfit)}
    for k in (2, 4):
        low = np.minimum(npar, k)
        g = f if np.array_equal(low, npar) else fit(ws, coeff, scale, low, opts)
        chi2s[k] = (g.chi2, g.nfit)
    return f, chi2s


def _final_pass(db, paths, chips, sol, scale, opts, report, tx, rep_acc):
    acc = ChipAccumulator(len(chips))
    models = {"ave": 0, "pm": 0, "par": 0}
    changed = []
    for idx in db.populated().tolist():
        ws = workset.load(paths[idx]) if idx in paths else None
        f = chi2s = used = None
        if ws is not None:
            f, chi2s = _final_fits(ws, sol.coeff, scale, opts)
            used = acc.add(ws, f)
            rep_acc.add(ws, f, used, chips)
            ok = f.nfit > 0
            for name, k in (("ave", 2), ("pm", 4), ("par", 5)):
                models[name] += int((ok & (f.npar == k)).sum())
        if tx is None:
            continue
        part = apply.update_partition(
            db.partition(idx), ws, f, chi2s, used, chips, sol.coeff, db.photcodes
        )
        apply.write_partition_staged(db, tx, part)
        changed.append(partition_stats(part))
    report.models = models
    report.n_chips_fitted = int((sol.order >= 0).sum())
    return acc, changed


def relastro(
    db,
    *,
    iterations: int = 20,
    order_max: int = 3,
    pm: bool = True,
    parallax: bool = True,
    ref_photcode: str | None = "GAIA",
    nsigma: float = 5.0,
    tolerance_mas: float = 1.0,
    relax: float = 1.5,
    dry_run: bool = False,
    report_dir: str | Path | None = None,
    lock_timeout: float | None = None,
) -> RelastroReport:
    """Fit chip astrometric corrections and object positions, motions and parallaxes.

    Parameters
    ----------
    db : dvo.database.Database
        The database (written unless ``dry_run``).
    iterations : int
        Maximum number of object/chip alternations.
    order_max : int
        Highest chip polynomial order (0..3); the star-count rule may choose lower.
    pm, parallax : bool
        Allow proper-motion and parallax models.
    ref_photcode : str or None
        REF photcode of the astrometric reference catalogue (None: no reference; the free
        frame offset and rotation are then pinned and reported).
    nsigma : float
        Clipping threshold (per axis, in units of the per-chip scaled errors).
    tolerance_mas : float
        Stop when no chip's correction changes by more than this (RMS over its stars).
    relax : float
        Over-relaxation of the chip updates after the first iteration (1: plain
        alternation; 1..2 speeds up the slow modes that objects absorb).
    dry_run : bool
        Solve and report, write nothing.
    report_dir : path, optional
        Write ``relastro.json`` and PNG plots there.

    Returns
    -------
    RelastroReport

    Raises
    ------
    CalibrationError
        On bad options, an unknown or non-REF reference photcode, or nothing to calibrate.
    """
    _check(iterations, order_max, nsigma, relax)
    start = time.perf_counter()
    opts = ObjectOptions(pm=pm, parallax=parallax, nsigma=nsigma)
    with db.writer(timeout=lock_timeout), tempfile.TemporaryDirectory(prefix="relastro-") as tmp:
        images = db.images()
        chips = workset.ChipTable.from_images(images, db.photcodes)
        if len(chips) == 0:
            raise CalibrationError(NO_CHIPS)
        ref_codes = _ref_codes(db, ref_photcode)
        paths, report = _build_worksets(db, chips, ref_codes, Path(tmp))
        coeff = apply.read_corrections(db, chips)
        seeded = bool(np.any(coeff))
        sol, scale = _iterate(
            paths, len(chips), coeff, opts, order_max, tolerance_mas / 1e3, iterations, seeded,
            chips, report, relax,
        )  # fmt: skip
        report.dry_run = dry_run
        rep_acc = ReportAccumulator(chips, db.photcodes)
        if dry_run:
            _final_pass(db, paths, chips, sol, scale, opts, report, None, rep_acc)
        else:
            with Transaction(db.catdir) as tx:
                acc, changed = _final_pass(db, paths, chips, sol, scale, opts, report, tx, rep_acc)
                apply.write_images(db, tx, images, chips, sol, acc)
                stats = merge_stats(db.stats(), np.concatenate(changed))
                apply.write_stats(tx, stats)
    report.residuals = rep_acc.summary()
    report.seconds = time.perf_counter() - start
    if report_dir is not None:
        report.files = rep_acc.write(Path(report_dir), report.to_dict())
    return report
