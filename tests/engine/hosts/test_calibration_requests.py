"""The worker's calibration operations, in process (no sshd): validation, sums, two phases."""

from __future__ import annotations

import json

import numpy as np
import pytest
from worker_client import serve_frames


def _parts(db, indices=None):
    indices = db.populated() if indices is None else indices
    return [{"index": int(i), "name": str(db.skytable.name[i])} for i in indices]


def _pass_task(db, **state):
    from dvo.relphot.accumulate import PassModel, PassState
    from dvo.relphot.model import Options, build_model
    from dvo.relphot.remote import PassTask

    model = build_model(db.images(), db.photcodes, Options())
    n = model.n_images
    kw = {"theta": model.initial_theta(), "fit": np.ones(n, bool), "igroup": np.full(n, -1),
          "robust": True, "accumulate": True, **state}  # fmt: skip
    return PassTask(PassModel.of(model), PassState(**kw), db)


def _replies(task, frames) -> dict:
    from dvo.hosts.executor import ArrayReply

    reply, out, todo = ArrayReply(task), {}, [f[1]["index"] for f in frames if f[0] == b"J"
                                                  and f[1].get("type") == "arrays"]  # fmt: skip
    for kind, payload in frames[1:-1]:
        done = reply.feed(kind, payload, todo)
        if done is not None:
            out[done[0]] = done[1]
    return out


def test_relphot_pass_on_the_worker_is_bitwise_the_local_sums(tiny_db):
    task = _pass_task(tiny_db)
    frames = serve_frames({"op": task.op, "catdir": str(tiny_db.catdir), **task.params(),
                     "partitions": _parts(tiny_db)})  # fmt: skip
    assert frames[-1][1]["type"] == "end"
    got = _replies(task, frames)
    assert sorted(got) == sorted(int(i) for i in tiny_db.populated())
    for index, sums in got.items():
        want = task(str(tiny_db.catdir), index)
        for name in ("cols", "s_row", "s_col", "s_val", "b", "images", "istat", "rep", "counts"):
            assert getattr(sums, name).tobytes() == getattr(want, name).tobytes(), name


def _broken(params: dict, path: tuple, value) -> dict:
    out = json.loads(json.dumps(params))
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("model", "arrays", "izcol"), "packed:izcol_out_of_range"),
        (("model", "arrays", "image_id"), "packed:unsorted"),
        (("model", "arrays", "nx"), {"dtype": "<i8", "shape": [1], "data": "AAAAAAAAAAA="}),
        (("model", "n_params"), -1),
        (("model", "options", "clip"), "5"),
        (("model", "options", "exec"), 1),
        (("state", "theta"), "packed:nan"),
        (("state", "robust"), 1),
    ],
)
def test_worker_refuses_malformed_calibration_parameters(tiny_db, path, value):
    from dvo.hosts.protocol import pack_array

    task = _pass_task(tiny_db)
    params = task.params()
    n, npar = task.pm.n_images, task.pm.n_params
    packed = {
        "packed:izcol_out_of_range": pack_array(np.full(n, npar + 5, np.int64)),
        "packed:unsorted": pack_array(task.pm.image_id[::-1].copy()),
        "packed:nan": pack_array(np.full(npar, np.nan)),
    }
    value = packed.get(value, value) if isinstance(value, str) else value
    frames = serve_frames({"op": task.op, "catdir": str(tiny_db.catdir),
                     **_broken(params, path, value), "partitions": _parts(tiny_db)})  # fmt: skip
    last = frames[-1][1]
    assert last["type"] == "error" and last["code"] == "request", last


def test_bad_transaction_ids_are_refused(tiny_db):
    for op in ("txn_commit", "txn_abort"):
        frames = serve_frames({"op": op, "catdir": str(tiny_db.catdir), "txid": "../../etc",
                         "partitions": _parts(tiny_db)})  # fmt: skip
        assert frames[-1][1]["code"] == "request"


def _prepare(db, txid: str):
    from dvo.relphot.apply import ApplyModel
    from dvo.relphot.model import Options
    from dvo.relphot.remote import PrepareTask
    from dvo.relphot.run import solve

    task = PrepareTask(ApplyModel.of(solve(db, Options())), db.nsecfilt, db.skytable.name)
    frames = serve_frames({"op": task.op, "catdir": str(db.catdir), "txid": txid, **task.params(),
                     "partitions": _parts(db)})  # fmt: skip
    assert frames[-1][1]["type"] == "end", frames[-1]
    return _replies(task, frames)


def test_prepare_commit_abort_on_a_host(tiny_db, helpers):
    import uuid

    from dvo.hosts.tasks import file_checksums

    before = helpers.snapshot(tiny_db)
    txid = uuid.uuid4().hex
    prepared = _prepare(tiny_db, txid)
    assert helpers.snapshot(tiny_db) == before  # staged only
    commit = {"op": "txn_commit", "catdir": str(tiny_db.catdir), "txid": txid,
              "partitions": _parts(tiny_db)}  # fmt: skip
    for _ in range(2):  # committing again is harmless
        frames = serve_frames(commit)
        assert [f[1]["data"]["state"] for f in frames[1:-1]] == ["committed"] * len(prepared)
    for index, p in prepared.items():
        assert file_checksums(tiny_db.catdir, str(tiny_db.skytable.name[index])) == p.files
    helpers.assert_db_valid(tiny_db)

    aborted = uuid.uuid4().hex
    _prepare(tiny_db, aborted)
    serve_frames({**commit, "op": "txn_abort", "txid": aborted})
    frames = serve_frames({**commit, "txid": aborted})
    assert frames[-1][1]["code"] == "partition" and "nothing prepared" in frames[-1][1]["message"]


def test_commit_refuses_a_partition_changed_since_prepare(tiny_db):
    import os
    import uuid

    from dvo import layout

    txid = uuid.uuid4().hex
    _prepare(tiny_db, txid)
    index = int(tiny_db.populated()[0])
    path = layout.partition_path(tiny_db.catdir, str(tiny_db.skytable.name[index]), "measure")
    os.utime(path, ns=(1, 1))
    frames = serve_frames({"op": "txn_commit", "catdir": str(tiny_db.catdir), "txid": txid,
                     "partitions": _parts(tiny_db)})  # fmt: skip
    assert frames[-1][1]["code"] == "partition"
    assert "changed on this host since prepare" in frames[-1][1]["message"]
