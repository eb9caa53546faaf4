"""The query commands: wiring and exit codes (results are tested on the library)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dvo.cli.main import cli, run_with_errors


def _run(args, tmp_path=None):
    """Run through the group's error handling like the ``dvo`` script; (exit code, output)."""
    runner = CliRunner()

    def main():
        run_with_errors(cli, args)

    import click

    result = runner.invoke(click.Command("dvo", callback=main), [])
    return result.exit_code, result.output


@pytest.fixture
def D(tiny_db_master):  # noqa: N802 - reads like the -D option
    return str(tiny_db_master)


def test_cone_text_and_json(D):
    code, out = _run(["cone", "-D", D, "0:00:00", "+07:30:00", "3arcmin", "-c", "obj_id,g", "-q"])
    assert code == 0 and "obj_id" in out
    code, out = _run(["cone", "-D", D, "0", "7.5", "0.1", "--format", "json", "-n", "2"])
    assert code == 0 and len(json.loads(out)) == 2


def test_output_files(D, tmp_path):
    for fmt in ("csv", "fits", "parquet", "json"):
        path = tmp_path / f"out.{fmt}"
        code, _ = _run(
            ["box", "-D", D, "359.9", "0.1", "7.3", "7.6", "--format", fmt, "-o", str(path)]
        )
        assert code == 0 and path.stat().st_size > 0
    code, out = _run(["cone", "-D", D, "0", "7.5", "0.1", "--format", "fits"])
    assert code == 1 and "needs an output file" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["cone", "0", "95", "1"], "dec must lie"),
        (["cone", "0", "-95", "1"], "dec must lie"),
        (["cone", "0", "7.5", "1", "-w", "gmag < 3"], "unknown column 'gmag'"),
        (["cone", "0", "7.5", "1", "-w", "g <"], "position 4"),
        (["cone", "0", "7.5", "1", "-c", "nope"], "unknown column 'nope'"),
        (["polygon", "0", "0", "1", "1"], "at least 3 vertices"),
        (["lightcurve", "180", "-45"], "no object within"),
        (["object", "x1"], "integers"),
    ],
)
def test_errors_are_one_line_and_exit_1(D, args, message):
    code, out = _run([args[0], "-D", D, *args[1:]])
    assert code == 1 and message in out and out.startswith("error: ")
    assert out.count("\n") == 1


def test_other_commands(D, tmp_path):
    code, out = _run(["explain", "-D", D, "cone", "0", "7.5", "0.2", "-w", "g < 12"])
    assert code == 0 and "pruned" in out and "where" in out
    code, out = _run(["stats", "-D", D, "--plot", str(tmp_path / "sky.png")])
    assert code == 0 and "objects: " in out and (tmp_path / "sky.png").stat().st_size > 0
    code, out = _run(
        ["cone", "-D", D, "0", "7.5", "0.05", "-c", "obj_id", "--format", "csv", "-n", "1"]
    )
    oid = out.splitlines()[1]
    code, out = _run(["object", "-D", D, oid, "-c", "obj_id,ra"])
    assert code == 0 and oid in out
    code, out = _run(["lightcurve", "-D", D, oid, "--plot", str(tmp_path / "lc.png")])
    assert code == 0 and (tmp_path / "lc.png").stat().st_size > 0
    (tmp_path / "in.csv").write_text("ra,dec\n0.05,7.45\n")
    code, out = _run(["crossmatch", "-D", D, str(tmp_path / "in.csv"), "-r", "10arcsec"])
    assert code == 0 and "sep" in out
    code, out = _run(
        ["export", "-D", D, str(tmp_path / "exp"), "--table", "objects", "-c", "obj_id,ra,dec"]
    )
    assert code == 0 and (tmp_path / "exp" / "objects" / "properties").exists()
