"""Object and lightcurve lookups by id (the id names its partition) or by position.

An object id is ``catID << 32 | objID`` (:func:`dvo.ids.object_id`), so a lookup by id plans
exactly the partitions named by the ids and reads only the row ranges holding them.

Examples
--------
>>> import dvo                                         # doctest: +SKIP
>>> db = dvo.open("db")                                # doctest: +SKIP
>>> lc = db.lightcurve(210.80123, 54.29871)             # doctest: +SKIP
>>> lc["mjd", "filter", "mag", "mag_err"]               # doctest: +SKIP
"""

from __future__ import annotations

import numpy as np

from dvo.errors import QueryError
from dvo.ids import split_object_id
from dvo.query.engine import make_region, query

__all__ = ["objects", "lightcurve", "nearest_object", "LIGHTCURVE_COLUMNS"]

LIGHTCURVE_COLUMNS = [
    "obj_id",
    "mjd",
    "filter",
    "photcode",
    "mag",
    "mag_err",
    "ra",
    "dec",
    "image_id",
    "airmass",
    "db_flags",
]


def _ids(obj_id) -> np.ndarray:
    try:
        ids = np.atleast_1d(np.asarray(obj_id)).astype(np.int64, casting="safe")
    except (TypeError, ValueError):
        raise QueryError(f"object ids must be integers, got {obj_id!r}") from None
    if (ids < 0).any():
        raise QueryError(f"object ids must be non-negative, got {int(ids[ids < 0][0])}")
    return ids


def objects(
    db, obj_id, *, table: str = "objects", columns="*", where=None, jobs=None, output="astropy"
):
    """Rows of the objects with these 64-bit ids (all columns by default), in id order.

    Unknown ids are simply absent from the result.
    """
    ids = _ids(obj_id)
    cat, _ = split_object_id(ids)
    valid = cat < len(db.skytable)
    return query(
        db,
        None,
        table=table,
        columns=columns,
        where=where,
        ids=ids[valid],
        partitions=cat[valid],
        jobs=jobs,
        output=output,
    )


def nearest_object(db, ra: float, dec: float, radius_arcsec: float = 1.0) -> int:
    """The id of the object nearest to (ra, dec) within the radius; QueryError if none."""
    from dvo.skytable import angular_distance

    found = query(
        db,
        make_region("cone", ra, dec, radius_arcsec / 3600.0),
        columns=["obj_id", "ra", "dec"],
        output="numpy",
    )
    if len(found) == 0:
        raise QueryError(f"no object within {radius_arcsec} arcsec of ({ra}, {dec})")
    sep = angular_distance(ra, dec, found["ra"], found["dec"])
    return int(found["obj_id"][np.lexsort((found["obj_id"], sep))[0]])


def lightcurve(
    db,
    obj_id_or_ra,
    dec: float | None = None,
    *,
    radius: float = 1.0,
    photcodes=None,
    calibrated: bool = True,
    columns=None,
    output="astropy",
):
    """Measurements of one object sorted by time, ``mag`` calibrated unless told otherwise.

    Parameters
    ----------
    obj_id_or_ra : int or float
        An object id, or the RA (degrees) of a position when ``dec`` is given; the nearest
        object within ``radius`` arcsec is used.
    photcodes : str or list of str, optional
        Keep only these photcode names (``GPC1.g.XY01``) or average filters (``g``).
    calibrated : bool
        ``mag`` is the calibrated magnitude (``mag_cal``) when True, else the stored ``MAG``.
    """
    if dec is None:
        oid = int(_ids(obj_id_or_ra)[0])
    else:
        oid = nearest_object(db, obj_id_or_ra, dec, radius)
    names = list(columns or LIGHTCURVE_COLUMNS)
    want = [c for c in names if c != "mag"] + ["mag_cal" if calibrated else "mag"]
    want += [c for c in ("filter", "photcode") if c not in want]
    arr = objects(db, oid, table="measures", columns=want, output="numpy")
    arr = arr[np.argsort(arr["mjd"], kind="stable")] if "mjd" in want else arr
    if photcodes is not None:
        keep = [photcodes] if isinstance(photcodes, str) else list(photcodes)
        arr = arr[np.isin(arr["photcode"], keep) | np.isin(arr["filter"], keep)]
    return _lightcurve_output(db, arr, names, calibrated, output)


def _lightcurve_output(db, arr, names, calibrated, output):
    from dvo.query import tables
    from dvo.query.engine import to_output

    source = "mag_cal" if calibrated else "mag"
    cols = {n: arr[source] if n == "mag" else arr[n] for n in names}
    out = np.empty(len(arr), [(n, cols[n].dtype) for n in names])
    for n in names:
        out[n] = cols[n]
    units = tables.units(
        "measures", tuple(db.photcodes.sec_names), [n for n in names if n != "mag"]
    )
    return to_output(out, {**units, **({"mag": "mag"} if "mag" in names else {})}, output)
