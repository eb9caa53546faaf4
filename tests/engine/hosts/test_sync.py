"""dvo hosts push|check|pull against real sshd servers with empty partition roots."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest


def test_push_check_query_pull(sshd_farm, tmp_path, helpers):
    from dvo.database import open_database
    from dvo.hosts.assign import assign_hosts
    from dvo.hosts.executor import host_options, uses_hosts
    from dvo.hosts.manifest import StaleHostWarning
    from dvo.hosts.ssh import SshConfig
    from dvo.hosts.sync import check_hosts, pull, push
    from dvo.hosts.table import write_host_table
    from dvo.query.engine import query

    n = len(sshd_farm.servers)
    servers = [
        sshd_farm.start(f"empty{n}", copy=False),
        sshd_farm.start(f"empty{n + 1}", copy=False),
    ]
    path = tmp_path / "db"
    shutil.copytree(sshd_farm.master, path)
    db = open_database(path)
    hosts = [sshd_farm.host(s, k + 1) for k, s in enumerate(servers)]
    write_host_table(path, hosts)
    assign_hosts(db, hosts)
    cfg = SshConfig(known_hosts=str(sshd_farm.known_hosts), command_timeout=60.0)
    assert push(db, cfg, echo=lambda _: None) == len(db.populated())
    db = open_database(path)
    assert uses_hosts(db.skytable, db.populated())
    assert check_hosts(db, cfg, echo=lambda _: None) == []
    local = query(open_database(sshd_farm.master), None, table="measures", columns="*",
                  output="numpy")  # fmt: skip
    with host_options(known_hosts=str(sshd_farm.known_hosts)):
        assert query(db, None, table="measures", columns="*", output="numpy").tobytes() == (
            local.tobytes()
        )
    # a partition rewritten here after the push is read locally (with a warning), not stale
    index = int(db.populated()[-1])
    local_file = path / (str(db.skytable.name[index]) + ".cpm")
    stamp = local_file.stat().st_mtime_ns
    os.utime(local_file, ns=(stamp + 10**9, stamp + 10**9))
    with host_options(known_hosts=str(sshd_farm.known_hosts)), pytest.warns(StaleHostWarning):
        again = query(db, None, table="measures", columns="*", output="numpy")
    assert again.tobytes() == local.tobytes()
    os.utime(local_file, ns=(stamp, stamp))
    # a stale copy on a host is found by check
    index = int(db.populated()[0])
    name = str(db.skytable.name[index])
    host = {s.port: s for s in servers}[hosts[int(db.skytable.host_id[index]) - 1].port]
    target = host.root / (name + ".cpt")
    target.write_bytes(target.read_bytes()[:-2880])
    problems = check_hosts(db, cfg, echo=lambda _: None)
    assert len(problems) == 1 and name in problems[0]
    # restore, then pull everything back
    shutil.copy(path / (name + ".cpt"), target)
    before = helpers.snapshot(db)
    assert pull(db, cfg, echo=lambda _: None) == len(db.populated())
    db = open_database(path)
    assert not uses_hosts(db.skytable, db.populated())
    after = helpers.snapshot(db)
    host_state = ("SkyTable.fits", "HostManifest.json")
    assert {k: v for k, v in after.items() if k not in host_state} == {
        k: v for k, v in before.items() if k not in host_state
    }
    assert np.all(db.skytable.host_flags == 0)
    helpers.assert_db_valid(db)


def test_push_refuses_unknown_host_key(sshd_farm, tmp_path):
    from dvo.database import open_database
    from dvo.errors import HostError
    from dvo.hosts.assign import assign_hosts
    from dvo.hosts.ssh import SshConfig
    from dvo.hosts.sync import push
    from dvo.hosts.table import write_host_table

    path = tmp_path / "db"
    shutil.copytree(sshd_farm.master, path)
    db = open_database(path)
    hosts = [sshd_farm.host(sshd_farm.servers[0], 1)]
    write_host_table(path, hosts)
    assign_hosts(db, hosts)
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    before = (path / "SkyTable.fits").read_bytes()
    with pytest.raises(HostError, match="unknown host key"):
        push(db, SshConfig(known_hosts=str(empty)), echo=lambda _: None)
    assert (path / "SkyTable.fits").read_bytes() == before
