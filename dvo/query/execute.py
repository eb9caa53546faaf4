"""Executors: where partition scans run.

An executor turns (catdir, a sequence of ``(partition index, task)``) into a stream of
``(index, result)`` pairs **in the order given**, whatever order the work finishes in. A task
is any picklable callable ``task(catdir, index) -> result``; for queries it is
:class:`ScanTask` (a :class:`~dvo.query.scan.ScanRequest` bound to
:func:`~dvo.query.scan.scan_partition`), whose request is JSON-able so that a remote host can
run the same scan from ``python -m dvo.remote`` with the request on stdin.

The interface (:class:`Executor`) is one method::

    def map(self, catdir, tasks) -> Iterator[tuple[int, Any]]

(crossmatch sends each partition its own task holding the input rows near it), and the
consumer may stop iterating at any time (a ``limit`` was reached): closing the iterator
cancels the scans not yet started. Implementations here:

- :class:`InProcess`: runs scans one after the other in this process (no start-up cost; used
  for small plans, and by remote hosts themselves);
- :class:`ProcessPool`: a pool of ``jobs`` worker processes, at most ``2 * jobs`` scans in
  flight, results yielded in index order as they become available.

A partition-host executor (``dvo.hosts``) implements the same ``map``: it groups the tasks by
the SkyTable ``host_id`` of their partition, sends each group to its host, and yields results
back in the order given, raising :class:`dvo.errors.HostError` naming a host that fails.
:func:`choose_executor` picks between the local ones from the plan size.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from dvo.query.scan import ScanRequest, scan_partition

__all__ = ["Executor", "InProcess", "ProcessPool", "ScanTask", "choose_executor", "default_jobs"]

#: plans that read fewer stored rows than this (or touch one partition) run in-process
IN_PROCESS_ROWS = 400_000


class Executor(Protocol):
    """Where partition tasks run; see the module docstring."""

    name: str

    def map(self, catdir: str, tasks: Sequence[tuple[int, Callable]]) -> Iterator[tuple[int, Any]]:
        """Yield ``(index, task(catdir, index))`` for each ``(index, task)``, in order."""
        ...  # pragma: no cover


@dataclass(frozen=True)
class ScanTask:
    """A query scan as a picklable task: ``ScanTask(request)(catdir, index)``."""

    request: ScanRequest

    def __call__(self, catdir: str, index: int) -> np.ndarray:
        return scan_partition(catdir, index, self.request)


def default_jobs() -> int:
    """Number of worker processes by default: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


class InProcess:
    """Run every task in this process, in order.

    Examples
    --------
    >>> task = lambda catdir, i: i * 10
    >>> list(InProcess().map("db", [(3, task), (1, task)]))
    [(3, 30), (1, 10)]
    """

    name = "in-process"

    def map(self, catdir, tasks) -> Iterator[tuple[int, Any]]:
        for index, task in tasks:
            yield int(index), task(str(catdir), int(index))


def _mp_context():
    import multiprocessing as mp

    methods = mp.get_all_start_methods()
    return mp.get_context("fork" if "fork" in methods else methods[0])


class ProcessPool:
    """Run tasks in ``jobs`` worker processes; results come back in index order."""

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, int(jobs))
        self.name = f"{self.jobs} processes"

    def map(self, catdir, tasks) -> Iterator[tuple[int, Any]]:
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(self.jobs, mp_context=_mp_context())
        pending: deque = deque()
        todo = iter(tasks)

        def submit() -> bool:
            item = next(todo, None)
            if item is not None:
                index = int(item[0])
                pending.append((index, pool.submit(item[1], str(catdir), index)))
            return item is not None

        try:
            while len(pending) < 2 * self.jobs and submit():
                pass
            while pending:
                index, fut = pending.popleft()
                submit()
                yield index, fut.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


def choose_executor(stored_rows: np.ndarray, jobs: int | None) -> Executor:
    """In-process for small plans or ``jobs == 1``, a process pool otherwise."""
    jobs = default_jobs() if jobs is None else int(jobs)
    small = len(stored_rows) < 2 or int(np.sum(stored_rows)) < IN_PROCESS_ROWS
    if jobs <= 1 or small:
        return InProcess()
    return ProcessPool(min(jobs, len(stored_rows)))
