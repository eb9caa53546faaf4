"""Query fixtures: the tiny survey database (read-only), and an all-sky HEALPix database.

``sky_db`` has 5000 objects everywhere, with clusters at RA 0 / Dec 0 and at both poles, each
seen in g, r, i at 3 epochs (``dvo.tools.querydata``), in a HEALPix order-2 SkyTable: 192
partitions for the planner to prune. ``gsc_db`` is the same kind of sky in GSC level-2
partitions (pole caps, density-split boxes); ``any_sky`` runs a test on both.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="session")
def tiny(tiny_db_master):
    """The tiny survey database, opened read-only (do not write to it)."""
    from dvo.database import open_database

    return open_database(tiny_db_master)


@pytest.fixture(scope="session")
def sky_db_path(tmp_path_factory):
    """Path of the all-sky HEALPix database (built once per session)."""
    from dvo.tools.querydata import build_database, sky_positions

    out = tmp_path_factory.mktemp("sky") / "db"
    ra, dec = sky_positions(5000, np.random.default_rng(11))
    build_database(out, ra, dec, n_epochs=3, scheme="healpix", level=2, seed=5)
    return out


@pytest.fixture(scope="session")
def gsc_db(tmp_path_factory):
    """An all-sky GSC level-2 database (734 partitions, pole caps, RA 0 seams), read-only."""
    from dvo.tools.querydata import build_database, sky_positions

    out = tmp_path_factory.mktemp("gsc") / "db"
    ra, dec = sky_positions(1500, np.random.default_rng(12))
    return build_database(out, ra, dec, n_epochs=1, scheme="gsc", level=2, seed=6)


@pytest.fixture(scope="session", params=["healpix", "gsc"])
def any_sky(request):
    """(database, brute-force objects) for the HEALPix and the GSC all-sky databases."""
    from query_reference import all_objects

    db = request.getfixturevalue("sky_db" if request.param == "healpix" else "gsc_db")
    return db, all_objects(db)


@pytest.fixture(scope="session")
def sky_db(sky_db_path):
    """The all-sky database, opened read-only."""
    from dvo.database import open_database

    return open_database(sky_db_path)


@pytest.fixture(scope="session")
def sky_objects(sky_db):
    """Brute-force object table of ``sky_db``."""
    from query_reference import all_objects

    return all_objects(sky_db)


@pytest.fixture(scope="session")
def tiny_objects(tiny):
    """Brute-force object table of the tiny database."""
    from query_reference import all_objects

    return all_objects(tiny)
