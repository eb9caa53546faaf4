"""HATS export of a database whose partitions live on hosts (real sshd) equals the export of
a local copy: the hosted copy has no local partition files, so every row comes from a host."""

from __future__ import annotations

import pyarrow.parquet as pq


def _tables(root):
    """Every Parquet file of an export (relative path -> table); metadata files aside, whose
    creation dates differ."""
    return {
        p.relative_to(root).as_posix(): pq.read_table(p) for p in sorted(root.rglob("*.parquet"))
    }


def test_export_on_hosts_equals_local(sshd_farm, tmp_path):
    from dvo import layout
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.query.export import export

    columns = {"objects": "*", "measures": "obj_id,mjd,ra,dec,mag_cal"}
    export(open_database(sshd_farm.master), tmp_path / "local", max_rows=800, columns=columns,
           margin_arcsec=30.0)  # fmt: skip
    db, _ = sshd_farm.hosted_copy(tmp_path / "hosted", sshd_farm.servers[:2])
    for index in db.populated():
        for path in layout.partition_files(db.catdir, str(db.skytable.name[index])).values():
            path.unlink(missing_ok=True)
    with host_options(known_hosts=str(sshd_farm.known_hosts), connect_timeout=10.0):
        export(db, tmp_path / "remote", max_rows=800, columns=columns, margin_arcsec=30.0)
    local, remote = _tables(tmp_path / "local"), _tables(tmp_path / "remote")
    assert len(local) > 4 and sorted(local) == sorted(remote)
    for name, table in local.items():
        other = remote[name]
        assert other.schema.equals(table.schema, check_metadata=True), name
        for col in table.column_names:  # bytes, so that NaN equals NaN
            a = table[col].to_numpy(zero_copy_only=False)
            b = other[col].to_numpy(zero_copy_only=False)
            if a.dtype == object:
                assert a.tolist() == b.tolist(), (name, col)
            else:
                assert a.dtype == b.dtype and a.tobytes() == b.tobytes(), (name, col)
    assert sum(t.num_rows for n, t in local.items() if n.startswith("objects/dataset/N")) > 100
