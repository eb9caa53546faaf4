"""dvo verify on partition hosts equals dvo verify of the same files locally."""

from __future__ import annotations

import shutil

import numpy as np
import pytest


@pytest.fixture
def hosted(sshd_farm, tmp_path):
    """(db, hosts): a copy of the tiny db with its partitions pushed to both servers."""
    return sshd_farm.hosted_copy(tmp_path, sshd_farm.servers[:2])


def test_verify_on_hosts_equals_local(hosted, sshd_farm):
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.hosts.verify import verify_hosts
    from dvo.verify import verify

    db, _ = hosted
    with host_options(known_hosts=str(sshd_farm.known_hosts)):
        assert verify_hosts(db) == verify(open_database(sshd_farm.master)) == []


def test_verify_on_hosts_reports_a_corrupt_remote_partition(sshd_farm, tmp_path):
    from dvo import layout
    from dvo.hosts.executor import host_options
    from dvo.hosts.verify import verify_hosts

    server = sshd_farm.start(f"corrupt{len(sshd_farm.servers)}")
    db, _ = sshd_farm.hosted_copy(tmp_path, [server], backups=False)
    index = int(db.populated()[0])
    name = str(db.skytable.name[index])
    path = layout.partition_path(server.root, name, "measure")
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # flip bits in the last data block: a checksum violation
    path.write_bytes(bytes(data))
    with host_options(known_hosts=str(sshd_farm.known_hosts)):
        problems = verify_hosts(db)
    assert problems and {p.where for p in problems} == {name}
    assert any("checksum" in p.check for p in problems)
    assert (tmp_path / "db" / (name + ".cpm")).read_bytes() != bytes(data)  # local copy intact


def test_cli_verify_runs_on_hosts(hosted, sshd_farm, monkeypatch):
    from click.testing import CliRunner

    from dvo.cli.main import cli
    from dvo.hosts import executor

    db, _ = hosted
    seen = []
    real = executor.HostExecutor.map

    def spy(self, catdir, tasks, task=None):
        seen.append(len(tasks))
        return real(self, catdir, tasks, task)

    monkeypatch.setattr(executor.HostExecutor, "map", spy)
    monkeypatch.setenv("HOME", str(sshd_farm.base))  # ~/.ssh/known_hosts of the farm
    (sshd_farm.base / ".ssh").mkdir(exist_ok=True)
    shutil.copy(sshd_farm.known_hosts, sshd_farm.base / ".ssh" / "known_hosts")
    result = CliRunner().invoke(cli, ["verify", "-D", str(db.catdir), "-q"])
    assert result.exit_code == 0, result.output
    assert seen == [len(np.unique(db.stats()["INDEX"]))]
