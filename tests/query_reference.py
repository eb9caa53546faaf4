"""Brute-force oracles for the query engine: read every partition whole, filter with astropy.

Independent of dvo.query: object tables are built from ``db.partition`` (all columns, all
rows) with plain numpy, distances come from ``SkyCoord.separation``, and where-expressions are
re-implemented per test as numpy lambdas.
"""

from __future__ import annotations

import numpy as np
from astropy import units as u
from astropy.coordinates import SkyCoord

from dvo.ids import object_id


def all_objects(db) -> dict[str, np.ndarray]:
    """Every object of the database: obj_id, ra, dec, nmeasure, and mag/err/nused per filter."""
    names = db.photcodes.sec_names
    parts = [db.partition(i, kinds=("average", "secfilt")) for i in db.populated()]
    cols: dict[str, list] = {k: [] for k in ("obj_id", "ra", "dec", "nmeasure", "index")}
    for f in names:
        cols.update({f: [], f"{f}_err": [], f"{f}_nused": []})
    for p in parts:
        n, ns = len(p.average), p.nsecfilt
        cols["obj_id"].append(object_id(p.index, p.average["OBJ_ID"]))
        cols["ra"].append(p.average["RA"])
        cols["dec"].append(p.average["DEC"])
        cols["nmeasure"].append(p.average["NMEASURE"])
        cols["index"].append(np.full(n, p.index))
        for k, f in enumerate(names):
            cols[f].append(p.secfilt["MAG"][k::ns])
            cols[f"{f}_err"].append(p.secfilt["MAG_ERR"][k::ns])
            cols[f"{f}_nused"].append(p.secfilt["NUSED"][k::ns])
    return {k: np.concatenate(v) for k, v in cols.items()}


def all_measures(db) -> dict[str, np.ndarray]:
    """Every measurement with its object's id and position (obj_ra, obj_dec)."""
    out: dict[str, list] = {
        k: []
        for k in (
            "obj_id",
            "obj_ra",
            "obj_dec",
            "mag",
            "photcode",
            "airmass",
            "mcal",
            "mflat",
            "image_id",
        )
    }
    for i in db.populated():
        p = db.partition(i, kinds=("average", "measure"))
        ref = p.measure["AVE_REF"].astype(np.int64)
        out["obj_id"].append(object_id(i, p.average["OBJ_ID"][ref]))
        out["obj_ra"].append(p.average["RA"][ref])
        out["obj_dec"].append(p.average["DEC"][ref])
        out["mag"].append(p.measure["MAG"])
        out["photcode"].append(p.measure["PHOTCODE"])
        out["airmass"].append(p.measure["AIRMASS"])
        out["mcal"].append(p.measure["MCAL_PSF"])
        out["mflat"].append(p.measure["M_FLAT"])
        out["image_id"].append(p.measure["IMAGE_ID"])
    return {k: np.concatenate(v) for k, v in out.items()}


def separation_deg(ra0, dec0, ra, dec) -> np.ndarray:
    """Angular distance in degrees with astropy."""
    c0 = SkyCoord(ra0 * u.deg, dec0 * u.deg)
    return c0.separation(SkyCoord(np.asarray(ra) * u.deg, np.asarray(dec) * u.deg)).deg


def in_cone(objs, ra0, dec0, radius) -> np.ndarray:
    """Mask of objects within ``radius`` degrees (astropy separations)."""
    return separation_deg(ra0, dec0, objs["ra"], objs["dec"]) <= radius


def in_box(objs, ra_min, ra_max, dec_min, dec_max) -> np.ndarray:
    """Mask of objects in an RA/Dec box (wrapping when ra_min > ra_max)."""
    ra, dec = objs["ra"] % 360.0, objs["dec"]
    in_ra = (ra >= ra_min) & (ra <= ra_max) if ra_min <= ra_max else (ra >= ra_min) | (ra <= ra_max)
    return in_ra & (dec >= dec_min) & (dec <= dec_max)


def in_polygon(objs, ra, dec) -> np.ndarray:
    """Mask of objects inside a convex polygon, by the sign of triple products (numpy)."""
    v = _vec(np.asarray(ra), np.asarray(dec))
    p = _vec(objs["ra"], objs["dec"])
    centre = v.sum(axis=0)
    sides = []
    for k in range(len(v)):
        n = np.cross(v[k], v[(k + 1) % len(v)])
        sides.append((p @ n) * np.sign(centre @ n))
    return np.all(np.array(sides) >= -1e-12, axis=0)


def _vec(ra, dec):
    r, d = np.radians(ra), np.radians(dec)
    return np.stack([np.cos(d) * np.cos(r), np.cos(d) * np.sin(r), np.sin(d)], axis=-1)
