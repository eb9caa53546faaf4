"""Throw-away OpenSSH servers on loopback ports, for the partition-host tests and benchmark.

Each server (Debian ``openssh-server``: ``/usr/sbin/sshd -D -e -f CONFIG``) listens on
127.0.0.1 at a free port with its own ed25519 host key and accepts one throw-away user key
(``AuthorizedKeysFile``), root included (``PermitRootLogin prohibit-password``). It is started
in its own session and killed together with every session process it forked.

Nothing here is used by the engine; it exists so tests and ``bench/hosts.py`` share one recipe.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SSHD", "Sshd", "keygen", "start_sshd", "available"]

SSHD = "/usr/sbin/sshd"
READY_TIMEOUT = 30.0


def keygen(path: Path) -> str:
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
    """Start one sshd on a free loopback port and wait (bounded) until it greets.

    Raises
    ------
    RuntimeError
        The server exited or did not greet within ``READY_TIMEOUT`` seconds (log tail given).
    """
    folder = base / name
    folder.mkdir()
    host_pub = keygen(folder / "host_key")
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
    raise RuntimeError(f"sshd did not start: {(folder / 'sshd.log').read_text()[-300:]!r}")


def available() -> str | None:
    """None when sshd and ssh-keygen can run here, else the reason they cannot."""
    if not os.access(SSHD, os.X_OK) or shutil.which("ssh-keygen") is None:
        return "OpenSSH server (/usr/sbin/sshd) or ssh-keygen not installed"
    try:
        os.makedirs("/run/sshd", exist_ok=True)  # sshd's privilege separation directory
    except OSError as exc:
        return f"cannot create /run/sshd: {exc}"
    return None
