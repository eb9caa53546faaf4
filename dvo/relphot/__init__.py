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
from contextlib import contextmanager
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
    dvo.errors.HostError
        A partition host failed (named, with its partitions): before the write nothing is
        changed; during it, see :mod:`dvo.hosts.twophase`.

    Partitions pushed to partition hosts (``dvo hosts push``) are read and rewritten on
    their hosts (SSH settings from :func:`dvo.hosts.executor.host_options`); only the
    per-partition sums cross the network, and the result is bitwise the local one.
    """
    from .apply import apply_solution
    from .run import solve

    opts = options if options is not None else Options(**settings)
    if dry_run:
        with db.reader(), _on_hosts(db, dry_run=True) as (runner, _):
            sol = solve(db, opts, runner)
        report = build_report(sol, dry_run=True, written=False)
    else:
        with db.writer(timeout=lock_timeout), _on_hosts(db, dry_run=False) as (runner, hosts):
            sol = solve(db, opts, runner)
            nparts = apply_solution(db, sol, progress=progress, hosts=hosts)
        report = build_report(sol, dry_run=False, written=True)
        report.partitions_written = nparts
    if report_dir is not None:
        report.save(report_dir)
    return report


@contextmanager
def _on_hosts(db, *, dry_run: bool):
    """(pass runner, host write) when partitions were pushed to hosts, else (None, None).

    One worker session per host serves the whole run. An unfinished host write is finished
    first (a dry run refuses to start instead).
    """
    from dvo.hosts.executor import HostExecutor, current_config, uses_hosts

    if not uses_hosts(db.skytable, db.populated()):
        yield None, None
        return
    from dvo.errors import HostError
    from dvo.hosts.twophase import HostWrite, pending_partitions, resume_pending

    from .remote import host_runner

    cfg = current_config()
    if pending_partitions(db.catdir):
        if dry_run:
            raise HostError("a host write is pending; run dvo hosts resume first")
        resume_pending(db, cfg)
    executor = HostExecutor(db, None, cfg)
    with executor.keep_sessions():
        yield (
            host_runner(db, executor),
            HostWrite(db, cfg, op="relphot", sessions=executor.sessions),
        )
