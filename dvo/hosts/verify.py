"""``dvo verify`` for a database spread over partition hosts.

The database-wide checks run here (with an unfinished host write, its partitions are
reported as pending); each partition is verified where it lives (by
``python -m dvo.remote`` on its host, through :class:`~dvo.hosts.executor.HostExecutor`), and
only the violations cross the network. A host that cannot be reached is an error naming it and
its partitions, never a silent pass.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dvo.errors import HostError
from dvo.hosts.ssh import SshConfig
from dvo.hosts.tasks import VerifyTask
from dvo.verify import Violation

__all__ = ["verify_hosts", "pending_violations"]


def _violations(rows, host_label: str = "") -> list[Violation]:
    if not isinstance(rows, list) or not all(isinstance(r, list) and len(r) == 3 for r in rows):
        raise HostError(f"worker sent a malformed verify summary {host_label}".strip())
    return [Violation(*(str(x) for x in r)) for r in rows]


def pending_violations(db) -> list[Violation]:
    """One violation per partition of an unfinished host write (relphot, relastro)."""
    from dvo.hosts.twophase import pending_partitions, read_record

    pending = pending_partitions(db.catdir)
    if not pending:
        return []
    record = read_record(db.catdir)["pending"]
    what = f"{record.get('op', 'write')} {record.get('txid', '')}"
    return [
        Violation(
            name,
            "host write pending",
            f"{what} not confirmed by host(s) {', '.join(map(str, hids))}; run dvo hosts resume",
        )  # fmt: skip
        for name, hids in sorted(pending.items())
    ]


def verify_hosts(
    db,
    config: SshConfig | None = None,
    *,
    checksums: bool = True,
    progress: Callable[[int], None] | None = None,
) -> list[Violation]:
    """All violations in ``db``, each partition checked on the host holding it.

    Raises
    ------
    HostError
        A host holding partitions cannot be reached (named, with its partitions).
    """
    from dvo.hosts.executor import HostExecutor, current_config
    from dvo.verify import verify_database

    with db.reader():  # rolls forward an interrupted commit first
        out, _ = verify_database(db, checksums=checksums)
        out += pending_violations(db)
        indices = np.unique(db.stats()["INDEX"].astype(np.int64))
        executor = HostExecutor(db, None, config or current_config())
        task = VerifyTask(checksums)
        try:
            for _, rows in executor.map(str(db.catdir), [(int(i), task) for i in indices]):
                out += _violations(rows)
                if progress is not None:
                    progress(1)
        except HostError as exc:
            pending = [v.where for v in out if v.check == "host write pending"]
            if not pending:
                raise
            names = ", ".join(pending)
            raise HostError(f"{exc.reason}; a host write is pending on: {names}",
                            host=exc.host) from None  # fmt: skip
    return out
