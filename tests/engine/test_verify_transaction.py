"""dvo verify reports broken invariants precisely; journaled commits roll forward."""

from __future__ import annotations

import json
import os

import pytest

from dvo import layout
from dvo.database import open_database
from dvo.partition import write_partition
from dvo.transaction import JOURNAL, Transaction, recover
from dvo.verify import verify


def _rewrite(db, index, edit):
    """Write partition ``index`` after ``edit(part)`` through a normal transaction."""
    part = db.partition(index)
    edit(part)
    with db.writer(), Transaction(db.catdir) as tx:
        write_partition(part, tx.stage)
    return part.name


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda p: p.average["NMEASURE"].__setitem__(0, p.average["NMEASURE"][0] + 1), "offsets"),
        (lambda p: p.measure["IMAGE_ID"].__setitem__(0, 999999), "Measure IMAGE_ID"),
        (lambda p: p.measure["PHOTCODE"].__setitem__(0, 65000), "PHOTCODE"),
        (lambda p: p.average["CAT_ID"].__setitem__(0, 1), "CAT_ID"),
        (lambda p: p.secfilt["MAG"].__setitem__(0, p.secfilt["MAG"][0] + 0.5), "secfilt MAG"),
        (lambda p: p.average["DEC"].__setitem__(0, p.average["DEC"][0] + 1.0), "inside partition"),
        (lambda p: p.average["OBJ_ID"].__setitem__(1, p.average["OBJ_ID"][0]), "OBJ_ID"),
    ],
)
def test_verify_names_the_violation(tiny_db, edit, check):
    index = int(tiny_db.populated()[0])
    name = _rewrite(tiny_db, index, edit)
    problems = verify(tiny_db)
    assert any(p.where == name and p.check == check for p in problems), problems


def test_verify_detects_corrupt_bytes(tiny_db):
    index = int(tiny_db.populated()[0])
    path = layout.partition_path(tiny_db.catdir, str(tiny_db.skytable.name[index]), "measure")
    data = bytearray(path.read_bytes())
    data[-3000] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = verify(tiny_db)
    assert any("measure" in p.check or p.check == "readable" for p in problems), problems


def test_journal_is_rolled_forward(tiny_db, helpers):
    """A commit interrupted after its journal was written is completed by the next opener."""
    images = tiny_db.images()
    before = helpers.snapshot(tiny_db)
    tx = Transaction(tiny_db.catdir)
    from dvo import codecs
    from dvo.schema import IMAGE

    codecs.write_table(
        tx.stage(layout.IMAGES),
        IMAGE.conform(images[:-1]),
        extname=IMAGE.name,
        header={"IMAGEID": tiny_db.next_image_id()},
    )
    entries = [[str(p.relative_to(tiny_db.catdir)), rel] for rel, p in tx.staged.items()]
    (layout.state_dir(tiny_db.catdir) / JOURNAL).write_text(json.dumps(entries))
    assert helpers.snapshot(tiny_db) == before  # nothing applied yet
    with tiny_db.writer():  # the writer lock recovers first
        pass
    assert not (layout.state_dir(tiny_db.catdir) / JOURNAL).exists()
    assert len(open_database(tiny_db.catdir).images()) == len(images) - 1


def test_abort_leaves_nothing(tiny_db, helpers):
    before = helpers.snapshot(tiny_db)
    with pytest.raises(RuntimeError), Transaction(tiny_db.catdir) as tx:
        tx.stage(layout.IMAGES).write_bytes(b"half written")
        raise RuntimeError("boom")
    assert helpers.snapshot(tiny_db) == before
    assert not any((layout.state_dir(tiny_db.catdir) / "staging").glob("*/*"))
    assert recover(tiny_db.catdir) is False


def test_stage_refuses_paths_outside(tiny_db):
    from dvo.errors import DatabaseError

    tx = Transaction(tiny_db.catdir)
    for bad in ("../escape.fits", "/etc/passwd"):
        with pytest.raises(DatabaseError):
            tx.stage(bad)


def test_unsafe_partition_names_rejected():
    from dvo.errors import DatabaseError

    for bad in ("../../etc", "n0000/../../x", "/abs", "n0000/0001; rm -rf /", "$(id)", "a b"):
        with pytest.raises(DatabaseError):
            layout.check_partition_name(bad)
    assert layout.check_partition_name("hpx07/Npix012345") == "hpx07/Npix012345"


def test_files_are_deterministic(tiny_db_master, tiny_survey, tmp_path, helpers):
    """Two ingests of the same files give byte-identical databases."""
    from dvo.database import create_database
    from dvo.ingest import addstar

    db = create_database(tmp_path / "again")
    addstar(db, tiny_survey[0])
    a, b = helpers.snapshot(db), helpers.snapshot(tiny_db_master)
    assert a.keys() == b.keys() and all(a[k] == b[k] for k in a if k != layout.SETTINGS)
    assert os.path.exists(db.catdir / layout.SETTINGS)
