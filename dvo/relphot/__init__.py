"""relphot: relative photometric calibration of the whole database.

Repeated measurements of the same stars tie every image's zero point to every other. relphot
solves that system (ubercal-style: star means eliminated per star, a sparse image-level system
solved by preconditioned CG, robust iterations) and writes MCAL/M_FLAT back. See
:mod:`dvo.relphot.model` for the unknowns and what is stored, :mod:`dvo.relphot.solve` for how
degenerate directions are pinned.

Examples
--------
>>> from dvo.relphot import relphot                          # doctest: +SKIP
>>> report = relphot(db, dry_run=True, flat=True, pin="mean")  # doctest: +SKIP
>>> print(report.summary())                                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .model import Options, Pin, ZeroPoints
from .report import RelphotReport, build_report

__all__ = ["relphot", "Options", "Pin", "ZeroPoints", "RelphotReport"]


def relphot(
    db,
    *,
    dry_run: bool = False,
    report_dir: str | Path | None = None,
    lock_timeout: float | None = None,
    progress: Callable[[int], None] | None = None,
    options: Options | None = None,
    **settings,
) -> RelphotReport:
    """Calibrate the photometry of ``db`` and (unless ``dry_run``) write the result.

    Parameters
    ----------
    db : dvo.database.Database
    dry_run : bool
        Solve and report, change nothing.
    report_dir : path, optional
        Write ``relphot.json`` and PNG plots there.
    lock_timeout : float, optional
        Seconds to wait for the writer lock (None: wait).
    progress : callable, optional
        Called with 1 per partition written.
    options : Options, optional
        All settings at once; otherwise keyword ``settings`` are the fields of
        :class:`~dvo.relphot.model.Options` (``zeropoints``, ``nights``, ``flat``,
        ``flat_grid``, ``pin``, ``iterations``, ...). Unknown names raise ``TypeError``.

    Returns
    -------
    RelphotReport

    Raises
    ------
    dvo.errors.CalibrationError
        Nothing to calibrate, or a bad option value.
    """
    from .apply import apply_solution
    from .run import solve

    opts = options if options is not None else Options(**settings)
    if dry_run:
        with db.reader():
            sol = solve(db, opts)
        report = build_report(sol, dry_run=True, written=False)
    else:
        with db.writer(timeout=lock_timeout):
            sol = solve(db, opts)
            nparts = apply_solution(db, sol, progress=progress)
        report = build_report(sol, dry_run=False, written=True)
        report.partitions_written = nparts
    if report_dir is not None:
        report.save(report_dir)
    return report
