"""The SkyTable: a sky partition as column arrays, one row per node of the tree.

Row ``i`` has INDEX ``i``. Rows are ordered by depth, then by parent; the children of
row ``i`` are rows ``child_s[i] .. child_e[i] - 1``. Rows with ``has_table`` are the
partitions (the nodes that hold catalog files).

Lookup convention (GSC scheme): a point belongs to the box with
``R_MIN <= ra < R_MAX`` and ``D_MIN <= dec < D_MAX``; Dec = +90 belongs to the boxes whose
``D_MAX`` is 90; RA is taken modulo 360. The boxes of each depth tile the sphere, so every
point is in exactly one. HEALPix scheme: the pixel ``healpy.ang2pix`` (nested) gives.
"""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np
from dvo.skytable import _kernels, _lookup
from dvo.skytable._build import Columns
from dvo.skytable._sphere import box_area
from dvo.skytable.regions import Region

from dvo.errors import SkyTableError

__all__ = ["Scheme", "SkyTable"]


class Scheme(enum.Enum):
    """How the sky is partitioned."""

    GSC = "gsc"
    HEALPIX = "healpix"


class SkyTable:
    """A hierarchical sky partition (see the module docstring for the conventions).

    Build with :meth:`gsc`, :meth:`healpix`, :meth:`adaptive` or :meth:`read`.

    Examples
    --------
    >>> st = SkyTable.gsc(3)
    >>> st.name[st.lookup([10.0], [5.0])[0]]
    np.str_('n0000/0017')
    >>> len(st.partitions), int(st.depth.max())
    (9426, 3)
    """

    _COLUMNS = (
        "r_min",
        "r_max",
        "d_min",
        "d_max",
        "name",
        "depth",
        "parent",
        "child_s",
        "child_e",
        "has_table",
        "host_id",
        "backup_id",
        "host_flags",
        "nra",
        "ndec",
        "hpx_pix",
    )

    def __init__(self, scheme: Scheme, level: int, **columns: np.ndarray) -> None:
        self.scheme = Scheme(scheme)
        self.level = int(level)
        missing = [c for c in self._COLUMNS if c not in columns]
        if missing:
            raise SkyTableError(f"SkyTable: missing columns {missing}")
        n = len(columns["name"])
        types = {
            "r_min": np.float64,
            "r_max": np.float64,
            "d_min": np.float64,
            "d_max": np.float64,
            "depth": np.int16,
            "parent": np.int64,
            "child_s": np.int64,
            "child_e": np.int64,
            "has_table": np.bool_,
            "host_id": np.uint8,
            "backup_id": np.uint8,
            "host_flags": np.uint8,
            "nra": np.int32,
            "ndec": np.int32,
            "hpx_pix": np.int64,
        }
        for c in self._COLUMNS:
            v = np.ascontiguousarray(columns[c], dtype=types.get(c, str))
            if v.shape != (n,):
                raise SkyTableError(f"SkyTable: column {c} has shape {v.shape}, expected ({n},)")
            setattr(self, c, v)
        self.r_min: np.ndarray
        self._roots = np.flatnonzero(self.parent < 0)
        self._table_depths = np.unique(self.depth[self.has_table])
        self._depth_start = np.searchsorted(self.depth, np.arange(int(self.depth.max()) + 2))
        self._packed = _kernels.pack(
            self.r_min,
            self.r_max,
            self.d_min,
            self.d_max,
            self.child_s,
            self.child_e,
            self.nra,
            self.ndec,
        )

    # ------------------------------------------------------------------ constructors
    @classmethod
    def _from_columns(cls, scheme: Scheme, level: int, cols: Columns, stop: np.ndarray) -> SkyTable:
        n = len(cols.name)
        return cls(
            scheme,
            level,
            r_min=cols.r_min,
            r_max=cols.r_max,
            d_min=cols.d_min,
            d_max=cols.d_max,
            name=cols.name,
            depth=cols.depth,
            parent=cols.parent,
            child_s=cols.child_s,
            child_e=cols.child_e,
            has_table=stop,
            host_id=np.zeros(n),
            backup_id=np.zeros(n),
            host_flags=np.zeros(n),
            nra=cols.nra,
            ndec=cols.ndec,
            hpx_pix=cols.extra.get("pix", np.full(n, -1)),
        )

    @classmethod
    def gsc(cls, level: int = 3, *, density: np.ndarray | None = None) -> SkyTable:
        """The GSC-style partition with tables at depth ``level`` (1..4).

        Parameters
        ----------
        level : int
            Depth of the partitions: 1 bands, 2 large regions, 3 small regions, 4 their 4x4.
        density : numpy.ndarray, optional
            Nested HEALPix map of expected star counts (any nside) choosing the 2x2/3x3/4x4
            split at depth 3; None uses :func:`dvo.skytable.density.default_density`.

        Examples
        --------
        >>> np.bincount(SkyTable.gsc(2).depth).tolist()
        [1, 24, 734]
        """
        from dvo.skytable._gsc import build_gsc
        from dvo.skytable.density import check_density, default_density

        dens = default_density() if density is None else check_density(density)
        cols = build_gsc(level, dens)
        return cls._from_columns(Scheme.GSC, level, cols, cols.depth == level)

    @classmethod
    def healpix(cls, order: int = 7) -> SkyTable:
        """Nested HEALPix pixels of ``order`` (0..9) as partitions; rows for orders 0..order.

        Examples
        --------
        >>> st = SkyTable.healpix(1)
        >>> len(st), len(st.partitions), st.name[12]
        (60, 48, np.str_('Norder=1/Dir=0/Npix=0'))
        """
        from dvo.skytable._healpix import build_healpix

        cols = build_healpix(order)
        return cls._from_columns(Scheme.HEALPIX, order, cols, cols.depth == order)

    @classmethod
    def adaptive(
        cls, density: np.ndarray, max_per_partition: float, *, scheme: Scheme = Scheme.GSC
    ) -> SkyTable:
        """Split boxes (or pixels) until none expects more than ``max_per_partition``.

        The leaves, at several depths, are the partitions; ``level`` is the deepest.

        Examples
        --------
        >>> from dvo.skytable.density import default_density
        >>> st = SkyTable.adaptive(default_density(), 2000.0)
        >>> bool(st.depth[st.partitions].min() < st.level)
        True
        """
        from dvo.skytable._gsc import build_gsc_adaptive
        from dvo.skytable._healpix import build_healpix_adaptive
        from dvo.skytable.density import check_density

        dens = check_density(density)
        scheme = Scheme(scheme)
        build = build_gsc_adaptive if scheme is Scheme.GSC else build_healpix_adaptive
        cols = build(dens, float(max_per_partition))
        leaf = cols.child_e == cols.child_s
        if scheme is Scheme.GSC:
            leaf &= cols.depth >= 2
        return cls._from_columns(scheme, int(cols.depth[leaf].max()), cols, leaf)

    @classmethod
    def read(cls, path: str | Path) -> SkyTable:
        """Read a SkyTable FITS file written by :meth:`write` (validated).

        Raises
        ------
        SkyTableError
            Missing file, not FITS, missing columns, unsafe or duplicate names, bad tree.

        Examples
        --------
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "SkyTable.fits"
        >>> SkyTable.gsc(2).write(path)
        >>> SkyTable.read(path)
        SkyTable(scheme=GSC, level=2, rows=759, partitions=734)
        """
        from dvo.skytable._io import read_skytable

        return read_skytable(cls, path)

    def write(self, path: str | Path) -> None:
        """Write as a FITS binary table (atomically: a temporary file, then a rename).

        See :mod:`dvo.skytable._io` for the columns; :meth:`read` is the inverse.
        """
        from dvo.skytable._io import write_skytable

        write_skytable(self, path)

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.name)

    def __repr__(self) -> str:
        return (
            f"SkyTable(scheme={self.scheme.name}, level={self.level}, rows={len(self)}, "
            f"partitions={int(self.has_table.sum())})"
        )

    @property
    def partitions(self) -> np.ndarray:
        """INDEX of every row that holds a table, sorted.

        Examples
        --------
        >>> SkyTable.gsc(1).partitions[:3].tolist()
        [1, 2, 3]
        """
        return np.flatnonzero(self.has_table).astype(np.int64)

    @property
    def child_count(self) -> np.ndarray:
        """Number of children of each row."""
        return self.child_e - self.child_s

    def _depth_range(self, depth: int) -> tuple[int, int]:
        if depth + 1 >= len(self._depth_start):
            return len(self), len(self)
        return int(self._depth_start[depth]), int(self._depth_start[depth + 1])

    def index_of(self, name: str) -> int:
        """INDEX of the row called ``name``.

        Examples
        --------
        >>> SkyTable.gsc(1).index_of("n0000")
        13
        """
        hit = np.flatnonzero(self.name == name)
        if hit.size != 1:
            raise SkyTableError(f"no partition named {name!r}")
        return int(hit[0])

    def area(self, index) -> np.ndarray:
        """Area in square degrees of rows ``index`` (HEALPix: the exact pixel area).

        Examples
        --------
        >>> st = SkyTable.gsc(3)
        >>> round(float(st.area(st.partitions).sum()), 3)
        41252.961
        """
        index = np.asarray(index, dtype=np.int64)
        if self.scheme is Scheme.HEALPIX:
            return 41252.96124941928 / (12.0 * 4.0 ** self.depth[index].astype(np.float64))
        return box_area(self.r_min[index], self.r_max[index], self.d_min[index], self.d_max[index])

    def centre(self, index) -> tuple[np.ndarray, np.ndarray]:
        """Centre (ra, dec) in degrees of rows ``index`` (box centre; HEALPix pixel centre).

        The box centre is the mid-RA and the Dec halving the box area.

        Examples
        --------
        >>> st = SkyTable.gsc(1)
        >>> [round(float(x[0]), 3) for x in st.centre([st.index_of("n0000")])]
        [180.0, 3.742]
        """
        index = np.asarray(index, dtype=np.int64)
        if self.scheme is Scheme.HEALPIX:
            import healpy as hp

            ra, dec = np.zeros(index.shape), np.zeros(index.shape)
            for k in np.unique(self.depth[index]):
                sel = self.depth[index] == k
                ra[sel], dec[sel] = hp.pix2ang(
                    2 ** int(k), self.hpx_pix[index[sel]], nest=True, lonlat=True
                )
            return ra, dec
        sd = (np.sin(np.radians(self.d_min[index])) + np.sin(np.radians(self.d_max[index]))) / 2
        ra = np.mod((self.r_min[index] + self.r_max[index]) / 2, 360.0)
        return ra, np.degrees(np.arcsin(sd))

    def with_hosts(self, host_id, backup_id, host_flags=None) -> SkyTable:
        """A copy with the host columns replaced (scalars or arrays of ``len(self)``).

        Examples
        --------
        >>> st = SkyTable.gsc(1).with_hosts(2, 3)
        >>> int(st.host_id[5]), int(st.backup_id[5])
        (2, 3)
        """
        n = len(self)
        cols = {c: getattr(self, c) for c in self._COLUMNS}
        for key, value in (
            ("host_id", host_id),
            ("backup_id", backup_id),
            ("host_flags", host_flags),
        ):
            if value is None:
                continue
            v = np.asarray(value)
            if np.any((v < 0) | (v > 255)):
                raise SkyTableError(f"{key} must lie in 0..255")
            cols[key] = np.broadcast_to(v, (n,)).copy()
        return SkyTable(self.scheme, self.level, **cols)

    # ------------------------------------------------------------------ lookups
    def lookup(self, ra, dec, *, level: int | None = None) -> np.ndarray:
        """INDEX of the partition containing each point (or of the node at depth ``level``).

        Vectorised (a numba descent of the box tree for GSC, ``healpy.ang2pix`` for
        HEALPix). In an adaptive table a point whose branch ends above ``level`` gets -1.

        Raises
        ------
        SkyTableError
            NaN/infinite coordinates, Dec outside [-90, 90], or a level not in the table.

        Examples
        --------
        >>> st = SkyTable.gsc(3)
        >>> st.name[st.lookup([0.0, 359.9999, 0.0], [90.0, -90.0, 0.0])].tolist()
        ['n8230/pole.4', 's8230/pole.4', 'n0000/0001']
        """
        ra, dec = _lookup.check_points(ra, dec)
        return _lookup.lookup(self, ra, dec, level)

    def contains(self, index, ra, dec) -> np.ndarray:
        """Whether point i is in row ``index[i]``; equivalent to ``lookup(...) == index``.

        Examples
        --------
        >>> st = SkyTable.gsc(3)
        >>> i = st.index_of("n0000/0001")
        >>> st.contains([i, i], [0.0, 359.99], [0.0, 0.0]).tolist()
        [True, False]
        """
        ra, dec = _lookup.check_points(ra, dec)
        index = np.broadcast_to(np.asarray(index, dtype=np.int64), ra.shape)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise SkyTableError("contains: index out of range")
        return _lookup.contains(self, index, ra, dec)

    def partitions_in(self, region: Region) -> np.ndarray:
        """Sorted INDEX of every partition the region touches (plus a few near its edges).

        GSC: exact on the boxes for cones and boxes (boxes sharing only an edge count as
        touching); polygons may add boxes near their vertices. HEALPix: healpy's inclusive
        queries for cones and polygons, the stored boxes otherwise.

        Examples
        --------
        >>> from dvo.skytable import Box
        >>> st = SkyTable.gsc(3)
        >>> st.name[st.partitions_in(Box(359.0, 1.0, 0.5, 1.0))].tolist()
        ['n0000/0001', 'n0000/0573']
        """
        return _lookup.partitions_in(self, region)

    def near(self, ra, dec, radius_deg) -> tuple[np.ndarray, np.ndarray]:
        """All (point, partition) pairs where the partition comes within ``radius_deg``.

        ``radius_deg`` is a scalar or one radius per point (so this is also a vectorised
        cone-to-partitions lookup). Always includes each point's own partition; sorted by
        point then partition. GSC:
        exact on the boxes. HEALPix: a point within the radius of its pixel's edge gets the
        pixels around it (a superset); radii above a quarter pixel use the stored boxes.

        Examples
        --------
        >>> st = SkyTable.gsc(3)
        >>> pt, part = st.near([7.5, 3.0], [0.0, 3.0], 1 / 3600)
        >>> pt.tolist(), st.name[part].tolist()
        ([0, 0, 0, 0, 1], ['s0000/4703', 's0000/4710', 'n0000/0003', 'n0000/0010', 'n0000/0005'])
        """
        return _lookup.near(self, ra, dec, radius_deg)

    def lookup_near(self, ra, dec, radius_deg) -> tuple[np.ndarray, np.ndarray]:
        """The partition of each point (:meth:`lookup`) and the sorted partitions that any
        point comes within ``radius_deg`` of (the union of :meth:`near`'s), in one pass.

        Examples
        --------
        >>> st = SkyTable.gsc(3)
        >>> own, parts = st.lookup_near([7.5, 3.0], [0.0, 3.0], 1 / 3600)
        >>> st.name[own].tolist()
        ['n0000/0010', 'n0000/0005']
        >>> st.name[parts].tolist()
        ['s0000/4703', 's0000/4710', 'n0000/0003', 'n0000/0005', 'n0000/0010']
        """
        return _lookup.lookup_near(self, ra, dec, radius_deg)
