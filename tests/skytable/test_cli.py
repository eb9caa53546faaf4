"""Wiring of ``dvo skytable build|show|plot`` (the library is tested directly elsewhere)."""

from __future__ import annotations

import healpy as hp
import numpy as np
from click.testing import CliRunner

from dvo.cli.main import cli, main


def test_build_show_plot(tmp_path):
    runner = CliRunner()
    out = tmp_path / "SkyTable.fits"
    res = runner.invoke(cli, ["skytable", "build", "--level", "2", "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["skytable", "show", str(out)])
    assert res.exit_code == 0 and "partitions 734" in res.output and "n0000" in res.output
    png = tmp_path / "map.png"
    res = runner.invoke(cli, ["skytable", "plot", str(out), "--level", "2", "-o", str(png)])
    assert res.exit_code == 0, res.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_build_healpix_and_adaptive(tmp_path):
    runner = CliRunner()
    out = tmp_path / "h.fits"
    assert (
        runner.invoke(
            cli, ["skytable", "build", "--scheme", "healpix", "--order", "2", "-o", str(out)]
        ).exit_code
        == 0
    )
    dens = tmp_path / "d.fits"
    hp.write_map(dens, np.full(hp.nside2npix(8), 50.0), nest=True, dtype=np.float64)
    res = runner.invoke(
        cli,
        ["skytable", "build", "--density", str(dens), "--max-per-partition", "500", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):
    for args in (
        ["skytable", "show", str(tmp_path / "nope.fits")],
        ["skytable", "build", "--level", "9", "-o", str(tmp_path / "x.fits")],
    ):
        try:
            main(args)
        except SystemExit as exc:
            assert exc.code == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and err.count("\n") == 1
