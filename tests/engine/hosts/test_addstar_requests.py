"""addstar's worker operations, in process (no sshd): the same builder result, and refusals."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
from worker_client import serve_frames

from dvo.errors import HostError


def _ask(db, task, indices, extra=None) -> dict:
    """Run ``task`` on the worker; decoded results by index (an error message is raised)."""
    from dvo.hosts.executor import ArrayReply

    parts = [{"index": int(i), "name": str(db.skytable.name[i])} for i in indices]
    request = {"op": task.op, "catdir": str(db.catdir), **task.params(), **(extra or {}),
               "partitions": parts}  # fmt: skip
    frames = serve_frames(request)
    if frames[-1][1]["type"] == "error":
        raise HostError(f"{frames[-1][1]['code']}: {frames[-1][1]['message']}")
    reply, out, todo = ArrayReply(task), {}, [int(i) for i in indices]
    for kind, payload in frames[1:-1]:
        done = reply.feed(kind, payload, todo)
        if done is not None:
            out[done[0]] = done[1]
            todo.remove(done[0])
    return out


@pytest.fixture
def file_delta(tiny_db, tiny_survey):
    """(db, {index: (nobjects, average, measure, lensing)}) of one smf loaded again under new
    image ids, associated against the database as it stands."""
    from dvo.associate import Matcher, associate_batch
    from dvo.smf import read_smf

    db = tiny_db
    batch = read_smf(tiny_survey[0][0], db.photcodes)
    ids = db.next_image_id() + np.arange(len(batch.images), dtype=np.int64)
    delta, _ = associate_batch(db, db.partition, batch, ids, Matcher(db.match_radius))
    parts = {i: (db.partition(i).nobjects, a, m, ll) for i, a, m, ll in delta.parts}
    assert len(parts) >= 2
    return db, parts


def test_apply_on_the_worker_is_the_local_builder(file_delta):
    from dvo.builder import PartitionBuilder
    from dvo.ingest_remote import ApplyTask, OpenTask

    db, deltas = file_delta
    run = uuid.uuid4().hex
    opened = _ask(db, OpenTask(run), list(deltas))
    got = _ask(db, ApplyTask(run, 0, deltas), list(deltas))
    for i, (nobj, a, m, ll) in deltas.items():
        part = db.partition(i)
        assert opened[i].nobjects == nobj and opened[i].next_objid == part.next_objid
        assert opened[i].average["RA"].tobytes() == part.average["RA"].tobytes()
        b = PartitionBuilder(part)
        b.add(a, m, ll, db.photcodes)
        rows = got[i].rows
        assert got[i].nobjects == b.nobjects and got[i].next_objid == b.next_objid
        assert got[i].ra.tobytes() == b.average["RA"][rows].tobytes()
        assert got[i].dec.tobytes() == b.average["DEC"][rows].tobytes()
        mirror = opened[i]
        mirror.update(a, got[i])
        assert mirror.average["RA"].tobytes() == b.average["RA"].tobytes()
        assert mirror.average["OBJ_ID"].tobytes() == b.average["OBJ_ID"].tobytes()
    again = _ask(db, OpenTask(run), list(deltas))  # a dropped mirror, fetched again
    for i in deltas:
        assert again[i].average.tobytes() == opened[i].average.tobytes()
        assert again[i].next_objid == opened[i].next_objid


def _tamper(deltas, index, what):
    nobj, a, m, ll = deltas[index]
    a, m = a.copy(), m.copy()
    if what == "ave_ref":
        m["AVE_REF"][0] = nobj + len(a)
    elif what == "cat_id":
        m["CAT_ID"][0] = index + 1
    elif what == "objid":  # a new object numbered out of sequence
        from dvo.schema import AVERAGE

        extra = AVERAGE.empty(1)
        extra["RA"], extra["DEC"], extra["CAT_ID"] = m["RA"][0], m["DEC"][0], index
        extra["OBJ_ID"] = 1 << 31
        a = np.concatenate([a, extra])
    elif what == "obj_id":
        m["OBJ_ID"][0] += 1
    elif what == "nobjects":
        nobj += 1
    return {index: (nobj, a, m, ll)}


@pytest.mark.parametrize(
    ("what", "message"),
    [("ave_ref", "measure AVE_REF: values outside"), ("cat_id", "CAT_ID is not"),
     ("objid", "not numbered after the existing ones"), ("nobjects", "the client expects"),
     ("obj_id", "measure: OBJ_ID differs from its object's")],
)  # fmt: skip
def test_worker_refuses_rows_that_do_not_fit_the_partition(file_delta, what, message):
    from dvo.ingest_remote import ApplyTask

    db, deltas = file_delta
    index = max(deltas, key=lambda i: len(deltas[i][2]))
    with pytest.raises(HostError, match=f"partition: .*{message}"):
        _ask(db, ApplyTask(uuid.uuid4().hex, 0, _tamper(deltas, index, what)), [index])


def test_worker_refuses_a_step_it_did_not_follow(file_delta):
    from dvo.ingest_remote import ApplyTask, PrepareTask

    db, deltas = file_delta
    run = uuid.uuid4().hex
    with pytest.raises(HostError, match="request: .*does not hold the run's earlier changes"):
        _ask(db, ApplyTask(run, 1, deltas), list(deltas))  # a new worker, mid-run
    index = next(iter(deltas))
    task = PrepareTask(run, 0, {index: 1}, db.nsecfilt, db.skytable.name)
    with pytest.raises(HostError, match="no changes of this run here"):
        _ask(db, task, [index], {"txid": uuid.uuid4().hex})


def test_prepare_stages_what_the_local_builder_finishes(file_delta):
    from dvo import layout
    from dvo.builder import PartitionBuilder
    from dvo.hosts.twophase import HOSTTX, commit_prepared
    from dvo.ingest_remote import ApplyTask, OpenTask, PrepareTask
    from dvo.partition import read_partition
    from dvo.stats import partition_stats

    db, deltas = file_delta
    run, txid = uuid.uuid4().hex, uuid.uuid4().hex
    _ask(db, ApplyTask(run, 0, deltas), list(deltas))
    n = {i: d[0] + len(d[1]) for i, d in deltas.items()}
    task = PrepareTask(run, 1, n, db.nsecfilt, db.skytable.name)
    got = _ask(db, task, list(deltas), {"txid": txid})
    staged = layout.state_dir(db.catdir) / HOSTTX / txid / "files"
    for i, (_, a, m, ll) in deltas.items():
        b = PartitionBuilder(db.partition(i))
        b.add(a, m, ll, db.photcodes)
        want = b.finish()
        assert got[i].stats.tobytes() == partition_stats(want).tobytes()
        part = read_partition(staged, i, want.name, db.nsecfilt)
        for kind in ("average", "secfilt", "measure", "lensing"):
            assert part.table(kind).tobytes() == want.table(kind).tobytes()
    # committed: a mirror fetched again (no builder now) reads the new files
    commit_prepared(db.catdir, txid, [(i, str(db.skytable.name[i])) for i in deltas])
    again = _ask(db, OpenTask(run), list(deltas))
    for i in deltas:
        assert again[i].nobjects == n[i]
        assert again[i].average["RA"].tobytes() == db.partition(i).average["RA"].tobytes()


def test_packed_rows_are_checked():
    from dvo.hosts.protocol import pack_array
    from dvo.ingest_remote import pack_rows, unpack_rows
    from dvo.schema import MEASURE

    rows = MEASURE.empty(3)
    rows["AVE_REF"] = [0, 1, 2]
    packed = pack_rows(rows, MEASURE)
    assert unpack_rows(packed, MEASURE, "m").tobytes() == rows.tobytes()
    with pytest.raises(HostError, match="bytes for 4 rows"):
        unpack_rows({**packed, "rows": 4}, MEASURE, "m")
    with pytest.raises(HostError, match="bad compressed rows"):
        unpack_rows({**packed, "data": pack_array(np.arange(9, dtype=np.uint8))}, MEASURE, "m")
    with pytest.raises(HostError, match="not packed rows"):
        unpack_rows({"rows": 3}, MEASURE, "m")


def test_mirrors_past_the_budget_are_dropped_least_recently_used_first(monkeypatch):
    from collections import OrderedDict

    from dvo.ingest_remote import HostPartitions, Mirror

    def mirror(i: int) -> Mirror:
        return Mirror.from_arrays(i, np.zeros(10), np.zeros(10), np.arange(10), 10)

    fetched = []

    def each_host(jobs, make):
        fetched.extend(jobs[1])
        return {(1, i): mirror(i) for i in jobs[1]}

    hp = object.__new__(HostPartitions)  # no hosts: fetching is replaced
    hp.remote, hp.dirty, hp.mirrors = {1, 2, 3, 4}, {4: 0}, OrderedDict()
    hp.holders, hp._each_host = (lambda i: [1]), each_host
    monkeypatch.setattr("dvo.ingest_remote.MIRROR_BYTES", 2 * mirror(0).nbytes)
    hp.fetch([4, 1, 2])  # all needed now: none dropped
    assert list(hp.mirrors) == [4, 1, 2]
    hp.fetch([3])  # 4 changed since the checkpoint stays; 1 then 2 go
    assert list(hp.mirrors) == [4, 3]
    assert hp.get(1).index == 1 and list(hp.mirrors) == [4, 3, 1]
    assert fetched == [4, 1, 2, 3, 1]
