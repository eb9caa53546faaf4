"""addstar on partition hosts (real sshd) equals the same addstar on a local copy.

Half of the tiny survey is loaded locally, the database spread over two fresh servers (backups
on the other one, one partition kept here), then the other half is loaded with the hosts
updating their partitions: the Images, the statistics index and every table of every
partition (read from each host copy, and after ``dvo hosts pull`` from the local files) must
be byte for byte those of the same addstar on a plain local copy. A host killed mid-run stops
the run with an error naming it, leaves the database as of the last checkpoint (verified,
nothing pending) and a rerun once the host is back ends with the local result.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import Helpers

from dvo.errors import HostError

TABLES = ("average", "secfilt", "measure", "lensing")


def _config(farm, **kw) -> dict:
    kw.setdefault("known_hosts", str(farm.known_hosts))
    kw.setdefault("connect_timeout", 30.0)
    kw.setdefault("command_timeout", 120.0)
    return kw


@pytest.fixture(scope="module")
def half_master(tiny_survey, tmp_path_factory):
    """(database with the first half of the tiny survey, the other half's smf paths)."""
    from dvo.database import create_database
    from dvo.ingest import addstar

    paths = tiny_survey[0]
    db = create_database(tmp_path_factory.mktemp("addstar_hosts") / "half")
    assert not addstar(db, paths[:4]).failed
    return db.catdir, paths[4:]


@pytest.fixture(scope="module")
def local_result(half_master, tmp_path_factory):
    """The half database with the other half loaded on a plain local copy (checkpoints
    every 3 files, where the hosted runs use others: the result does not depend on them)."""
    from dvo.database import open_database
    from dvo.ingest import addstar

    master, rest = half_master
    path = tmp_path_factory.mktemp("addstar_local") / "db"
    shutil.copytree(master, path)
    local = open_database(path)
    assert not addstar(local, rest, checkpoint=3).failed
    return local


def _hosted(farm, tmp_path: Path, master: Path, tag: str):
    """(db, servers): ``master`` spread over two fresh servers, backups on the other, and its
    first populated partition taken back here (a mixed database)."""
    from dvo import layout
    from dvo.database import open_database
    from dvo.transaction import Transaction

    servers = []
    for k in range(2):
        server = farm.start(f"{tag}{k}-{len(farm.servers)}", copy=False)
        shutil.copytree(master, server.root)
        servers.append(server)
    saved, farm.master = farm.master, master
    try:
        db, _ = farm.hosted_copy(tmp_path, servers)
    finally:
        farm.master = saved
    st = db.skytable
    keep = int(db.populated()[0])
    host_id, backup_id, flags = (st.host_id.copy(), st.backup_id.copy(), st.host_flags.copy())
    host_id[keep] = backup_id[keep] = flags[keep] = 0
    with Transaction(db.catdir) as tx:
        st.with_hosts(host_id, backup_id, flags).write(tx.stage(layout.SKYTABLE))
    return open_database(db.catdir), servers


def _copies(db, servers, index: int) -> list:
    """The partition from each server holding it (primary first), or the local copy."""
    from dvo.database import open_database

    st = db.skytable
    by_id = {k + 1: s for k, s in enumerate(servers)}
    holders = [int(h) for h in (st.host_id[index], st.backup_id[index]) if h]
    if not holders:
        return [db.partition(index)]
    return [open_database(by_id[h].root).partition(index) for h in holders]


def _assert_same(local, db, copies) -> None:
    """Images, statistics and every partition (from ``copies(index)``) equal ``local``'s."""
    a, b = local.images(), db.images()
    assert a.dtype == b.dtype and a.tobytes() == b.tobytes()
    assert local.stats().tobytes() == db.stats().tobytes()
    assert np.array_equal(local.populated(), db.populated())
    for index in local.populated():
        want = local.partition(int(index))
        for got in copies(int(index)):
            for kind in TABLES:
                ta, tb = want.table(kind), got.table(kind)
                assert ta.tobytes() == tb.tobytes(), f"{want.name} {kind}"
            assert want.next_objid == got.next_objid


def _local_files(db, indices) -> dict[str, bytes]:
    from dvo import layout

    out = {}
    for i in indices:
        for path in layout.partition_files(db.catdir, str(db.skytable.name[i])).values():
            out[path.name] = path.read_bytes()
    return out


def test_addstar_on_hosts_equals_local(half_master, local_result, sshd_farm, tmp_path, helpers):
    from dvo.cli.addstar import main
    from dvo.database import open_database
    from dvo.hosts.executor import host_options, pushed_partitions
    from dvo.hosts.ssh import SshConfig
    from dvo.hosts.sync import pull
    from dvo.hosts.twophase import read_record
    from dvo.hosts.verify import verify_hosts

    master, rest = half_master
    local = local_result
    db, servers = _hosted(sshd_farm, tmp_path / "hosted", master, "as")
    st = db.skytable
    pushed = pushed_partitions(db.catdir, st, db.populated())
    assert 0 < len(pushed) < len(db.populated())
    before = _local_files(db, pushed)

    # the command uses the hosts by itself (the partitions are pushed)
    main(["-D", str(db.catdir), "--checkpoint", "2", "--known-hosts", str(sshd_farm.known_hosts),
          "--quiet", *map(str, rest)])  # fmt: skip
    with host_options(**_config(sshd_farm)):
        assert verify_hosts(db) == []
    assert _local_files(db, pushed) == before  # written on the hosts, not here
    record = read_record(db.catdir)
    assert record["pending"] is None
    assert set(record["rewritten"]) == {str(st.name[i]) for i in pushed}
    _assert_same(local, db, lambda i: _copies(db, servers, i))

    pull(db, SshConfig(**_config(sshd_farm)), echo=lambda _: None)
    db = open_database(db.catdir)
    helpers.assert_db_valid(db)
    _assert_same(local, db, lambda i: [db.partition(i)])


@pytest.mark.parametrize(
    ("op", "nth", "logged", "checkpointed"),
    [("addstar_apply", 3, 1, 2), ("addstar_prepare", 1, 2, 0), ("txn_commit", 1, 0, 2)],
    ids=["applying the third file", "preparing the first checkpoint", "before its commit"],
)
def test_host_killed_mid_run_then_rerun(
    half_master, local_result, sshd_farm, tmp_path, monkeypatch, helpers, op, nth, logged,
    checkpointed
):  # fmt: skip
    """Killed while applying a file (after a checkpoint of two) or while preparing the
    first checkpoint: an error naming the host, the database as of the last checkpoint with
    the other files in the log, nothing pending. Killed before committing the first
    checkpoint: committed here and on the other host, pending on it (dvo verify says so).
    Either way a rerun with the host back ends as a local run."""
    from dvo.tools.loopback_sshd import start_sshd

    from dvo.cli.main import main as hosts_main
    from dvo.database import open_database
    from dvo.hosts import ssh
    from dvo.hosts.executor import host_options
    from dvo.hosts.table import write_host_table
    from dvo.hosts.twophase import HOSTTX, pending_partitions
    from dvo.hosts.verify import verify_hosts
    from dvo.ingest import addstar
    from dvo.wal import WriteAheadLog

    master, rest = half_master
    half = open_database(master)
    db, servers = _hosted(sshd_farm, tmp_path / "hosted", master, "ak")
    victim, other = servers
    before, hosts_before = helpers.snapshot(db), [Helpers.snapshot(s.root) for s in servers]
    request, seen = ssh.Session.request, []

    def dies(self, message):
        if self.host.port == victim.port and message["op"] == op:
            seen.append(message)
            if len(seen) == nth:
                victim.kill()
        return request(self, message)

    monkeypatch.setattr(ssh.Session, "request", dies)
    cfg = _config(sshd_farm, connect_timeout=5.0)
    with host_options(**cfg), pytest.raises(HostError) as info:
        addstar(db, rest, checkpoint=2)
    monkeypatch.undo()
    assert str(victim.port) in info.value.host and info.value.partitions
    pending = set(pending_partitions(db.catdir))
    if op == "txn_commit":  # committed here and on the other host; resumable on the victim
        assert "dvo hosts resume" in str(info.value)
        assert pending == set(info.value.partitions)
    else:
        assert "addstar again" in str(info.value) and not pending  # nothing half written
    assert not any((Path(other.root) / ".dvo" / HOSTTX).glob("*/*.json"))  # nothing staged
    assert len(WriteAheadLog(db.catdir).pending()) == logged  # nothing lost
    loaded = np.unique(db.images()["EXP_ID"])
    assert len(loaded) == len(np.unique(half.images()["EXP_ID"])) + checkpointed
    if not checkpointed:  # every file here and on the hosts as before the run
        assert helpers.snapshot(db) == before
        assert [Helpers.snapshot(s.root) for s in servers] == hosts_before

    revived = start_sshd(sshd_farm.base, f"revived-as{len(sshd_farm.servers)}", victim.root,
                         sshd_farm.authorized)  # fmt: skip
    sshd_farm.servers.append(revived)
    with open(sshd_farm.known_hosts, "a") as fh:
        fh.write(revived.known_hosts_line() + "\n")
    write_host_table(db.catdir, [sshd_farm.host(revived, 1), sshd_farm.host(other, 2)])
    with host_options(**_config(sshd_farm)):
        problems = verify_hosts(db)  # the last checkpoint, on every host
        assert {p.where for p in problems if p.check == "host write pending"} == pending
        assert {p.where for p in problems} == pending  # (their counts differ from Stats)
        assert len(WriteAheadLog(db.catdir).pending()) == logged  # readers leave it to a writer
        if pending:  # dvo hosts resume finishes the write and refreshes the host's Images
            hosts_main(["hosts", "resume", "-D", str(db.catdir), "--known-hosts",
                        str(sshd_farm.known_hosts)])  # fmt: skip
            assert pending_partitions(db.catdir) == {} and verify_hosts(db) == []
        again = addstar(db, rest)  # finishes the host write, replays the log, loads the rest
    done = checkpointed + logged
    assert again.loaded == len(rest) - done and len(again.skipped) == done
    assert WriteAheadLog(db.catdir).pending() == [] and pending_partitions(db.catdir) == {}
    _assert_same(local_result, db, lambda i: _copies(db, [revived, other], i))
