"""relphot and relastro on partition hosts (real sshd) equal the same runs on a local copy.

Each test starts its own two servers (their roots are rewritten by the calibration's write),
spreads a private copy of a small survey over them with backups on the other server, runs the
calibration there and compares with a run on a plain local copy: image zero points and chip
corrections must be *bitwise* equal (every pass sums the partitions' summaries in SkyTable
order, here and on the hosts alike), and so must every table of every partition, read from
the host copies (primary and backup).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from conftest import Helpers

from dvo.errors import HostError

TABLES = ("average", "secfilt", "measure", "lensing")


def _config(farm, **kw):
    kw.setdefault("known_hosts", str(farm.known_hosts))
    kw.setdefault("connect_timeout", 30.0)
    kw.setdefault("command_timeout", 120.0)
    return kw


def _local_copy(src: Path, dst: Path):
    from dvo.database import open_database

    shutil.copytree(src, dst)
    return open_database(dst)


def _hosted(farm, tmp_path: Path, master: Path, tag: str):
    """(db, servers) with ``master`` spread over two fresh servers, backups on the other."""
    servers = []
    for k in range(2):
        server = farm.start(f"{tag}{k}-{len(farm.servers)}", copy=False)
        shutil.copytree(master, server.root)
        servers.append(server)
    saved = farm.master
    farm.master = master
    try:
        db, _ = farm.hosted_copy(tmp_path, servers)
    finally:
        farm.master = saved
    return db, servers


def _host_copies(db, servers, index: int):
    """The partition as read from each server that holds it (primary first)."""
    from dvo.database import open_database

    st = db.skytable
    by_id = {k + 1: s for k, s in enumerate(servers)}
    holders = [int(st.host_id[index]), int(st.backup_id[index])]
    return [open_database(by_id[h].root).partition(index) for h in holders if h]


def _partition_bytes(db) -> dict[str, bytes]:
    """The local partition files of ``db``."""
    from dvo import layout

    out = {}
    for index in db.populated():
        for path in layout.partition_files(db.catdir, str(db.skytable.name[index])).values():
            out[path.name] = path.read_bytes()
    return out


def _assert_partitions_equal(a, b) -> None:
    for kind in TABLES:
        ta, tb = a.table(kind), b.table(kind)
        assert ta.dtype == tb.dtype and ta.tobytes() == tb.tobytes(), f"{a.name} {kind}"


def _assert_same_database(local, hosted, servers, columns) -> None:
    """Images (``columns``) and statistics here, every partition on each of its hosts."""
    a, b = local.images(), hosted.images()
    for col in columns:
        assert a[col].tobytes() == b[col].tobytes(), col
    assert local.stats().tobytes() == hosted.stats().tobytes()
    for index in local.populated():
        want = local.partition(int(index))
        for copy in _host_copies(hosted, servers, int(index)):
            _assert_partitions_equal(want, copy)


@pytest.fixture
def relphot_pair(sshd_farm, tiny_db_master, tmp_path):
    """(local copy, hosted copy, servers) of the tiny survey."""
    local = _local_copy(tiny_db_master, tmp_path / "local")
    db, servers = _hosted(sshd_farm, tmp_path / "hosted", tiny_db_master, "rp")
    return local, db, servers


def test_relphot_on_hosts_equals_local(relphot_pair, sshd_farm):
    from dvo.cli.relphot import main
    from dvo.hosts.executor import host_options
    from dvo.hosts.ssh import SshConfig
    from dvo.hosts.sync import check_hosts, push
    from dvo.hosts.twophase import read_record
    from dvo.hosts.verify import verify_hosts
    from dvo.relphot import relphot

    local, db, servers = relphot_pair
    before = _partition_bytes(db)
    want = relphot(local)
    assert want.images["calibrated"] > 0 and len(db.populated()) == 4
    # the command uses the hosts by itself (the partitions are pushed)
    main(["-D", str(db.catdir), "--known-hosts", str(sshd_farm.known_hosts), "--quiet"])
    assert _partition_bytes(db) == before  # rewritten on the hosts, not here
    record = read_record(db.catdir)
    assert record["pending"] is None
    assert sorted(record["rewritten"]) == sorted(str(db.skytable.name[i]) for i in db.populated())
    with host_options(**_config(sshd_farm)):
        assert verify_hosts(db) == []
    # the host copies are now newer than the local files: check knows, push refuses
    cfg = SshConfig(**_config(sshd_farm))
    assert check_hosts(db, cfg, echo=lambda _: None) == []
    with pytest.raises(HostError, match="dvo hosts pull first"):
        push(db, cfg, echo=lambda _: None)
    cols = ("MCAL_PSF", "MCAL_APER", "DMCAL", "XM", "N_FIT_PHOTOM", "FLAGS")
    _assert_same_database(local, db, servers, cols)


def test_host_killed_while_preparing_leaves_everything_as_before(
    relphot_pair, sshd_farm, helpers, monkeypatch
):
    from dvo.hosts import ssh
    from dvo.hosts.executor import host_options
    from dvo.hosts.twophase import HOSTTX, read_record
    from dvo.relphot import relphot

    _, db, servers = relphot_pair
    victim, other = servers
    request = ssh.Session.request

    def dies_mid_prepare(self, message):
        frames = request(self, message)
        for kind, payload in frames:
            yield kind, payload
            if (
                self.host.port == victim.port
                and message["op"] == "relphot_prepare"
                and kind == b"A"
            ):
                victim.kill()  # it has staged a partition and is working on the next

    monkeypatch.setattr(ssh.Session, "request", dies_mid_prepare)
    before = helpers.snapshot(db)
    hosts_before = [Helpers.snapshot(s.root) for s in servers]
    with host_options(**_config(sshd_farm, connect_timeout=5.0)), pytest.raises(HostError) as info:
        relphot(db)
    assert info.value.host is not None and str(victim.port) in info.value.host
    assert "nothing was written" in str(info.value)
    assert helpers.snapshot(db) == before  # the local database, pending record included
    assert [Helpers.snapshot(s.root) for s in servers] == hosts_before  # no host copy changed
    assert not any((Path(other.root) / ".dvo" / HOSTTX).glob("*/*.json"))  # aborted there
    assert read_record(db.catdir)["pending"] is None


def test_host_killed_before_commit_is_pending_then_resumed(
    relphot_pair, sshd_farm, monkeypatch, capsys
):
    from dvo.tools.loopback_sshd import start_sshd

    from dvo.cli.main import main
    from dvo.hosts.executor import host_options
    from dvo.hosts.table import write_host_table
    from dvo.hosts.twophase import HostWrite, pending_partitions
    from dvo.relphot import relphot

    local, db, servers = relphot_pair
    victim, _ = servers
    commit = HostWrite._commit_host

    def dies_before_commit(self, host, indices):
        if host.port == victim.port:
            victim.kill()
        return commit(self, host, indices)

    monkeypatch.setattr(HostWrite, "_commit_host", dies_before_commit)
    cfg = _config(sshd_farm, connect_timeout=5.0)
    with host_options(**cfg), pytest.raises(HostError, match="dvo hosts resume") as info:
        relphot(db)
    assert str(victim.port) in info.value.host
    st = db.skytable
    held = {str(st.name[i]) for i in db.populated() if 1 in (st.host_id[i], st.backup_id[i])}
    assert set(pending_partitions(db.catdir)) == held
    monkeypatch.undo()

    # the host comes back (a new server on the same files): verify names the pending
    # partitions, resume finishes the write, and the result is the local run's
    revived = start_sshd(sshd_farm.base, f"revived{len(sshd_farm.servers)}", victim.root,
                         sshd_farm.authorized)  # fmt: skip
    sshd_farm.servers.append(revived)
    with open(sshd_farm.known_hosts, "a") as fh:
        fh.write(revived.known_hosts_line() + "\n")
    write_host_table(db.catdir, [sshd_farm.host(revived, 1), sshd_farm.host(servers[1], 2)])
    with host_options(**_config(sshd_farm)), pytest.raises(SystemExit):
        main(["verify", "-D", str(db.catdir), "--quiet"])  # exit 1: pending partitions
    out = capsys.readouterr().out
    assert {line.split(":")[0] for line in out.splitlines() if "host write pending" in line} == held
    main(["hosts", "resume", "-D", str(db.catdir), "--known-hosts", str(sshd_farm.known_hosts)])
    assert f"{len(held)} partition copies committed" in capsys.readouterr().out
    assert pending_partitions(db.catdir) == {}
    relphot(local)
    _assert_same_database(local, db, [revived, servers[1]], ("MCAL_PSF", "FLAGS"))


@pytest.fixture(scope="session")
def astro_master_on_edges(tmp_path_factory):
    """A small relastro survey (3 years, proper motions, parallaxes, a Gaia-like reference)
    across RA = 0 and the dec 7.5 band edge, so its objects fall in four partitions."""
    from dvo.tools.simulate import preset, simulate_survey
    from dvo.tools.simulate.reference import reference_path

    from dvo.database import create_database
    from dvo.ingest import addstar

    out = tmp_path_factory.mktemp("astro_edges")
    config = preset("relastro", field_size=0.3, seed=11, ra=0.0, dec=7.5, star_density=1500.0)
    simulate_survey(config, out / "smf")
    db = create_database(out / "db")
    assert not addstar(db, sorted((out / "smf").glob("*.smf"))).failed
    ref = reference_path(out / "smf", config.reference_format)
    assert not addstar(db, [ref], photcode="GAIA").failed
    return out / "db"


def test_relastro_on_hosts_equals_local(astro_master_on_edges, sshd_farm, tmp_path):
    from dvo import layout
    from dvo.hosts.executor import host_options
    from dvo.relastro import relastro

    local = _local_copy(astro_master_on_edges, tmp_path / "local")
    db, servers = _hosted(sshd_farm, tmp_path / "hosted", astro_master_on_edges, "ra")
    assert len(db.populated()) >= 3
    before = _partition_bytes(db)
    want = relastro(local)
    hosts_before = [Helpers.snapshot(s.root) for s in servers]
    with host_options(**_config(sshd_farm)):
        dry = relastro(db, dry_run=True)
        assert [Helpers.snapshot(s.root) for s in servers] == hosts_before
        got = relastro(db)
    assert _partition_bytes(db) == before

    def same(a, b, skip=("seconds", "files", "dry_run")):
        return {k: v for k, v in a.to_dict().items() if k not in skip} == {
            k: v for k, v in b.to_dict().items() if k not in skip
        }

    assert same(want, got) and same(want, dry)
    assert want.models["par"] > 0 and want.n_reference_objects > 0
    relastro_file = (local.catdir / layout.RELASTRO).read_bytes()
    assert relastro_file == (db.catdir / layout.RELASTRO).read_bytes()
    cols = ("N_FIT_ASTROM", "XPIX_SYS_ERR", "YPIX_SYS_ERR", "FLAGS")
    _assert_same_database(local, db, servers, cols)
