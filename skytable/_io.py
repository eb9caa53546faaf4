"""SkyTable FITS I/O through fitsio: one binary table, HDU ``SKYTABLE``.

Columns follow DVO's SKY_REGION (R_MIN, R_MAX, D_MIN, D_MAX, CHILD_S, CHILD_E, PARENT,
INDEX, DEPTH, CHILD, TABLE, NAME, HOST_FLAGS, HOST_ID, BACKUP_ID) with two differences:
the bounds are float64 (``D``, not ``E``: float32 bounds would move points across box
edges between a build and a re-read), and three extra columns carry the lookup structure
(NRA, NDEC: the child grid; HPX_PIX: the HEALPix pixel, -1 for GSC). Header keywords
SCHEME and LEVEL give the scheme and the table depth.
"""

from __future__ import annotations

import os
from pathlib import Path

import fitsio
import numpy as np
from dvo.skytable.names import safe_names

from dvo.errors import SkyTableError

__all__ = ["read_skytable", "write_skytable", "EXTNAME"]

EXTNAME = "SKYTABLE"
_MAP = [  # (FITS column, attribute, dtype)
    ("R_MIN", "r_min", "f8"),
    ("R_MAX", "r_max", "f8"),
    ("D_MIN", "d_min", "f8"),
    ("D_MAX", "d_max", "f8"),
    ("CHILD_S", "child_s", "i4"),
    ("CHILD_E", "child_e", "i4"),
    ("PARENT", "parent", "i4"),
    ("DEPTH", "depth", "u1"),
    ("TABLE", "has_table", "u1"),
    ("HOST_FLAGS", "host_flags", "u1"),
    ("HOST_ID", "host_id", "u1"),
    ("BACKUP_ID", "backup_id", "u1"),
    ("NRA", "nra", "i2"),
    ("NDEC", "ndec", "i2"),
    ("HPX_PIX", "hpx_pix", "i8"),
]


def write_skytable(st, path: str | Path) -> None:
    """Write ``st`` to ``path`` (temporary file in the same folder, then ``os.replace``)."""
    path = Path(path)
    n = len(st)
    width = max(int(np.strings.str_len(st.name).max()), 1)
    dtype = [(c, t) for c, _, t in _MAP] + [("INDEX", "i4"), ("CHILD", "u1"), ("NAME", f"S{width}")]
    rec = np.zeros(n, dtype=dtype)
    for col, attr, _ in _MAP:
        rec[col] = getattr(st, attr)
    rec["INDEX"] = np.arange(n)
    rec["CHILD"] = st.child_e > st.child_s
    rec["NAME"] = np.char.encode(st.name, "ascii")
    header = [
        {"name": "SCHEME", "value": st.scheme.value, "comment": "gsc or healpix"},
        {"name": "LEVEL", "value": st.level, "comment": "depth of the partitions"},
    ]
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with fitsio.FITS(str(tmp), "rw", clobber=True) as f:
            f.write(rec, extname=EXTNAME, header=header)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SkyTableError(f"{path}: cannot write SkyTable ({exc})") from exc


def _read_raw(path: Path):
    try:
        with fitsio.FITS(str(path)) as f:
            if EXTNAME not in f:
                raise SkyTableError(f"{path}: no {EXTNAME} extension")
            return f[EXTNAME].read(), f[EXTNAME].read_header()
    except (OSError, ValueError) as exc:
        raise SkyTableError(f"{path}: not a readable SkyTable ({exc})") from exc


def read_skytable(cls, path: str | Path):
    """Read and validate a SkyTable written by :func:`write_skytable`."""
    path = Path(path)
    if not path.exists():
        raise SkyTableError(f"{path}: no such file")
    rec, header = _read_raw(path)
    names = set(rec.dtype.names)
    missing = [c for c, _, _ in _MAP if c not in names] + [
        c for c in ("NAME", "INDEX") if c not in names
    ]
    if missing:
        raise SkyTableError(f"{path}: missing columns {missing}")
    if not np.array_equal(rec["INDEX"], np.arange(len(rec))):
        raise SkyTableError(f"{path}: INDEX is not the row number")
    name = np.char.strip(rec["NAME"].astype(str))  # fitsio may give bytes or str
    if not safe_names(name).all():
        raise SkyTableError(f"{path}: unsafe partition name {name[~safe_names(name)][0]!r}")
    cols = {attr: rec[col] for col, attr, _ in _MAP}
    cols["has_table"] = cols["has_table"].astype(bool)
    try:
        st = cls(
            str(header.get("SCHEME", "gsc")).strip(), int(header.get("LEVEL", 3)), name=name, **cols
        )
    except ValueError as exc:
        raise SkyTableError(f"{path}: {exc}") from exc
    _validate(st, path)
    return st


def _validate(st, path) -> None:
    n = len(st)
    bounds = np.stack([st.r_min, st.r_max, st.d_min, st.d_max])
    if not np.isfinite(bounds).all() or (st.d_min > st.d_max).any() or (st.r_min > st.r_max).any():
        raise SkyTableError(f"{path}: invalid bounds")
    if ((st.parent < -1) | (st.parent >= n)).any() or (st.child_s > st.child_e).any():
        raise SkyTableError(f"{path}: invalid parent/child rows")
    kids = np.flatnonzero(st.parent >= 0)
    p = st.parent[kids]
    if ((kids < st.child_s[p]) | (kids >= st.child_e[p])).any() or (st.child_e > n).any():
        raise SkyTableError(f"{path}: children and parents disagree")
    if len(np.unique(st.name)) != n:
        raise SkyTableError(f"{path}: duplicate partition names")
