"""CLI wiring of create, addstar, verify and demo: exit codes and one-line errors."""

from __future__ import annotations

from click.testing import CliRunner

from dvo.cli.addstar import addstar
from dvo.cli.main import cli, main


def test_create_addstar_verify(tiny_survey, tmp_path):
    runner = CliRunner()
    db = tmp_path / "db"
    res = runner.invoke(cli, ["create", str(db), "--filters", "g,r"])
    assert res.exit_code == 0, res.output
    res = runner.invoke(addstar, ["-D", str(db), "--quiet", *map(str, tiny_survey[0][:2])])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["verify", "-D", str(db)])
    assert res.exit_code == 0 and "ok" in res.output


def test_addstar_bad_file_exits_nonzero(tmp_path):
    runner = CliRunner()
    db = tmp_path / "db"
    runner.invoke(cli, ["create", str(db)])
    bad = tmp_path / "bad.smf"
    bad.write_bytes(b"nope")
    res = runner.invoke(addstar, ["-D", str(db), "--quiet", str(bad)])
    assert res.exit_code == 1
    assert "bad.smf" in res.output


def test_dvo_error_is_one_line(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        main(["verify", "-D", str(tmp_path / "missing")])
    assert exc.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "not a dvo database" in err


def test_create_refuses_nonempty(tmp_path, capsys):
    import pytest

    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "file").write_text("keep me")
    with pytest.raises(SystemExit):
        main(["create", str(tmp_path / "x")])
    assert (tmp_path / "x" / "file").read_text() == "keep me"
