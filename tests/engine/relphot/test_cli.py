"""The relphot script: wiring and exit codes only (the library is tested directly)."""

from __future__ import annotations

import json

from dvo.cli.relphot import main


def _run(args: list[str]) -> int:
    try:
        main(args)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_cli_dry_run_writes_a_report(two_fields_db, tmp_path, capsys, helpers):
    snap = helpers.snapshot(two_fields_db)
    args = ["-D", str(two_fields_db.catdir), "--dry-run", "--quiet", "--report", str(tmp_path)]
    assert _run(args) == 0
    assert "dry run" in capsys.readouterr().out
    assert json.loads((tmp_path / "relphot.json").read_text())["dry_run"] is True
    assert helpers.snapshot(two_fields_db) == snap


def test_cli_error_is_one_line(tmp_path, capsys):
    assert _run(["-D", str(tmp_path / "missing"), "--quiet"]) == 1
    assert capsys.readouterr().err.startswith("error: ")
