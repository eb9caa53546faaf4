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

import logging
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo.errors import CalibrationError
from dvo.photcodes import PhotType
from dvo.stats import merge_stats, partition_stats
from dvo.transaction import Transaction

from . import apply, workset
from .chips import ChipAccumulator, max_change, pin_frame, solve
from .objects import ObjectOptions
from .partials import final_partition, pass_partition, workset_counts
from .remote import chip_inputs
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


class _LocalPasses:
    """Passes over the partition files here; working sets kept in the run's scratch folder."""

    def __init__(self, db, inputs, scratch: Path, report: RelastroReport) -> None:
        from .remote import WorksetCache

        self.db, self.inputs = db, inputs
        self.cache = WorksetCache(scratch, inputs)
        self.indices = []
        for idx in db.populated().tolist():
            ws = self.cache.get(db, idx)
            if ws is None:
                continue
            self.indices.append(idx)
            n, nobj, nref = workset_counts(ws)
            report.n_measures += n
            report.n_objects += nobj
            report.n_reference_objects += nref
        if not self.indices:
            raise CalibrationError(NO_MEASURES)

    def run(self, coeff, scale, opts, clip: bool) -> ChipAccumulator:
        """One pass: every partition's chip sums (``WORKERS`` threads), added in order."""
        acc = ChipAccumulator(len(self.inputs.chips))

        def work(idx: int):
            return pass_partition(self.cache.get(self.db, idx), coeff, scale, opts, clip)

        with ThreadPoolExecutor(WORKERS) as pool:
            for sums in pool.map(work, self.indices):
                acc.add_sums(sums)
        return acc

    def final(self, coeff, scale, opts, indices: list[int]) -> dict[int, tuple]:
        """The final pass here: ``{index: (FinalSums | None, ws, fit, chi2s, used)}``."""
        out = {}
        for idx in indices:
            ws = self.cache.get(self.db, idx)
            if ws is None:
                out[idx] = (None, None, None, {}, None)
                continue
            fs, f, chi2s, used = final_partition(ws, coeff, scale, opts, self.inputs.slot)
            out[idx] = (fs, ws, f, chi2s, used)
        return out


class _HostPasses(_LocalPasses):
    """Passes where each pushed partition is summed on its host (the others here), merged
    in SkyTable order; the final write is two-phase (:mod:`dvo.hosts.twophase`)."""

    def __init__(self, db, inputs, scratch: Path, report: RelastroReport, executor) -> None:
        from .remote import WorksetCache

        self.db, self.inputs, self.executor = db, inputs, executor
        self.cache = WorksetCache(scratch, inputs)
        self.indices = db.populated().tolist()
        self.report = report
        self.counted = False

    def _task(self, coeff, scale, opts, clip: bool, final: bool):
        from .remote import PassTask

        return PassTask(self.inputs, coeff, scale, opts, clip, final, self.cache, self.db)

    def run(self, coeff, scale, opts, clip: bool) -> ChipAccumulator:
        """One pass on the hosts; the first one also counts the working sets."""
        acc = ChipAccumulator(len(self.inputs.chips))
        task = self._task(coeff, scale, opts, clip, False)
        counts = np.zeros(3, np.int64)
        for _, res in self.executor.map(str(self.db.catdir), self.indices, task):
            if res is not None:
                acc.add_sums(res.sums)
                counts += [res.counts.measures, res.counts.objects, res.counts.refs]
        if not self.counted:
            r = self.report
            r.n_measures, r.n_objects, r.n_reference_objects = (int(c) for c in counts)
            self.counted = True
            if r.n_measures == 0:
                raise CalibrationError(NO_MEASURES)
        return acc

    def final_sums(self, coeff, scale, opts) -> dict[int, tuple]:
        """The final pass without writing (a dry run), on the hosts."""
        task = self._task(coeff, scale, opts, True, True)
        out = {}
        for idx, res in self.executor.map(str(self.db.catdir), self.indices, task):
            out[idx] = (None if res is None else res.sums, None, None, {}, None)
        return out


def _one_pass(passes, coeff, scale, opts, clip: bool) -> ChipAccumulator:
    return passes.run(coeff, scale, opts, clip)


def _iterate(passes, nchip, coeff, opts, order_max, tol, iterations, seeded, chips, report, relax):
    scale = np.ones(nchip)
    sol = None
    for it in range(iterations):
        acc = _one_pass(passes, coeff, scale, opts, seeded or it > 0)
        has_ref = report.n_reference_objects > 0
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


def _final_pass(db, passes, chips, sol, scale, opts, report, tx, rep_acc, hosts=None):
    """The final fits, chip sums and report sums, merged in SkyTable order; with ``tx`` every
    partition is rewritten too (pushed ones on their hosts, through ``hosts``).

    Returns (chip accumulator, statistics rows of the rewritten partitions).
    """
    indices = db.populated().tolist()
    remote = hosts.remote(indices) if (tx is not None and hosts is not None) else []
    if tx is None and isinstance(passes, _HostPasses):
        results = passes.final_sums(sol.coeff, scale, opts)
    else:
        results = passes.final(sol.coeff, scale, opts, [i for i in indices if i not in remote])
    rows = {}
    if remote:
        from .remote import PrepareTask

        task = PrepareTask(passes._task(sol.coeff, scale, opts, True, True), db.nsecfilt,
                           db.skytable.name)  # fmt: skip
        for idx, p in hosts.prepare(task, remote).items():
            results[idx] = (p.sums, None, None, {}, None)
            rows[idx] = p.stats
    acc = ChipAccumulator(len(chips))
    models = np.zeros(3, np.int64)
    for idx in indices:
        fs, ws, f, chi2s, used = results[idx]
        if fs is not None:
            acc.add_sums(fs.chips)
            rep_acc.merge(fs.report)
            models += fs.models
        if tx is None or idx in remote:
            continue
        part = apply.update_partition(
            db.partition(idx), ws, f, chi2s, used, chips, sol.coeff, db.photcodes
        )
        apply.write_partition_staged(db, tx, part)
        rows[idx] = partition_stats(part)
    report.models = dict(zip(("ave", "pm", "par"), (int(m) for m in models), strict=True))
    report.n_chips_fitted = int((sol.order >= 0).sum())
    return acc, [rows[i] for i in sorted(rows)]


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
    with (
        db.writer(timeout=lock_timeout),
        tempfile.TemporaryDirectory(prefix="relastro-") as tmp,
        _on_hosts(db) as (executor, hosts),
    ):
        images = db.images()
        chips = workset.ChipTable.from_images(images, db.photcodes)
        if len(chips) == 0:
            raise CalibrationError(NO_CHIPS)
        inputs = chip_inputs(chips, db.photcodes, _ref_codes(db, ref_photcode))
        report = RelastroReport(n_chips=len(chips))
        if executor is None:
            passes = _LocalPasses(db, inputs, Path(tmp), report)
        else:
            passes = _HostPasses(db, inputs, Path(tmp), report, executor)
        coeff = apply.read_corrections(db, chips)
        seeded = bool(np.any(coeff))
        sol, scale = _iterate(
            passes, len(chips), coeff, opts, order_max, tolerance_mas / 1e3, iterations, seeded,
            chips, report, relax,
        )  # fmt: skip
        report.dry_run = dry_run
        rep_acc = ReportAccumulator(chips, db.photcodes)
        if dry_run:
            _final_pass(db, passes, chips, sol, scale, opts, report, None, rep_acc)
        else:
            _write(db, passes, images, chips, sol, scale, opts, report, rep_acc, hosts)
    report.residuals = rep_acc.summary()
    report.seconds = time.perf_counter() - start
    if report_dir is not None:
        report.files = rep_acc.write(Path(report_dir), report.to_dict())
    return report


def _write(db, passes, images, chips, sol, scale, opts, report, rep_acc, hosts) -> None:
    """The final pass and every write in one local transaction (the commit point); pushed
    partitions are prepared on their hosts before it and committed there after it."""
    tx = Transaction(db.catdir)
    try:
        acc, changed = _final_pass(db, passes, chips, sol, scale, opts, report, tx, rep_acc, hosts)
        apply.write_images(db, tx, images, chips, sol, acc)
        stats = db.stats()
        if changed:
            stats = merge_stats(stats, np.concatenate(changed))
        apply.write_stats(tx, stats)
        if hosts is not None and hosts.files:
            hosts.stage_decision(tx)
    except BaseException:
        tx.abort()
        if hosts is not None and hosts.files:  # prepared on the hosts, nothing decided here
            hosts.abort()
        raise
    tx.commit()
    if hosts is not None and hosts.files:
        hosts.commit()


@contextmanager
def _on_hosts(db):
    """(executor, host write) when partitions were pushed to hosts, else (None, None).

    One worker session per host serves the whole run; an unfinished host write is finished
    first.
    """
    from dvo.hosts.executor import HostExecutor, current_config, uses_hosts

    if not uses_hosts(db.skytable, db.populated()):
        yield None, None
        return
    from dvo.hosts.twophase import HostWrite, pending_partitions, resume_pending

    cfg = current_config()
    if pending_partitions(db.catdir):
        resume_pending(db, cfg)
    executor = HostExecutor(db, None, cfg)
    with executor.keep_sessions():
        yield executor, HostWrite(db, cfg, op="relastro", sessions=executor.sessions)
