"""Assignment balances partition sizes over hosts and never puts a backup on its primary."""

from __future__ import annotations

import numpy as np
import pytest


def test_balance_is_within_lpt_bound_and_backups_differ(rng):
    from dvo.hosts.assign import balance

    sizes = rng.integers(1, 1000, 200)
    hosts = np.array([3, 5, 7, 9])
    host, backup = balance(sizes, hosts)
    loads = np.array([sizes[host == h].sum() for h in hosts])
    assert loads.max() <= sizes.sum() / len(hosts) + sizes.max()  # greedy LPT bound
    assert (host != backup).all() and set(backup) <= set(hosts)


def test_single_host_has_no_backup():
    from dvo.hosts.assign import balance

    host, backup = balance(np.array([3, 2, 1]), np.array([4]))
    assert host.tolist() == [4, 4, 4] and backup.tolist() == [0, 0, 0]


def test_assign_writes_skytable_and_leaves_data_local(tiny_db, helpers):
    from dvo.database import open_database
    from dvo.hosts.assign import assign_hosts, host_summary
    from dvo.hosts.executor import uses_hosts
    from dvo.hosts.table import Host, write_host_table

    hosts = [Host(1, "a", "/data/a"), Host(2, "b", "/data/b")]
    write_host_table(tiny_db.catdir, hosts)
    assign_hosts(tiny_db, hosts)
    db = open_database(tiny_db.catdir)
    idx = db.populated()
    assert set(db.skytable.host_id[idx]) == {1, 2}
    assert (db.skytable.host_id[idx] != db.skytable.backup_id[idx]).all()
    assert not uses_hosts(db.skytable, idx)  # not pushed: queries stay local
    rows = host_summary(db, hosts)
    assert sum(r["partitions"] for r in rows) == len(idx)
    helpers.assert_db_valid(db)


def test_cli_list_and_assign(tiny_db):
    from click.testing import CliRunner

    from dvo.cli.main import cli

    (tiny_db.catdir / "HostTable.dat").write_text("1 a /data/a\n2 b /data/b 2222\n")
    assigned = CliRunner().invoke(cli, ["hosts", "assign", "-D", str(tiny_db.catdir)])
    assert assigned.exit_code == 0, assigned.output
    listed = CliRunner().invoke(cli, ["hosts", "list", "-D", str(tiny_db.catdir)])
    assert listed.exit_code == 0 and "2222" in listed.output


def test_cli_assign_unknown_host(tiny_db):
    from dvo.cli.main import main

    (tiny_db.catdir / "HostTable.dat").write_text("1 a /data/a\n")
    with pytest.raises(SystemExit) as info:
        main(["hosts", "assign", "-D", str(tiny_db.catdir), "--host", "7"])
    assert info.value.code == 1
