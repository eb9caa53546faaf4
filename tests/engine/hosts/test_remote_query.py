"""Queries on partition hosts (real sshd) return exactly what the same query returns locally."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from dvo.errors import HostError


def _config(farm, **kw):
    from dvo.hosts.ssh import SshConfig

    kw.setdefault("known_hosts", str(farm.known_hosts))
    kw.setdefault("connect_timeout", 30.0)
    kw.setdefault("command_timeout", 60.0)
    return SshConfig(**kw)


def _scan_all(db, executor, table="objects", where=None):
    from dvo.query.engine import build_request
    from dvo.query.execute import ScanTask

    req = build_request(db, None, table=table, columns="*", where=where)
    task = ScanTask(req)
    out = list(executor.map(str(db.catdir), [(int(i), task) for i in db.populated()]))
    return out


@pytest.fixture
def hosted(sshd_farm, tmp_path):
    """(db, hosts) with the tiny db's partitions spread over the two session servers."""
    return sshd_farm.hosted_copy(tmp_path, sshd_farm.servers[:2])


@pytest.mark.parametrize(("table", "where"), [("objects", "g < 21"), ("measures", "airmass < 1.5")])
def test_remote_scan_equals_local(hosted, sshd_farm, table, where):
    from dvo.hosts.executor import HostExecutor
    from dvo.query.execute import InProcess

    db, hosts = hosted
    assert set(np.unique(db.skytable.host_id[db.populated()])) == {1, 2}
    remote = _scan_all(db, HostExecutor(db, hosts, _config(sshd_farm)), table, where)
    local = _scan_all(db, InProcess(), table, where)
    assert [i for i, _ in remote] == [i for i, _ in local]
    for (_, a), (_, b) in zip(remote, local, strict=True):
        assert a.dtype == b.dtype and a.tobytes() == b.tobytes()


def test_unknown_host_key_refused(hosted, sshd_farm, tmp_path):
    from dvo.hosts.executor import HostExecutor

    db, hosts = hosted
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    executor = HostExecutor(db, hosts, _config(sshd_farm, known_hosts=str(empty), retries=0))
    with pytest.raises(HostError, match="unknown host key") as info:
        _scan_all(db, executor)
    assert info.value.host is not None and "127.0.0.1" in info.value.host
    assert empty.read_text() == ""  # nothing was trusted silently


def test_kill_server_mid_query_fails_over_to_backup(sshd_farm, tmp_path):
    from dvo.hosts.executor import FailoverWarning, HostExecutor
    from dvo.query.execute import InProcess

    victim = sshd_farm.start(f"victim{len(sshd_farm.servers)}")
    db, hosts = sshd_farm.hosted_copy(tmp_path, [victim, sshd_farm.servers[0]])
    cfg = _config(sshd_farm, partitions_per_request=1, connections_per_host=1, retries=1,
                  connect_timeout=10.0)  # fmt: skip
    killed = []

    class KillAfterFirst(HostExecutor):
        def _deliver(self, index, rows, via=None):
            super()._deliver(index, rows, via)
            if not killed and self.skytable.host_id[index] == 1:
                killed.append(index)
                victim.kill()  # the victim dies between two of its partitions

    executor = KillAfterFirst(db, hosts, cfg)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        remote = _scan_all(db, executor)
    local = _scan_all(db, InProcess())
    assert killed and executor.failovers, (
        f"no failover: killed={killed} st={db.skytable.host_id[db.populated()]}"
    )
    assert any(issubclass(w.category, FailoverWarning) for w in caught)
    assert all(v.startswith("1:") for v in executor.failovers.values())
    assert [(i, a.tobytes()) for i, a in remote] == [(i, b.tobytes()) for i, b in local]


def test_dead_host_without_backup_names_host_and_partitions(sshd_farm, tmp_path):
    from dvo.hosts.executor import HostExecutor, PartialResultWarning

    victim = sshd_farm.start(f"victim{len(sshd_farm.servers)}")
    db, hosts = sshd_farm.hosted_copy(tmp_path, [victim, sshd_farm.servers[0]], backups=False)
    victim.kill()
    cfg = _config(sshd_farm, retries=1, connect_timeout=10.0)
    lost = [str(db.skytable.name[i]) for i in db.populated() if db.skytable.host_id[i] == 1]
    with pytest.raises(HostError, match="partitions not read") as info:
        _scan_all(db, HostExecutor(db, hosts, cfg))
    assert info.value.host.startswith("1:127.0.0.1:")
    assert all(name in str(info.value) for name in lost)
    partial = HostExecutor(db, hosts, _config(sshd_farm, retries=0, allow_partial=True))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = _scan_all(db, partial)
    assert {str(db.skytable.name[i]) for i, _ in got}.isdisjoint(lost)
    assert len(partial.missing) == len(lost)
    assert any(issubclass(w.category, PartialResultWarning) for w in caught)


def test_engine_sends_pushed_partitions_to_hosts(hosted, sshd_farm):
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.query.engine import explain, query

    db, _ = hosted
    local = query(open_database(sshd_farm.master), None, columns="*", where="g < 20",
                  order_by="-g", output="numpy")  # fmt: skip
    with host_options(known_hosts=str(sshd_farm.known_hosts)):
        assert explain(db, None).executor == "partition hosts"
        remote = query(db, None, columns="*", where="g < 20", order_by="-g", output="numpy")
    assert len(local) > 0 and remote.tobytes() == local.tobytes()


def test_cli_allow_partial_lists_missing(sshd_farm, tmp_path):
    from click.testing import CliRunner

    from dvo.cli.main import cli

    victim = sshd_farm.start(f"victim{len(sshd_farm.servers)}")
    db, _ = sshd_farm.hosted_copy(tmp_path, [victim, sshd_farm.servers[0]], backups=False)
    victim.kill()
    lost = [str(db.skytable.name[i]) for i in db.populated() if db.skytable.host_id[i] == 1]
    args = ["box", "-D", str(db.catdir), "--known-hosts", str(sshd_farm.known_hosts), "-q",
            "--format", "csv", "350", "10", "5", "10"]  # fmt: skip
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code != 0 and "partitions not read" in str(failed.exception or failed.output)
    partial = CliRunner().invoke(cli, [*args, "--allow-partial"])
    assert partial.exit_code == 0, partial.output
    assert "partial result" in partial.stderr and all(n in partial.stderr for n in lost)


def test_trust_new_host_keys_records_them(hosted, sshd_farm, tmp_path):
    from dvo.hosts.executor import HostExecutor

    db, hosts = hosted
    known = tmp_path / "ssh" / "known_hosts"
    trusting = HostExecutor(db, hosts, _config(sshd_farm, known_hosts=str(known),
                                                trust_new_host_keys=True))  # fmt: skip
    assert len(_scan_all(db, trusting)) == len(db.populated())
    recorded = known.read_text()
    assert all(f"[127.0.0.1]:{s.port}" in recorded for s in sshd_farm.servers[:2])
    strict = HostExecutor(db, hosts, _config(sshd_farm, known_hosts=str(known)))
    assert len(_scan_all(db, strict)) == len(db.populated())


def test_changed_host_key_refused_even_when_trusting(sshd_farm, tmp_path):
    from dvo.hosts.executor import HostExecutor

    db, hosts = sshd_farm.hosted_copy(tmp_path, sshd_farm.servers[:2], backups=False)
    other = sshd_farm.servers[1].host_pub.split()[:2]
    known = tmp_path / "known_hosts"  # server a's address with server b's key
    known.write_text(f"[127.0.0.1]:{sshd_farm.servers[0].port} {' '.join(other)}\n")
    cfg = _config(sshd_farm, known_hosts=str(known), trust_new_host_keys=True, retries=0)
    with pytest.raises(HostError, match="does not match known_hosts") as info:
        _scan_all(db, HostExecutor(db, hosts, cfg))
    assert info.value.host == hosts[0].label
