"""addstar's write-ahead log: a file is durable once logged, checkpoints do not change results,
and readers see the last checkpoint while a writer runs."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from dvo.database import create_database, open_database
from dvo.ingest import addstar
from dvo.transaction import writer_lock
from dvo.wal import WriteAheadLog


@pytest.fixture(scope="module")
def prefix_states(tiny_survey, tmp_path_factory):
    """The empty database, and the snapshots after each prefix of the files, each prefix
    loaded by its own addstar run (a checkpoint after every file)."""
    from conftest import Helpers

    root = tmp_path_factory.mktemp("wal")
    empty = root / "empty"
    create_database(empty)
    ref = root / "ref"
    shutil.copytree(empty, ref)
    states = [Helpers.snapshot(ref)]
    for path in tiny_survey[0]:
        assert not addstar(open_database(ref), [path]).failed
        states.append(Helpers.snapshot(ref))
    return empty, states


def _crash_after(catdir, files, n: int) -> int:
    """Run addstar in a child that dies (exit without cleanup, like kill -9) right after the
    n-th file is logged and applied in memory, before any checkpoint."""
    code = (
        "import os, sys; from dvo.database import open_database; from dvo.ingest import addstar\n"
        "done = [0]\n"
        "def progress(report):\n"
        "    done[0] += 1\n"
        f"    if done[0] == {n}: os._exit(9)\n"
        "addstar(open_database(sys.argv[1]), sys.argv[2:], progress=progress)\n"
    )
    return subprocess.run([sys.executable, "-c", code, str(catdir), *map(str, files)]).returncode


@pytest.mark.parametrize("n", [1, 5])
def test_logged_files_survive_a_crash(prefix_states, tiny_survey, tmp_path, helpers, n):
    empty, states = prefix_states
    files = tiny_survey[0]
    db_path = tmp_path / "db"
    shutil.copytree(empty, db_path)
    assert _crash_after(db_path, files, n) == 9
    assert len(WriteAheadLog(db_path).pending()) == n  # nothing was checkpointed
    assert helpers.snapshot(db_path) == states[0]
    db = open_database(db_path)
    helpers.assert_db_valid(db)  # the reader replays the log: the state after file n
    assert WriteAheadLog(db_path).pending() == []
    assert helpers.snapshot(db) == states[n]
    assert not addstar(db, files).failed  # the rerun skips the n files already loaded
    assert helpers.snapshot(db) == states[-1]


def _npz_entry(arrays) -> tuple[str, bytes]:
    """An entry as dvo wrote them before 2026-11-21: an np.savez archive, zstd-compressed."""
    import io

    import numpy as np
    import zstandard

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return ".npz.zst", zstandard.ZstdCompressor().compress(buffer.getvalue())


def _one_frame_entry(arrays) -> tuple[str, bytes]:
    """An entry as dvo wrote them on 2026-11-21: magic, header and arrays in one frame."""
    import json

    import numpy as np
    import zstandard
    from numpy.lib.format import dtype_to_descr

    header = json.dumps([[k, dtype_to_descr(a.dtype), len(a)] for k, a in arrays.items()])
    body = b"".join(np.ascontiguousarray(a).tobytes() for a in arrays.values())
    raw = b"DVOWAL1\n" + len(header).to_bytes(8, "little") + header.encode() + body
    return ".wal.zst", zstandard.ZstdCompressor().compress(raw)


def _frames_entry(arrays) -> tuple[str, bytes]:
    """An entry as dvo wrote them on 2026-11-21 and 22: magic, header, one frame per array."""
    import json

    import numpy as np
    import zstandard
    from numpy.lib.format import dtype_to_descr

    cctx = zstandard.ZstdCompressor(level=-3, write_checksum=True)
    frames = [cctx.compress(np.ascontiguousarray(a).tobytes()) for a in arrays.values()]
    header = json.dumps(
        [
            [k, dtype_to_descr(a.dtype), len(a), len(frame)]
            for (k, a), frame in zip(arrays.items(), frames, strict=True)
        ]
    )
    head = b"DVOWAL2\n" + len(header).to_bytes(8, "little") + header.encode()
    return ".wal.zst", head + b"".join(frames)


@pytest.mark.parametrize("writer", [_npz_entry, _one_frame_entry, _frames_entry])
def test_entries_of_previous_formats_are_replayed(
    prefix_states, tiny_survey, tmp_path, helpers, writer
):
    """Entries logged by earlier versions of dvo are still replayed: a crash log written by
    the previous version is not lost."""
    import numpy as np

    empty, states = prefix_states
    db_path = tmp_path / "db"
    shutil.copytree(empty, db_path)
    assert _crash_after(db_path, tiny_survey[0], 2) == 9
    log = WriteAheadLog(db_path)
    names = []
    for seq, path in log.pending():
        delta = log.read(path)
        arrays = {"images": delta.images, "parts": np.array([p[0] for p in delta.parts])}
        for k, (_, average, measure, lensing) in enumerate(delta.parts):
            arrays.update({f"average{k}": average, f"measure{k}": measure, f"lensing{k}": lensing})
        suffix, data = writer(arrays)
        path.unlink()
        path.with_name(f"{seq:010d}{suffix}").write_bytes(data)
        names.append(f"{seq:010d}{suffix}")
    assert [p.name for _, p in log.pending()] == names
    db = open_database(db_path)
    helpers.assert_db_valid(db)
    assert helpers.snapshot(db) == states[2]


def test_logged_rows_are_read_back_and_damage_is_reported(tmp_path):
    """Each part's Measure rows can be read back from the entry alone (what the builders keep
    between checkpoints); a damaged frame is a DatabaseError naming the entry."""
    import numpy as np

    from dvo.errors import DatabaseError
    from dvo.schema import AVERAGE, IMAGE, LENSING, MEASURE
    from dvo.wal import Delta

    rng = np.random.default_rng(5)
    parts = []
    for index, n in ((3, 1000), (8, 0), (9, 250)):
        measure = MEASURE.empty(n)
        measure["RA"], measure["AVE_REF"] = rng.uniform(0, 360, n), rng.integers(0, 50, n)
        parts.append((index, AVERAGE.empty(2), measure, LENSING.empty(0)))
    log = WriteAheadLog(tmp_path)
    entry = log.append(Delta(IMAGE.empty(3), parts))
    assert entry.seq == 1 and [r.count for r in entry.measure] == [1000, 0, 250]
    kept = [rows.read() for rows in entry.measure]  # each in memory of its own
    assert [rows.tobytes() for rows in kept] == [p[2].tobytes() for p in parts]
    delta, located = log.read_located(log.pending()[0][1])
    assert [p[2].tobytes() for p in delta.parts] == [p[2].tobytes() for p in parts]
    assert located == entry.measure  # a replay keeps the same locations as the run
    damaged = entry.measure[2]
    with open(damaged.path, "r+b") as fh:
        fh.seek(damaged.offset + damaged.size // 2)
        byte = fh.read(1)
        fh.seek(damaged.offset + damaged.size // 2)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(DatabaseError, match=f"{damaged.path.name}: unreadable"):
        damaged.read()
    assert entry.measure[0].read().tobytes() == parts[0][2].tobytes()  # its own frame


def test_logged_rows_read_ahead_in_groups(tmp_path, monkeypatch):
    """LogReadAhead gives each group's rows as LoggedRows.read does, while the next group is
    read in the background into the other buffer (the group before stays valid); rows not
    prefetched are read then; damaged or missing entries are reported at their read."""
    import numpy as np

    from dvo.errors import DatabaseError
    from dvo.schema import AVERAGE, IMAGE, LENSING, MEASURE
    from dvo.wal import Delta, LogReadAhead

    rng = np.random.default_rng(7)
    log, truth, groups = WriteAheadLog(tmp_path), {}, [[] for _ in range(4)]
    for _ in range(5):  # entries hold one part per group, of sizes around the block size
        parts = []
        for index in range(4):
            n = int(rng.integers(0, 3000))
            measure = MEASURE.empty(n)
            measure["RA"], measure["AVE_REF"] = rng.uniform(0, 360, n), rng.integers(0, 99, n)
            parts.append((index, AVERAGE.empty(1), measure, LENSING.empty(0)))
        entry = log.append(Delta(IMAGE.empty(1), parts))
        for rows, (index, _, measure, _) in zip(entry.measure, parts, strict=True):
            groups[index].append(rows)
            truth[rows] = measure.tobytes()
    from dvo.codecs import direct

    read_now, real = [], direct.read_range
    monkeypatch.setattr(direct, "read_range", lambda *a: read_now.append(a) or real(*a))
    with LogReadAhead() as ahead:
        ahead.prefetch(groups[0])
        for k, group in enumerate(groups):
            if k + 1 < len(groups):
                ahead.prefetch(groups[k + 1])
            assert [ahead.read(r).tobytes() for r in group] == [truth[r] for r in group]
        assert not read_now  # every group came from its read ahead
        assert ahead.read(groups[0][1]).tobytes() == truth[groups[0][1]]  # read now
        assert len(read_now) == 1
        damaged = groups[1][2]
        with open(damaged.path, "r+b") as fh:
            fh.seek(damaged.offset + damaged.size // 2)
            fh.write(b"\xff\x00\xff")
        ahead.prefetch(groups[1])
        ahead.prefetch(groups[2])
        with pytest.raises(DatabaseError, match=f"{damaged.path.name}: unreadable"):
            ahead.read(damaged)
        gone = groups[3][0].path
        gone.unlink()
        ahead.prefetch(groups[3])  # fails in the background; reported at its read
        with pytest.raises(DatabaseError, match=f"{gone.name}: unreadable"):
            ahead.read(groups[3][0])
        assert ahead.read(groups[3][1]).tobytes() == truth[groups[3][1]]


def test_reader_sees_last_checkpoint_while_a_writer_runs(prefix_states, tiny_survey, tmp_path):
    from conftest import Helpers

    empty, states = prefix_states
    db_path = tmp_path / "db"
    shutil.copytree(empty, db_path)
    assert _crash_after(db_path, tiny_survey[0], 3) == 9
    db = open_database(db_path)
    with writer_lock(db_path):  # stands for a live addstar that has logged 3 files
        with db.reader():
            assert Helpers.snapshot(db_path) == states[0]
            assert db.stats()["NAVERAGE"].sum() == 0
        assert len(WriteAheadLog(db_path).pending()) == 3
    with db.reader():
        assert Helpers.snapshot(db_path) == states[3]


@pytest.mark.parametrize("every", [1, 3])
def test_checkpoints_do_not_change_the_result(prefix_states, tiny_survey, tmp_path, every):
    from conftest import Helpers

    empty, states = prefix_states
    db_path = tmp_path / "db"
    shutil.copytree(empty, db_path)
    report = addstar(open_database(db_path), tiny_survey[0], checkpoint=every)
    assert report.loaded == len(tiny_survey[0])
    assert Helpers.snapshot(db_path) == states[-1]
    assert WriteAheadLog(db_path).pending() == []
    assert not list(WriteAheadLog(db_path).folder.glob("*.wal*"))  # pruned


def test_full_disk_stops_cleanly(prefix_states, tiny_survey, tmp_path, monkeypatch, capsys):
    """A log entry that cannot be written (no space left) stops addstar with a one-line error;
    the files logged before it stay (the next writer replays them), nothing is half written."""
    import errno

    from conftest import Helpers

    from dvo.cli.main import main
    from dvo.wal import WriteAheadLog as Log

    empty, states = prefix_states
    db_path = tmp_path / "db"
    shutil.copytree(empty, db_path)
    real, calls = Log._write, []

    def write(self, tmp, final, parts):  # on the log's writing thread
        calls.append(1)
        if len(calls) == 3:  # the third entry: only its start reaches the disk
            tmp.write_bytes(parts[0][: len(parts[0]) // 2])
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp))
        return real(self, tmp, final, parts)

    monkeypatch.setattr(Log, "_write", write)
    with pytest.raises(SystemExit) as info:
        main(["addstar", "-D", str(db_path), "-q", *map(str, tiny_survey[0])])
    assert info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert len(Log(db_path).pending()) == 2
    monkeypatch.undo()
    db = open_database(db_path)
    Helpers.assert_db_valid(db)  # replays the two logged files
    assert Helpers.snapshot(db) == states[2] and Log(db_path).pending() == []
