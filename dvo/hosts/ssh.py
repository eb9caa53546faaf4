"""SSH to partition hosts (paramiko): verified host keys, key authentication, a fixed command.

- Host keys are checked against ``known_hosts`` (default ``~/.ssh/known_hosts``) and unknown
  keys are refused (:class:`paramiko.RejectPolicy`) unless ``trust_new_host_keys`` is set, in
  which case a new key is accepted and recorded. A *changed* key is always refused.
- Authentication is by key only (the host's ``keyfile``, else the default keys); no password.
- The remote command is fixed: ``<python> -m dvo.remote`` with ``python`` a validated,
  shell-quoted host-table value. Requests travel on stdin, never on the command line.
- Every connect and every read has a timeout; every failure is a :class:`HostError` naming the
  host.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dvo.errors import HostError
from dvo.hosts.protocol import PROTOCOL, dvo_version, read_frame
from dvo.hosts.table import Host

__all__ = ["SshConfig", "connect", "remote_command", "call", "Session"]


@dataclass(frozen=True)
class SshConfig:
    """How to reach hosts: host-key policy, timeouts, retries, connections per host.

    A request carries ``partitions_per_request`` partitions (default: a host's share split
    over its connections, at least ``min_partitions_per_request`` since each request starts a
    Python process on the host, at most 32 so that results keep streaming).
    """

    known_hosts: str | None = None
    trust_new_host_keys: bool = False
    connect_timeout: float = 30.0
    command_timeout: float = 300.0
    retries: int = 1
    connections_per_host: int = 2
    partitions_per_request: int | None = None
    min_partitions_per_request: int = 8
    allow_partial: bool = False

    def known_hosts_path(self) -> Path:
        """The known_hosts file to verify against."""
        return Path(os.path.expanduser(self.known_hosts or "~/.ssh/known_hosts"))


def remote_command(host: Host) -> str:
    """The only command ever run on a host: fixed text plus the validated, quoted python.

    Examples
    --------
    >>> remote_command(Host(1, "node01", "/data", python="/opt/py/bin/python3"))
    '/opt/py/bin/python3 -m dvo.remote'
    """
    return f"{shlex.quote(host.python)} -m dvo.remote"


def _one_line(text: str, limit: int = 300) -> str:
    return " ".join(str(text).split())[:limit]


def connect(host: Host, cfg: SshConfig):
    """An authenticated :class:`paramiko.SSHClient` to ``host``.

    Raises
    ------
    HostError
        Unreachable, timed out, unknown or changed host key, authentication refused.
    """
    import paramiko

    client = paramiko.SSHClient()
    known = cfg.known_hosts_path()
    if known.is_file():
        client.load_host_keys(str(known))
    policy = paramiko.AutoAddPolicy() if cfg.trust_new_host_keys else paramiko.RejectPolicy()
    client.set_missing_host_key_policy(policy)
    t = cfg.connect_timeout
    try:
        client.connect(host.hostname, port=host.port, username=host.user or getpass.getuser(),
                       key_filename=host.key_path(), look_for_keys=host.keyfile is None,
                       allow_agent=False, timeout=t, banner_timeout=t, auth_timeout=t,
                       channel_timeout=t)  # fmt: skip
    except paramiko.BadHostKeyException:
        client.close()
        raise HostError("host key does not match known_hosts (refused)", host=host.label) from None
    except paramiko.AuthenticationException as exc:
        client.close()
        raise HostError(f"authentication refused ({_one_line(exc)})", host=host.label) from None
    except paramiko.SSHException as exc:
        client.close()
        reason = _one_line(exc)
        if "not found in known_hosts" in reason:
            reason = f"unknown host key, not in {known} (refused; see --trust-new-host-keys)"
        raise HostError(reason, host=host.label) from None
    except (OSError, EOFError) as exc:
        client.close()
        raise HostError(
            f"cannot connect ({_one_line(exc) or 'timeout'})", host=host.label
        ) from None
    if cfg.trust_new_host_keys:
        known.parent.mkdir(parents=True, exist_ok=True)
        client.save_host_keys(str(known))
    return client


def _failure(chan, host: Host, what: str) -> HostError:
    """A HostError with the worker's exit status and last stderr line, if any."""
    detail = ""
    try:
        if chan.exit_status_ready():
            err = chan.recv_stderr(4096).decode(errors="replace").strip().splitlines()
            detail = f" (exit {chan.recv_exit_status()}{': ' + err[-1] if err else ''})"
    except (OSError, EOFError):
        pass
    return HostError(_one_line(what + detail), host=host.label)


def call(client, host: Host, message: dict, cfg: SshConfig) -> Iterator[tuple[bytes, Any]]:
    """Run one request on ``host``; yields the frames after the worker's hello.

    Raises
    ------
    HostError
        Timeouts, a dropped connection, a version mismatch or a structured worker error
        (``.code`` and ``.partitions`` set from the worker's message).
    """
    import paramiko

    body = json.dumps({**message, "version": dvo_version(), "protocol": PROTOCOL}).encode()
    try:
        chan = client.get_transport().open_session(timeout=cfg.connect_timeout)
    except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
        raise HostError(f"cannot open a session ({_one_line(exc)})", host=host.label) from None
    try:
        chan.settimeout(cfg.command_timeout)
        chan.exec_command(remote_command(host))
        chan.sendall(body)
        chan.shutdown_write()
        stream = chan.makefile("rb")
        yield from _frames(stream, chan, host)
    except TimeoutError:
        raise HostError(f"no answer within {cfg.command_timeout:g} s", host=host.label) from None
    except (paramiko.SSHException, OSError, EOFError) as exc:
        raise HostError(f"connection lost ({_one_line(exc)})", host=host.label) from None
    finally:
        chan.close()


def _hello(stream, chan, host: Host) -> None:
    try:
        kind, hello = read_frame(stream)
    except HostError as exc:
        raise _failure(chan, host, f"worker did not start: {exc.reason}") from None
    if kind != b"J" or hello.get("type") != "hello":
        raise HostError("worker did not greet", host=host.label)
    if hello.get("version") != dvo_version() or hello.get("protocol") != PROTOCOL:
        raise HostError(f"runs dvo {hello.get('version')!s:.40}, this is dvo {dvo_version()}",
                        host=host.label)  # fmt: skip


def _frames(stream, chan, host: Host) -> Iterator[tuple[bytes, Any]]:
    _hello(stream, chan, host)
    yield from _replies(stream, chan, host)


def _replies(stream, chan, host: Host) -> Iterator[tuple[bytes, Any]]:
    """The frames of one reply, up to its ``end`` (an ``error`` message is raised)."""
    while True:
        try:
            kind, payload = read_frame(stream)
        except HostError as exc:
            raise _failure(chan, host, exc.reason) from None
        if kind == b"J" and payload["type"] == "end":
            return
        if kind == b"J" and payload["type"] == "error":
            err = HostError(f"worker error: {_one_line(payload.get('message'))}", host=host.label)
            err.code = str(payload.get("code"))
            err.partitions = [str(p) for p in payload.get("partitions") or []][:20]
            raise err
        yield kind, payload


class Session:
    """One worker on a host answering several requests in turn, over one SSH channel.

    Requests are framed (``J`` + length + JSON) instead of ending at EOF, so the worker
    process, its imports and compiled kernels serve a whole calibration run (each pass is one
    request). A session whose reply was not read to its end is out of step: it is closed,
    never reused (:attr:`usable`).

    Raises
    ------
    HostError
        As :func:`call`.
    """

    def __init__(self, client, host: Host, cfg: SshConfig) -> None:
        import paramiko

        self.host, self.cfg, self.usable = host, cfg, False
        try:
            self.chan = client.get_transport().open_session(timeout=cfg.connect_timeout)
        except (paramiko.SSHException, OSError, EOFError, AttributeError) as exc:
            raise HostError(f"cannot open a session ({_one_line(exc)})", host=host.label) from None
        try:
            self.chan.settimeout(cfg.command_timeout)
            self.chan.exec_command(remote_command(host))
            self.stream = self.chan.makefile("rb")
            _hello(self.stream, self.chan, host)
        except TimeoutError:
            self.close()
            raise HostError(
                f"no answer within {cfg.command_timeout:g} s", host=host.label
            ) from None
        except (paramiko.SSHException, OSError, EOFError) as exc:
            self.close()
            raise HostError(f"connection lost ({_one_line(exc)})", host=host.label) from None
        except HostError:
            self.close()
            raise
        self.usable = True

    def request(self, message: dict) -> Iterator[tuple[bytes, Any]]:
        """Send one request; yields its reply's frames (the session is reusable once the
        reply was read to its end)."""
        import paramiko

        from dvo.hosts.protocol import frame

        if not self.usable:
            raise HostError("session is closed", host=self.host.label)
        self.usable = False
        body = json.dumps({**message, "version": dvo_version(), "protocol": PROTOCOL}).encode()
        try:
            self.chan.sendall(frame(b"J", body))
            yield from _replies(self.stream, self.chan, self.host)
        except TimeoutError:
            raise HostError(f"no answer within {self.cfg.command_timeout:g} s",
                            host=self.host.label) from None  # fmt: skip
        except (paramiko.SSHException, OSError, EOFError) as exc:
            raise HostError(f"connection lost ({_one_line(exc)})", host=self.host.label) from None
        self.usable = True

    def close(self) -> None:
        """End the worker (it exits at end of input) and the channel."""
        self.usable = False
        with contextlib.suppress(Exception):  # a dead channel cannot be shut down
            self.chan.shutdown_write()
        self.chan.close()
