"""Real OpenSSH servers on loopback ports, each serving its own copy of the tiny database.

Every server gets a throw-away ed25519 host key; one throw-away user key is authorised for all.
The remote command is ``sys.executable -m dvo.remote`` on this machine. Tests skip (with the
reason) when ``/usr/sbin/sshd`` or ``ssh-keygen`` is missing or a server does not start, and
every server is terminated in the finaliser.
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from dvo.tools.loopback_sshd import Sshd, available, keygen, start_sshd


@dataclass
class Farm:
    """The servers of a session, the user key and a known_hosts file naming them all."""

    base: Path
    user_key: Path
    authorized: Path
    known_hosts: Path
    servers: list[Sshd]
    master: Path

    def host(self, server: Sshd, host_id: int):
        """The host-table entry of ``server`` (the remote python is this interpreter)."""
        from dvo.hosts.table import Host

        return Host(host_id, "127.0.0.1", str(server.root), port=server.port, user=None,
                    keyfile=str(self.user_key), python=sys.executable)  # fmt: skip

    def hosted_copy(self, tmp_path: Path, servers: list[Sshd], *, backups: bool = True):
        """A private copy of the tiny db, its partitions assigned to ``servers`` and marked
        pushed (the servers' roots already hold the same files); returns (db, hosts)."""
        import numpy as np

        from dvo import layout
        from dvo.database import open_database
        from dvo.hosts.assign import DATA_ON_BCK, DATA_ON_TGT, assign_hosts
        from dvo.hosts.table import write_host_table
        from dvo.transaction import Transaction

        path = tmp_path / "db"
        shutil.copytree(self.master, path)
        db = open_database(path)
        hosts = [self.host(s, k + 1) for k, s in enumerate(servers)]
        write_host_table(path, hosts)
        assign_hosts(db, hosts, backups=backups)
        st = db.skytable
        on_tgt = np.where(st.host_id > 0, DATA_ON_TGT, 0)
        flags = on_tgt | np.where(st.backup_id > 0, DATA_ON_BCK, 0)
        with Transaction(path) as tx:
            st.with_hosts(None, None, flags.astype(np.uint8)).write(tx.stage(layout.SKYTABLE))
        return open_database(path), hosts

    def start(self, name: str, *, copy: bool = True) -> Sshd:
        """An extra server with its own copy of the database (``copy=False``: no files yet)."""
        root = self.base / f"root-{name}"
        if copy:
            shutil.copytree(self.master, root)
        try:
            server = start_sshd(self.base, name, root, self.authorized)
        except RuntimeError as exc:
            pytest.skip(str(exc))
        self.servers.append(server)
        with open(self.known_hosts, "a") as fh:
            fh.write(server.known_hosts_line() + "\n")
        return server


@pytest.fixture(scope="session")
def sshd_farm(tiny_db_master, tmp_path_factory):
    """Two sshd servers, each serving a copy of the tiny database."""
    reason = available()
    if reason is not None:
        pytest.skip(reason)
    pytest.importorskip("paramiko")
    base = tmp_path_factory.mktemp("sshd")
    user_key = base / "user_key"
    authorized = base / "authorized_keys"
    authorized.write_text(keygen(user_key) + "\n")
    farm = Farm(base, user_key, authorized, base / "known_hosts", [], Path(tiny_db_master))
    farm.known_hosts.write_text("")
    try:
        for name in ("a", "b"):
            farm.start(name)
        yield farm
    finally:
        for server in farm.servers:
            server.kill()
