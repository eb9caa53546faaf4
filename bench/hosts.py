"""Benchmark of partition hosts: one query over many partitions, locally and on 1, 2, 4 hosts.

Run ``python bench/hosts.py [--objects N] [--level L] [--repeat R]``; it prints a Markdown
report (copied into bench/hosts_results.md). Every host is a real OpenSSH server on a loopback
port (``dvo.tools.loopback_sshd``) serving its own copy of the database, so the figures include
SSH, the worker's start-up, Arrow encoding and the client merge, but no network latency.

The baseline is the same query run locally in-process, timed alternately with each host
configuration in the same run (the machine is shared): the report gives the time ratio, the
overhead per partition ``(t_hosts - t_local) / partitions`` and the throughput in rows/s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _hosted(master: Path, work: Path, servers, user_key: Path, name: str):
    """A copy of ``master`` whose partitions are pushed (marked) on ``servers``."""
    from dvo import layout
    from dvo.database import open_database
    from dvo.hosts.assign import DATA_ON_TGT, assign_hosts
    from dvo.hosts.table import Host, write_host_table
    from dvo.transaction import Transaction

    path = work / name
    shutil.copytree(master, path)
    db = open_database(path)
    hosts = [Host(k + 1, "127.0.0.1", str(s.root), port=s.port, keyfile=str(user_key),
                  python=sys.executable) for k, s in enumerate(servers)]  # fmt: skip
    write_host_table(path, hosts)
    assign_hosts(db, hosts, backups=False)
    st = db.skytable
    flags = np.where(st.host_id > 0, DATA_ON_TGT, 0).astype(np.uint8)
    with Transaction(path) as tx:
        st.with_hosts(None, None, flags).write(tx.stage(layout.SKYTABLE))
    return open_database(path)


def _timed(fn) -> tuple[float, int]:
    t = time.perf_counter()
    n = len(fn())
    return time.perf_counter() - t, n


def _start(work: Path, master: Path, n: int):
    from dvo.tools.loopback_sshd import keygen, start_sshd

    user_key = work / "user_key"
    authorized = work / "authorized_keys"
    authorized.write_text(keygen(user_key) + "\n")
    servers = []
    for k in range(n):
        root = work / f"root{k}"
        shutil.copytree(master, root)
        servers.append(start_sshd(work, f"sshd{k}", root, authorized))
    known = work / "known_hosts"
    known.write_text("".join(s.known_hosts_line() + "\n" for s in servers))
    return servers, user_key, known


def run(objects: int, level: int, repeat: int) -> list[str]:
    """Build, start 4 servers, time the query locally and on 1, 2, 4 hosts; the report lines."""
    from dvo.tools.loopback_sshd import available
    from dvo.tools.querydata import build_database, sky_positions

    from dvo.database import open_database

    reason = available()
    if reason:
        return [f"skipped: {reason}"]
    work = Path(tempfile.mkdtemp(prefix="dvo-bench-hosts-"))
    servers = []
    try:
        ra, dec = sky_positions(objects, np.random.default_rng(3))
        master = work / "master"
        build_database(master, ra, dec, n_epochs=3, scheme="healpix", level=level, seed=5)
        nparts = len(open_database(master).populated())
        servers, user_key, known = _start(work, master, 4)
        return _measure(master, work, servers, user_key, known, nparts, repeat)
    finally:
        for s in servers:
            s.kill()
        shutil.rmtree(work, ignore_errors=True)


def _measure(master, work, servers, user_key, known, nparts, repeat) -> list[str]:
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.query.engine import query

    local_db = open_database(master)
    options = dict(table="measures", columns="*", where="mag < 21", output="numpy")

    def local():
        return query(local_db, None, jobs=1, **options)

    header = (
        "| hosts | local s | hosts s | ratio | ms/partition | rows | rows/s hosts | rows/s local |"
    )
    header = header.replace("ms/partition", "overhead ms/partition")
    lines = [f"{nparts} partitions, load average {os.getloadavg()[0]:.1f}", "", header,
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for n in (1, 2, 4):
        db = _hosted(master, work, servers[:n], user_key, f"db{n}")

        def remote(db=db):
            with host_options(known_hosts=str(known), connections_per_host=2):
                return query(db, None, **options)

        remote()  # warm the page cache and the servers' first connection
        tl = th = np.inf
        for _ in range(repeat):
            t, rows = _timed(local)
            tl = min(tl, t)
            t, rows_h = _timed(remote)
            th = min(th, t)
        assert rows == rows_h
        overhead = 1000 * (th - tl) / nparts
        lines.append(f"| {n} | {tl:.2f} | {th:.2f} | {th / tl:.2f} | {overhead:.1f} | {rows} | "
                     f"{rows / th:,.0f} | {rows / tl:,.0f} |")  # fmt: skip
    return lines


def main(argv=None) -> None:
    """Entry point: print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--level", type=int, default=2, help="HEALPix order of the SkyTable")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print("\n".join(run(args.objects, args.level, args.repeat)))


if __name__ == "__main__":
    main()
