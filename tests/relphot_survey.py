"""The simulated surveys of the relphot tests, built once and cached by content.

Building the 200-exposure x 60-chip survey through addstar takes minutes, so the database is
cached under pytest's cache folder (``.pytest_cache/d/relphot-surveys/``), keyed by a hash of the
survey configuration and of the sources listed in HASHED. Any change there rebuilds it.
Run this file directly to build the cache ahead of a test session:
``python tests/relphot_survey.py .pytest_cache/d/relphot-surveys``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: The issue's survey: 200 exposures x 60 chips over 4 nights, 0.1 mag per-exposure offsets,
#: 10% cloudy exposures, per-night extinction, a +-20 mmag 2x2-cell flat per chip; a low star
#: density keeps ingest affordable, a few variable stars exercise the chi2 cut.
SURVEY = dict(
    seed=11,
    field_size=3.0,
    chips=None,
    n_exposures=200,
    n_nights=4,
    span_days=4.0,
    star_density=300.0,
    mag_min=14.5,
    mag_max=21.5,
    zp_scatter=0.1,
    cloudy_fraction=0.1,
    extinction_scatter=0.02,
    flat_amplitude=0.02,
    flat_cells=2,
    airmass_max=2.0,
    variable_fraction=0.02,
)

#: Two fields 10 degrees apart that share no star: two groups, never tied.
TWO_FIELDS = dict(
    seed=5,
    pointings=((150.0, 20.0), (160.0, 20.0)),
    dither=0.2,
    n_exposures=16,
    star_density=1500.0,
    zp_scatter=0.05,
    flat_amplitude=0.0,
)


#: Sources whose change alters the cached data (formats, photometry, simulator); the engine's
#: other modules change often and rarely the content, and relphot rewrites the averages anyway.
HASHED = ("dvo/schema", "dvo/smf.py", "dvo/photcodes.py", "dvo/photometry.py", "tools/simulate")

#: One field over 3 nights with no random zero points: per-night extinction and clouds only,
#: for the night model (a_n + k_n (AIRMASS - 1), cloudy exposures freed).
NIGHTS = dict(
    seed=9,
    field_size=0.3,
    n_exposures=36,
    n_nights=3,
    span_days=3.0,
    star_density=2000.0,
    zp_scatter=0.0,
    extinction_scatter=0.05,
    cloudy_fraction=0.15,
    cloud_min=0.2,
    airmass_max=2.0,
    flat_amplitude=0.0,
)

#: The same two fields with a Gaia-like reference catalogue (REF.r) of their bright stars.
TWO_FIELDS_REF = dict(TWO_FIELDS, reference=True, reference_mag_max=19.0)


def _source_hash() -> str:
    h = hashlib.sha256()
    for name in HASHED:
        path = ROOT / name
        for p in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            h.update(p.read_bytes())
    return h.hexdigest()[:16]


def cache_key(config: dict) -> str:
    """Hash of a survey configuration and of the code that turns it into a database."""
    text = json.dumps(config, sort_keys=True) + _source_hash()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build(config: dict, folder: Path) -> Path:
    """Simulate and ingest ``config`` into ``folder`` (``smf/`` + truth, ``db/``), once."""
    from dvo.tools.simulate import SurveyConfig, simulate_survey

    from dvo.database import create_database
    from dvo.ingest import addstar

    done = folder / "done"
    if done.exists():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    simulate_survey(SurveyConfig(**config), folder / "smf")
    db = create_database(folder / "db", compression="none")
    files = sorted((folder / "smf").glob("*.smf"))
    # one transaction per 50 files: per-file commits rewrite ever larger partitions (minutes)
    report = addstar(db, files)
    if config.get("reference"):
        ref = addstar(db, [folder / "smf" / "reference.fits"], photcode="REF.r")
        report.failed += ref.failed
    if report.failed:
        raise RuntimeError(f"addstar failed: {report.failed}")
    done.write_text("ok")
    return folder


def cached(config: dict, cache_root: Path, name: str) -> Path:
    """The folder of a built survey under ``cache_root`` (built when missing)."""
    return build(config, Path(cache_root) / f"relphot-{name}-{cache_key(config)}")


def truth_of(folder: Path):
    """The simulator's truth of a built survey."""
    from dvo.tools.simulate import Truth

    return Truth.load(folder / "smf")


def image_truth(images: np.ndarray, truth) -> np.ndarray:
    """Row of ``truth.images`` for each Images row (by the header IMAGEID kept in EXTERN_ID)."""
    ids = truth.images["imageid"]
    order = np.argsort(ids)
    pos = order[np.searchsorted(ids, images["EXTERN_ID"], sorter=order)]
    assert (ids[pos] == images["EXTERN_ID"]).all()
    return pos


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else ROOT / ".pytest_cache/d/relphot-surveys")
    for name, cfg in (
        ("two-fields", TWO_FIELDS),
        ("two-fields-ref", TWO_FIELDS_REF),
        ("survey", SURVEY),
    ):
        print(name, cached(cfg, root, name), flush=True)
