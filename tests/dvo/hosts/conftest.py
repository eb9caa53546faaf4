"""Real OpenSSH servers on loopback ports, each serving its own copy of the tiny database.

Every server gets a throw-away ed25519 host key; one throw-away user key is authorised for all.
The remote command is ``sys.executable -m dvo.remote`` on this machine. Tests skip (with the
reason) when ``/usr/sbin/sshd`` or ``ssh-keygen`` is missing or a server does not start, and
every server is terminated in the finaliser.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
READY_TIMEOUT = 30.0


def _keygen(path: Path) -> str:
    """Make an ed25519 key pair without passphrase; returns the public key line."""
    keygen = shutil.which("ssh-keygen")
    subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=60)  # fmt: skip
    return Path(str(path) + ".pub").read_text().strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _banner(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            return s.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """Every process descending from ``pid`` (from /proc/*/stat parent ids)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(stat.parent.name)] = int(fields[1])
    out, frontier = [], {pid}
    while frontier:
        frontier = {p for p, pp in parent.items() if pp in frontier}
        out += sorted(frontier)
    return out


@dataclass
class Sshd:
    """One running sshd: its port, host public key, partition root and process."""

    name: str
    port: int
    host_pub: str
    root: Path
    proc: subprocess.Popen | None = None

    def known_hosts_line(self) -> str:
        return f"[127.0.0.1]:{self.port} {' '.join(self.host_pub.split()[:2])}"

    def kill(self) -> None:
        """Kill the server and every session it runs (sshd's session processes call setsid,
        so they are found as descendants through /proc, not by process group)."""
        if self.proc is None or self.proc.poll() is not None:
            return
        for pid in [self.proc.pid, *_descendants(self.proc.pid)]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=30)


def start_sshd(base: Path, name: str, root: Path, authorized: Path) -> Sshd:
    """Start one sshd on a free loopback port and wait (bounded) until it greets."""
    folder = base / name
    folder.mkdir()
    host_pub = _keygen(folder / "host_key")
    port = _free_port()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {authorized}\nPermitRootLogin prohibit-password\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nPubkeyAuthentication yes\n"
        f"UsePAM no\nStrictModes no\nPidFile {folder / 'sshd.pid'}\nMaxSessions 30\n"
        f"MaxStartups 50\nLogLevel ERROR\nSubsystem sftp internal-sftp\n"
    )
    log = open(folder / "sshd.log", "wb")  # noqa: SIM115 - kept open for the server's life
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(config)], stdin=subprocess.DEVNULL,
                            stdout=log, stderr=log, start_new_session=True)  # fmt: skip
    server = Sshd(name, port, host_pub, root, proc)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            break
        if _banner(port):
            return server
        time.sleep(0.05)  # readiness poll, bounded by READY_TIMEOUT
    server.kill()
    pytest.skip(f"sshd did not start: {(folder / 'sshd.log').read_text()[-300:]!r}")


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
        server = start_sshd(self.base, name, root, self.authorized)
        self.servers.append(server)
        with open(self.known_hosts, "a") as fh:
            fh.write(server.known_hosts_line() + "\n")
        return server


@pytest.fixture(scope="session")
def sshd_farm(tiny_db_master, tmp_path_factory):
    """Two sshd servers, each serving a copy of the tiny database."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server (/usr/sbin/sshd) or ssh-keygen not installed")
    pytest.importorskip("paramiko")
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    except OSError as exc:
        pytest.skip(f"cannot create /run/sshd: {exc}")
    base = tmp_path_factory.mktemp("sshd")
    user_key = base / "user_key"
    authorized = base / "authorized_keys"
    authorized.write_text(_keygen(user_key) + "\n")
    farm = Farm(base, user_key, authorized, base / "known_hosts", [], Path(tiny_db_master))
    farm.known_hosts.write_text("")
    try:
        for name in ("a", "b"):
            farm.start(name)
        yield farm
    finally:
        for server in farm.servers:
            server.kill()
