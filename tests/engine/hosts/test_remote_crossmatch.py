"""Crossmatch on partition hosts (real sshd) equals the same crossmatch run locally.

The hosted copies have their local partition files removed, so whatever matches comes from
the hosts (a local read would find no objects).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from worker_client import serve_frames

from dvo.errors import HostError

COLUMNS = ["obj_id", "ra", "dec", "g", "g_err", "nmeasure", "tess_id"]


def _drop_local_partitions(db) -> None:
    from dvo import layout

    for index in db.populated():
        for path in layout.partition_files(db.catdir, str(db.skytable.name[index])).values():
            path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def inputs(tiny_db_master):
    """Positions near objects, midpoints of neighbouring objects (near ties; those of pairs in
    different partitions are matched in both), exact duplicates and empty sky."""
    from scipy.spatial import cKDTree

    from dvo.database import open_database
    from dvo.query.engine import query

    objs = query(open_database(tiny_db_master), None, columns=["obj_id", "ra", "dec"],
                 output="numpy")  # fmt: skip
    rng = np.random.default_rng(8)
    ra, dec = np.where(objs["ra"] > 180, objs["ra"] - 360, objs["ra"]), objs["dec"]
    k = rng.choice(len(ra), 600)
    jra, jdec = ra[k] + rng.normal(0, 1.0 / 3600, 600), dec[k] + rng.normal(0, 1 / 3600, 600)
    pairs = cKDTree(np.c_[ra, dec]).query_pairs(100 / 3600, output_type="ndarray")
    cross = (objs["obj_id"][pairs[:, 0]] >> 32) != (objs["obj_id"][pairs[:, 1]] >> 32)
    pairs = np.r_[pairs[cross], pairs[~cross][rng.choice((~cross).sum(), 200)]]
    mra, mdec = ra[pairs].mean(axis=1), dec[pairs].mean(axis=1)
    rra, rdec = rng.uniform(ra.min(), ra.max(), 200), rng.uniform(7.2, 7.8, 200)
    all_ra = np.r_[jra, mra, rra, jra[:50]]
    return {"RA": np.mod(all_ra, 360.0), "Dec": np.r_[jdec, mdec, rdec, jdec[:50]],
            "name": np.arange(len(all_ra))}  # fmt: skip


def _config(farm, **kw):
    kw.setdefault("known_hosts", str(farm.known_hosts))
    kw.setdefault("connect_timeout", 10.0)
    kw.setdefault("command_timeout", 60.0)
    return kw


def _same(a, b) -> None:
    assert a.dtype == b.dtype and len(a) == len(b)
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(("radius", "every"), [(60.0, False), (60.0, True)])
def test_crossmatch_on_hosts_equals_local(sshd_farm, tmp_path, inputs, radius, every):
    from dvo.database import open_database
    from dvo.hosts.executor import host_options

    local = open_database(sshd_farm.master).crossmatch(
        inputs, radius, all=every, columns=COLUMNS, output="numpy"
    )
    db, _ = sshd_farm.hosted_copy(tmp_path, sshd_farm.servers[:2])
    assert set(np.unique(db.skytable.host_id[db.populated()])) == {1, 2}
    _drop_local_partitions(db)
    with host_options(**_config(sshd_farm)):
        remote = db.crossmatch(inputs, radius, all=every, columns=COLUMNS, output="numpy")
    assert (local["obj_id"] >= 0).sum() > 500
    if every:
        assert len(local) > 1.2 * len(inputs["RA"])  # inputs with several objects
    pt, _ = db.skytable.near(inputs["RA"], inputs["Dec"], radius / 3600)
    assert (np.bincount(pt) > 1).sum() > 50  # inputs matched against two or more partitions
    assert len(np.unique(local["obj_id"][local["obj_id"] >= 0] >> 32)) >= 2
    _same(remote, local)


def test_crossmatch_failover_and_partial(sshd_farm, tmp_path, inputs):
    from astropy.table import Table
    from click.testing import CliRunner

    from dvo.cli.main import cli
    from dvo.database import open_database
    from dvo.hosts.executor import FailoverWarning, PartialResultWarning, host_options

    local = open_database(sshd_farm.master).crossmatch(inputs, 2.0, output="numpy")
    victim = sshd_farm.start(f"victim{len(sshd_farm.servers)}")
    db, _ = sshd_farm.hosted_copy(tmp_path / "bk", [victim, sshd_farm.servers[0]])
    alone, _ = sshd_farm.hosted_copy(tmp_path / "no", [victim, sshd_farm.servers[0]],
                                     backups=False)  # fmt: skip
    _drop_local_partitions(db)
    victim.kill()
    lost = [str(db.skytable.name[i]) for i in db.populated() if db.skytable.host_id[i] == 1]
    assert lost
    with host_options(**_config(sshd_farm, retries=1)), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        moved = db.crossmatch(inputs, 2.0, output="numpy")
    assert any(issubclass(x.category, FailoverWarning) for x in w)
    _same(moved, local)

    with host_options(**_config(sshd_farm, retries=0)), pytest.raises(HostError) as info:
        alone.crossmatch(inputs, 2.0)
    assert info.value.host.startswith("1:127.0.0.1:") and "partitions not read" in str(info.value)
    assert all(name in str(info.value) for name in lost)

    path = tmp_path / "in.csv"
    Table(inputs).write(path, format="ascii.csv")
    args = ["crossmatch", "-D", str(alone.catdir), "--known-hosts", str(sshd_farm.known_hosts),
            "-q", "--format", "csv", "-r", "2", str(path)]  # fmt: skip
    failed = CliRunner().invoke(cli, args)
    assert failed.exit_code != 0 and "partitions not read" in str(failed.exception or failed.output)
    partial = CliRunner().invoke(cli, [*args, "--allow-partial"])
    assert partial.exit_code == 0, partial.output
    assert "partial result" in partial.stderr and all(n in partial.stderr for n in lost)
    partial_cfg = _config(sshd_farm, retries=0, allow_partial=True)
    with host_options(**partial_cfg), warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        some = alone.crossmatch(inputs, 2.0, output="numpy")
    assert any(issubclass(x.category, PartialResultWarning) for x in w)
    st = alone.skytable
    surviving = [i for i in alone.populated() if str(st.name[i]) not in lost]
    kept = np.isin(local["obj_id"] >> 32, surviving)
    assert 0 < kept.sum() < (local["obj_id"] >= 0).sum()
    _same(some[kept], local[kept])  # inputs matched in surviving partitions are unchanged


def test_worker_checks_crossmatch_requests_and_client_checks_replies(tiny_db_master, inputs):
    """In process: the worker answers what the local task computes, refuses malformed
    requests, and the client refuses matches it did not ask for."""
    from dvo.database import open_database
    from dvo.hosts.executor import ArrayReply
    from dvo.hosts.protocol import pack_array
    from dvo.query import crossmatch as cm
    from dvo.query import tables
    from dvo.query.crossmatch_remote import MatchHostTask
    from dvo.query.engine import build_request

    db = open_database(tiny_db_master)
    ra, dec = inputs["RA"], inputs["Dec"]
    matcher = cm.KdTreeMatch(60.0)
    tasks = cm._tasks(db, ra, dec, matcher, build_request(db, None, columns=COLUMNS), False)
    empty = tables.empty_result("objects", tuple(db.photcodes.sec_names), COLUMNS)
    task = MatchHostTask.build(tasks, empty.dtype)
    indices = [i for i, _ in tasks]
    parts = [{"index": i, "name": str(db.skytable.name[i])} for i in indices]
    request = {"op": "crossmatch", "catdir": str(db.catdir), **task.params_for(indices),
               "partitions": parts}  # fmt: skip
    frames = serve_frames(request)
    assert frames[-1][1]["type"] == "end"
    reply, got = ArrayReply(task), {}
    for kind, payload in frames[1:-1]:
        done = reply.feed(kind, payload, list(indices))
        if done is not None:
            got[done[0]] = done[1]
    for index, local in tasks:
        for a, b in zip(got[index], local(str(db.catdir), index), strict=True):
            assert a.tobytes() == b.tobytes()

    def refused(**change) -> str:
        frames = serve_frames({**request, **change})
        assert frames[-1][1]["type"] == "error", change
        return frames[-1][1]["message"]

    inp = request["inputs"]
    bad_ra = pack_array(np.full(len(task.ra), np.nan))
    assert "not finite" in refused(inputs={**inp, "ra": bad_ra})
    assert "other than those requested" in refused(partitions=parts[::-1])
    assert "rows" in refused(inputs={**inp, "rows": pack_array(task.rows[:-1])})
    assert "radius" in refused(radius=-1.0)
    scan = request["scan"]
    assert "not ours" in refused(scan={**scan, "table": "measures"})
    assert "columns" in refused(scan={**scan, "columns": ["ra", "dec", "obj_id"]})
    assert "scan" in refused(scan={**scan, "where": "g <"})

    index, (rows, objs, sep) = indices[0], got[indices[0]]
    arrays = {"input_row": rows, **{f"col:{n}": objs[n] for n in objs.dtype.names}, "sep": sep}
    meta = {"matches": len(rows)}
    with pytest.raises(HostError, match="matches"):
        task.decode(index, {"matches": len(rows) + 1}, arrays)
    with pytest.raises(HostError, match="rows not sent"):
        task.decode(index, meta, {**arrays, "input_row": rows + 10**9})
    with pytest.raises(HostError, match="other partition"):
        task.decode(index, meta, {**arrays, "col:obj_id": objs["obj_id"] + (1 << 32)})
    with pytest.raises(HostError, match="radius"):
        task.decode(index, meta, {**arrays, "sep": sep + 61.0})
    assert len(rows) > 0
