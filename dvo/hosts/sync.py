"""``dvo hosts check|push|pull``: copy partitions to and from hosts over SFTP, verified.

- **push** copies every assigned partition (and the small database-wide files its worker
  needs: settings, SkyTable, Photcodes, Images, Stats) to its host and backup host, each file
  to a temporary name and then renamed; asks each host's worker for the SHA-256 of what it now
  holds and compares with the local files; only when *every* copy matches does it switch the
  SkyTable (``HOST_FLAGS`` ``DATA_ON_TGT`` / ``DATA_ON_BCK``) in one transaction. A failure
  leaves the SkyTable untouched and names the host and partitions.
- **pull** downloads each pushed partition from its host (or backup) into a transaction,
  checks the checksums the worker reports, and commits the files together with a SkyTable that
  marks them local again.
- Partitions rewritten on their hosts by relphot or relastro (:mod:`dvo.hosts.twophase`) are
  newer there than here: check compares them with the checksums recorded by that write, push
  refuses to overwrite them (pull first), and both push and pull refuse to run while a host
  write is pending (``dvo hosts resume``).
- **check** connects to each host, compares versions (the worker's hello) and the checksums of
  every partition the SkyTable says it holds with the local copies.

The local copies are kept by push, so check also finds hosts whose copies went stale.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path, PurePosixPath

import numpy as np

from dvo import layout
from dvo.errors import HostError
from dvo.hosts.assign import DATA_ON_BCK, DATA_ON_TGT
from dvo.hosts.manifest import file_stamps
from dvo.hosts.ssh import SshConfig, call, connect
from dvo.hosts.table import Host, hosts_by_id, lookup_host, read_host_table
from dvo.hosts.tasks import file_checksums
from dvo.hosts.twophase import RECORD

__all__ = ["check_hosts", "push", "pull"]

GLOBAL_FILES = (layout.SETTINGS, layout.SKYTABLE, layout.PHOTCODES, layout.IMAGES, layout.STATS)


def _holdings(db, host_id: int, *, pushed_only: bool) -> np.ndarray:
    """SkyTable indices of populated partitions ``host_id`` holds as primary or backup."""
    st, idx = db.skytable, db.populated()
    flags = st.host_flags[idx]
    tgt = (st.host_id[idx] == host_id) & (((flags & DATA_ON_TGT) != 0) | (not pushed_only))
    bck = (st.backup_id[idx] == host_id) & (((flags & DATA_ON_BCK) != 0) | (not pushed_only))
    return idx[tgt | bck]


def remote_checksums(client, host: Host, names: dict[int, str], cfg: SshConfig) -> dict:
    """``{index: {path: [size, sha256]}}`` as reported by the host's worker."""
    message = {"op": "checksums", "catdir": host.path,
               "partitions": [{"index": i, "name": n} for i, n in names.items()]}  # fmt: skip
    out = {}
    for kind, payload in call(client, host, message, cfg):
        if kind != b"J" or payload.get("type") != "summary" or payload.get("index") not in names:
            raise HostError("worker sent an unexpected message", host=host.label)
        out[int(payload["index"])] = payload.get("data")
    return out


def _compare(db, names: dict[int, str], remote: dict) -> list[str]:
    """Partitions whose remote files differ from what they should hold: the local files, or,
    for partitions rewritten on their hosts (relphot, relastro), the checksums recorded then
    (missing counts as differing)."""
    from dvo.hosts.twophase import read_record

    newer = read_record(db.catdir)["rewritten"]
    return [
        name
        for i, name in names.items()
        if remote.get(i) != (newer.get(name) or file_checksums(db.catdir, name))
    ]


def _refuse_if_hosts_newer(db, what: str) -> None:
    """Host copies newer than the local files must not be overwritten (push) and an
    unfinished host write must be finished first (push, pull)."""
    from dvo.hosts.twophase import read_record

    record = read_record(db.catdir)
    if record["pending"]:
        raise HostError(f"a host write is pending; run dvo hosts resume before {what}")
    if record["rewritten"] and what == "push":
        raise HostError(
            f"{len(record['rewritten'])} partitions were rewritten on their hosts and are newer "
            "than the local files; run dvo hosts pull first"
        )


def _sftp_mkdirs(sftp, path: PurePosixPath) -> None:
    for parent in [*reversed(path.parents), path]:
        try:
            sftp.stat(str(parent))
        except OSError:
            sftp.mkdir(str(parent))


def _upload(sftp, local: Path, remote: PurePosixPath, tag: str) -> None:
    """Copy one file to a temporary name next to its target, then rename it into place."""
    _sftp_mkdirs(sftp, remote.parent)
    tmp = remote.with_name(f".{remote.name}.{tag}")
    sftp.put(str(local), str(tmp))
    sftp.posix_rename(str(tmp), str(remote))


def _push_host(db, host: Host, indices: np.ndarray, cfg: SshConfig, tag: str) -> list[str]:
    """Copy and verify ``indices`` on ``host``; returns the partitions that do not match."""
    root = PurePosixPath(host.path)
    names = {int(i): layout.check_partition_name(str(db.skytable.name[i])) for i in indices}
    client = connect(host, cfg)
    try:
        sftp = client.open_sftp()
        sftp.get_channel().settimeout(cfg.command_timeout)
        _sftp_mkdirs(sftp, root / layout.state_dir("").name)
        for rel in GLOBAL_FILES:
            _upload(sftp, db.catdir / rel, root / rel, tag)
        for name in names.values():
            for path in layout.partition_files(db.catdir, name).values():
                if path.is_file():
                    _upload(sftp, path, root / path.relative_to(db.catdir).as_posix(), tag)
        sftp.close()
        return _compare(db, names, remote_checksums(client, host, names, cfg))
    except OSError as exc:
        raise HostError(f"SFTP failed ({' '.join(str(exc).split())})", host=host.label) from None
    finally:
        client.close()


def push(db, cfg: SshConfig, *, echo: Callable[[str], None] = print) -> int:
    """Copy every assigned partition to its hosts, verify, then switch the SkyTable.

    Returns the number of partitions now marked on their host.

    Raises
    ------
    HostError
        A host failed or a copy does not match (named); the SkyTable is then unchanged.
    """
    import uuid

    from dvo.transaction import Transaction

    hosts = read_host_table(db.catdir)
    tag = uuid.uuid4().hex[:8]
    with db.writer(timeout=60):
        _refuse_if_hosts_newer(db, "push")
        bad: list[str] = []
        for host in hosts:
            indices = _holdings(db, host.id, pushed_only=False)
            if len(indices):
                wrong = _push_host(db, host, indices, cfg, tag)
                bad += [f"{name} on {host.label}" for name in wrong]
                echo(f"host {host.label}: {len(indices) - len(wrong)}/{len(indices)} verified")
        if bad:
            raise HostError(f"copies do not match, SkyTable unchanged: {', '.join(bad)}")
        st = db.skytable
        flags = np.where(st.host_id > 0, DATA_ON_TGT, 0) | np.where(
            st.backup_id > 0, DATA_ON_BCK, 0
        )
        names = [str(st.name[i]) for i in db.populated() if st.host_id[i] > 0]
        manifest = {name: file_stamps(db.catdir, name) for name in names}
        with Transaction(db.catdir) as tx:
            st.with_hosts(None, None, flags.astype(np.uint8)).write(tx.stage(layout.SKYTABLE))
            tx.stage(layout.HOSTMANIFEST).write_text(json.dumps(manifest))
    db.__dict__.pop("skytable", None)
    return len(names)


def check_hosts(db, cfg: SshConfig, *, echo: Callable[[str], None] = print) -> list[str]:
    """Problems found on the hosts (unreachable, other version, files differing); [] if none."""
    problems = []
    for host in read_host_table(db.catdir):
        indices = _holdings(db, host.id, pushed_only=True)
        names = {int(i): str(db.skytable.name[i]) for i in indices}
        try:
            client = connect(host, cfg)
            try:
                wrong = _compare(db, names, remote_checksums(client, host, names, cfg))
            finally:
                client.close()
        except HostError as exc:
            problems.append(str(exc))
            echo(f"host {host.label}: {exc.reason}")
            continue
        problems += [f"host {host.label}: {name} differs from the local copy" for name in wrong]
        echo(f"host {host.label}: {len(names) - len(wrong)}/{len(names)} partitions match")
    return problems


def _pull_host(db, client, host: Host, indices: np.ndarray, stage, cfg: SshConfig) -> None:
    """Download partitions into the transaction and check them against the worker's sums."""
    names = {int(i): layout.check_partition_name(str(db.skytable.name[i])) for i in indices}
    expected = remote_checksums(client, host, names, cfg)
    sftp = client.open_sftp()
    try:
        sftp.get_channel().settimeout(cfg.command_timeout)
        for index, name in names.items():
            for path in layout.partition_files(db.catdir, name).values():
                rel = path.relative_to(db.catdir).as_posix()
                if rel in expected[index]:
                    sftp.get(str(PurePosixPath(host.path) / rel), str(stage(rel)))
            _check_staged(stage, expected[index], host, name)
    finally:
        sftp.close()


def _check_staged(stage, expected: dict, host: Host, name: str) -> None:
    from dvo.hosts.tasks import sha256_file

    for rel, (size, digest) in expected.items():
        path = stage(rel)
        if path.stat().st_size != size or sha256_file(path) != digest:
            raise HostError(f"pulled copy of {name} does not match its checksum", host=host.label)


def pull(db, cfg: SshConfig, *, echo: Callable[[str], None] = print) -> int:
    """Copy pushed partitions back from their hosts and mark them local, in one transaction."""
    from dvo.transaction import Transaction

    hosts = hosts_by_id(read_host_table(db.catdir))
    st = db.skytable
    idx = db.populated()
    pushed = idx[(st.host_id[idx] > 0) & ((st.host_flags[idx] & DATA_ON_TGT) != 0)]
    with db.writer(timeout=60), Transaction(db.catdir) as tx:
        _refuse_if_hosts_newer(db, "pull")
        for hid in np.unique(st.host_id[pushed]):
            host = lookup_host(hosts, hid)
            client = connect(host, cfg)
            try:
                _pull_host(db, client, host, pushed[st.host_id[pushed] == hid], tx.stage, cfg)
            except OSError as exc:
                raise HostError(f"SFTP failed ({exc})", host=host.label) from None
            finally:
                client.close()
            echo(f"host {host.label}: {int((st.host_id[pushed] == hid).sum())} partitions pulled")
        st.with_hosts(None, None, np.zeros(len(st), np.uint8)).write(tx.stage(layout.SKYTABLE))
        tx.stage(layout.HOSTMANIFEST).write_text("{}")
        if (db.catdir / RECORD).exists():  # the local files are the newest copies again
            tx.stage(RECORD).write_text(json.dumps({"pending": None, "rewritten": {}}))
    db.__dict__.pop("skytable", None)
    return len(pushed)
