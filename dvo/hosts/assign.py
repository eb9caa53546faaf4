"""Assign partitions to hosts, balanced by size, with each backup on a different host.

The size of a partition is estimated from the statistics index (``db.stats()``): its row
counts times DVO's row sizes (Average 192 B, SecFilt 176 B per filter, Measure 240 B,
Lensing 160 B). Partitions are placed largest first on the least loaded host (LPT
scheduling, within 4/3 of the best balance); backups likewise on the least loaded *other*
host. The new SkyTable records the plan with ``HOST_FLAGS`` cleared: queries keep reading the
local files until ``dvo hosts push`` has copied and verified each partition and set
``DATA_ON_TGT`` / ``DATA_ON_BCK``.

Examples
--------
>>> host, backup = balance(np.array([5, 4, 3, 3, 1]), np.array([1, 2]))
>>> host.tolist(), backup.tolist()
([1, 2, 2, 1, 2], [2, 1, 1, 2, 1])
"""

from __future__ import annotations

import numpy as np

from dvo import layout
from dvo.errors import HostError

__all__ = [
    "partition_holders",
    "DATA_ON_TGT",
    "DATA_ON_BCK",
    "DATA_USE_BCK",
    "DATA_COPY_FAILURE",
    "partition_sizes",
    "balance",
    "assign_hosts",
]

#: HOST_FLAGS bits (DVO ``SkyRegion.hostFlags``)
DATA_ON_TGT, DATA_ON_BCK, DATA_USE_BCK, DATA_COPY_FAILURE = 0x01, 0x02, 0x04, 0x80


def partition_holders(skytable, index: int) -> list[int]:
    """Host ids holding a pushed partition's data: its host, then its backup when that
    holds the data too."""
    hid, bid = int(skytable.host_id[index]), int(skytable.backup_id[index])
    on_backup = bid not in (0, hid) and skytable.host_flags[index] & DATA_ON_BCK
    return [hid, bid] if on_backup else [hid]


_ROW_BYTES = {"NAVERAGE": 192, "NMEASURE": 240, "NLENSING": 160}
_SECFILT_BYTES = 176


def partition_sizes(db) -> tuple[np.ndarray, np.ndarray]:
    """(SkyTable indices, estimated bytes) of the populated partitions of ``db``."""
    stats = db.stats()
    size = np.zeros(len(stats), np.int64)
    for col, nbytes in _ROW_BYTES.items():
        size += stats[col].astype(np.int64) * nbytes
    size += stats["NAVERAGE"].astype(np.int64) * _SECFILT_BYTES * int(db.nsecfilt)
    keep = stats["NAVERAGE"] > 0
    return stats["INDEX"][keep].astype(np.int64), size[keep]


def _least_loaded(load: np.ndarray, size: np.ndarray, exclude: np.ndarray | None) -> np.ndarray:
    """Greedy LPT over partitions already sorted by decreasing size: host slot of each."""
    out = np.empty(len(size), np.int64)
    for k in range(len(size)):  # one step per partition (not per row): sequential by nature
        cost = load.astype(np.float64)
        if exclude is not None:
            cost[exclude[k]] = np.inf
        out[k] = int(np.argmin(cost))
        load[out[k]] += size[k]
    return out


def balance(sizes: np.ndarray, host_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Host and backup id for each partition (backup 0 when there is a single host).

    Parameters
    ----------
    sizes : array of int
        Size of each partition.
    host_ids : array of int
        Ids of the hosts to use.
    """
    host_ids = np.asarray(host_ids, np.int64)
    if len(host_ids) == 0:
        raise HostError("no hosts to assign partitions to")
    sizes = np.asarray(sizes, np.int64)
    order = np.argsort(-sizes, kind="stable")
    slot = _least_loaded(np.zeros(len(host_ids), np.int64), sizes[order], None)
    host = np.empty(len(sizes), np.int64)
    host[order] = host_ids[slot]
    backup = np.zeros(len(sizes), np.int64)
    if len(host_ids) > 1:
        bslot = _least_loaded(np.zeros(len(host_ids), np.int64), sizes[order], slot)
        backup[order] = host_ids[bslot]
    return host, backup


def assign_hosts(db, hosts, *, backups: bool = True) -> dict[int, int]:
    """Write a SkyTable assigning every populated partition of ``db`` to ``hosts``.

    The change goes through one :class:`~dvo.transaction.Transaction` under the writer lock.
    Returns ``{host id: estimated bytes}``.
    """
    from dvo.transaction import Transaction

    index, size = partition_sizes(db)
    host, backup = balance(size, np.array([h.id for h in hosts], np.int64))
    if not backups:
        backup[:] = 0
    st = db.skytable
    host_col, backup_col = np.zeros(len(st), np.uint8), np.zeros(len(st), np.uint8)
    host_col[index], backup_col[index] = host, backup
    new = st.with_hosts(host_col, backup_col, np.zeros(len(st), np.uint8))
    with db.writer(timeout=60), Transaction(db.catdir) as tx:
        new.write(tx.stage(layout.SKYTABLE))
    db.__dict__.pop("skytable", None)
    return {h.id: int(size[host == h.id].sum()) for h in hosts}


def host_summary(db, hosts) -> list[dict]:
    """One row per host (plus id 0, "local"): partitions and bytes held as primary and backup."""
    index, size = partition_sizes(db)
    st = db.skytable
    hid, bid = st.host_id[index].astype(np.int64), st.backup_id[index].astype(np.int64)
    on_tgt = (st.host_flags[index] & DATA_ON_TGT) != 0
    rows = []
    for h in [None, *hosts]:
        k = 0 if h is None else h.id
        rows.append(
            {
                "id": k,
                "host": "local" if h is None else h.hostname,
                "port": None if h is None else h.port,
                "path": str(db.catdir) if h is None else h.path,
                "partitions": int((hid == k).sum()),
                "bytes": int(size[hid == k].sum()),
                "pushed": int(((hid == k) & on_tgt).sum()),
                "backups": int((bid == k).sum()) if k else 0,
            }
        )
    return rows
