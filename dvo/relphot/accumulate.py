"""Stream partitions through the kernel: star means, statistics and reduced normal equations.

A pass has two halves, so that it can run where the data is:

- :func:`partition_sums` turns one partition into a small :class:`PartitionSums`: its block
  of the reduced normal equations over the parameter columns it touches (upper triangle,
  non-zeros only), its part of ``b``, residual statistics of the images it touches, and the
  repeatability, residual-map and counter sums. It needs only :class:`PassModel` (the
  image-level indexing) and :class:`PassState` (the current parameters): arrays that can
  travel to a partition host.
- :class:`PassAccumulator` adds the partitions' sums into the image-level arrays, always in
  the order given (the SkyTable order of the partitions), so that a pass gives bitwise the
  same result whether its partitions were summed here or on partition hosts.

:func:`run_pass` does both over a local source of prepared partitions; memory holds one
partition (its local block) plus the image-level arrays: the dense matrix ``S``
(``n_params``^2 doubles), the right-hand side and per-image statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from . import _kernels as kern
from .model import MAP_GRID, Model, Options, Pin, image_index
from .select import MEASURE_COLUMNS, Prepared, prepare

__all__ = [
    "PassResult",
    "PassModel",
    "PassState",
    "PartitionSums",
    "PassAccumulator",
    "partition_sums",
    "read_partition_sums",
    "run_pass",
    "partitions",
    "N_BINS",
    "MAG_LO",
    "BIN_WIDTH",
]

log = logging.getLogger("dvo.relphot")

N_BINS, MAG_LO, BIN_WIDTH = 24, 12.0, 0.5  # repeatability bins (mag)
#: istat columns that add up over partitions, and those that take the maximum (flags)
SUM_COLS = np.array([kern.I_N, kern.I_SW, kern.I_SWR, kern.I_SWR2, kern.I_CHI2])
MAX_COLS = np.array([kern.I_REF, kern.I_GRP])
REP_SHAPE = (2, 3, N_BINS, 3)


@dataclass
class PassResult:
    """What one pass over the database produced."""

    istat: np.ndarray  # (n_images, N_ISTAT) residual statistics at the pass's theta
    rep: np.ndarray  # (all/bright, raw/stored/solved, N_BINS, 3) repeatability sums
    rmap: np.ndarray  # (n_codes * MAP_GRID**2, 2) weighted residual sums per camera cell
    counts: np.ndarray  # stars used, stars rejected, measures clipped, measures used
    S: np.ndarray | None = None  # upper triangle only (see _kernels.upper_nonzeros)
    b: np.ndarray | None = None
    measures: int = 0
    extra: dict = field(default_factory=dict)


@dataclass(frozen=True)
class PassModel:
    """The image-level indexing a pass needs (arrays per chip image, sorted by IMAGE_ID)."""

    options: Options
    image_id: np.ndarray
    nx: np.ndarray
    ny: np.ndarray
    fbase: np.ndarray  # first flat column of the image's photcode (-1 without flat)
    mbase: np.ndarray  # first residual-map cell of the image's photcode
    izcol: np.ndarray  # own zero-point column, -1 where the night model applies
    acol: np.ndarray  # night offset column (-1 without nights)
    kcol: np.ndarray  # night slope column
    xam1: np.ndarray  # AIRMASS - 1
    n_params: int
    n_map: int  # residual-map cells

    @classmethod
    def of(cls, model: Model) -> PassModel:
        """The pass inputs of ``model`` as it stands (its night membership included)."""
        return cls(
            options=model.options,
            image_id=model.image_id,
            nx=model.nx,
            ny=model.ny,
            fbase=model.fbase,
            mbase=model.mbase,
            izcol=model.izcol(),
            acol=model.acol,
            kcol=model.kcol,
            xam1=model.xam1,
            n_params=model.n_params,
            n_map=len(model.flat_codes) * MAP_GRID**2,
        )

    @property
    def n_images(self) -> int:
        """Number of chip images."""
        return len(self.image_id)

    def image_index(self, image_id: np.ndarray) -> np.ndarray:
        """Index of each IMAGE_ID among the chip images (-1 when not a chip image)."""
        return image_index(self.image_id, image_id)


@dataclass(frozen=True)
class PassState:
    """The parameters a pass runs at."""

    theta: np.ndarray  # (n_params,) image-level parameters
    fit: np.ndarray  # (n_images,) bool: images whose measurements enter the fit
    igroup: np.ndarray  # (n_images,) group of every image in the fit, -1 unknown
    robust: bool  # Cauchy weights, clipping and the star chi2/scatter cuts
    accumulate: bool  # also build the reduced normal equations


@dataclass
class PartitionSums:
    """One partition's contribution to a pass (indices into the model's columns/images)."""

    cols: np.ndarray  # (k,) parameter columns touched, increasing
    s_row: np.ndarray  # (nnz,) upper-triangle non-zeros of the local block (row order),
    s_col: np.ndarray  # as positions in ``cols``
    s_val: np.ndarray
    b: np.ndarray  # (k,)
    images: np.ndarray  # (m,) images touched, increasing
    istat: np.ndarray  # (m, N_ISTAT)
    rep: np.ndarray  # REP_SHAPE
    rmap: np.ndarray  # (n_map, 2)
    counts: np.ndarray  # (N_COUNTS,) int64
    measures: int = 0


def kernel_options(model, *, robust: bool, accumulate: bool) -> np.ndarray:
    """The ``opts`` array of :func:`dvo.relphot._kernels.partition_pass`."""
    o = model.options
    opts = np.zeros(kern.N_OPTS)
    opts[kern.O_ROBUST] = float(robust)
    opts[kern.O_CLIP] = o.clip
    opts[kern.O_CAUCHY] = o.cauchy
    opts[kern.O_STAR_CHI2] = o.star_chi2
    opts[kern.O_STAR_SCATTER] = o.star_scatter
    opts[kern.O_BRIGHT_VAR] = o.bright_error**2
    opts[kern.O_MAG_LO] = MAG_LO
    opts[kern.O_BIN_WIDTH] = BIN_WIDTH
    opts[kern.O_ACCUMULATE] = float(accumulate)
    opts[kern.O_USE_REF] = float(o.pin is Pin.REF)
    opts[kern.O_SYS_VAR] = o.sys_error**2
    return opts


def partition_sums(p: Prepared, pm: PassModel, st: PassState) -> PartitionSums:
    """One partition's sums at ``st``, in a block over only the columns and images it touches.

    The columns are renumbered monotonically, so the kernel performs exactly the operations
    it would on the full arrays and the block's entries are bitwise those of one partition.
    """
    on = p.img >= 0
    images = np.unique(p.img[on])
    limg = np.full(len(p.img), -1, np.int64)
    limg[on] = np.searchsorted(images, p.img[on])
    izc, ac, kc = pm.izcol[images], pm.acol[images], pm.kcol[images]
    night = izc < 0
    fcol = p.fcol[p.fcol >= 0]
    cols = np.unique(np.concatenate([izc[~night], ac[night], kc[night], fcol])).astype(np.int64)

    def local(c: np.ndarray, use: np.ndarray) -> np.ndarray:
        return np.where(use, np.searchsorted(cols, c), -1).astype(np.int64)

    k = len(cols)
    S = np.zeros((k, k) if st.accumulate else (1, 1))
    b = np.zeros(k)
    istat = np.zeros((len(images), kern.N_ISTAT))
    rep = np.zeros(REP_SHAPE)
    rmap = np.zeros((pm.n_map, 2))
    counts = np.zeros(kern.N_COUNTS, np.int64)
    opts = kernel_options(pm, robust=st.robust, accumulate=st.accumulate)
    kern.partition_pass(
        p.starts, p.y, p.var, limg, local(p.fcol, p.fcol >= 0), p.mcol, p.zst, p.isref,
        local(izc, ~night), local(ac, night), local(kc, night), pm.xam1[images],
        np.ascontiguousarray(st.fit[images], bool), st.igroup[images], st.theta[cols], opts,
        S, b, istat, rep, rmap, counts,
    )  # fmt: skip
    if st.accumulate:
        r, c, v = kern.upper_nonzeros(S)
    else:  # statistics only: no block travels
        cols, b, v = np.zeros(0, np.int64), np.zeros(0), np.zeros(0)
        r = c = np.zeros(0, np.int64)
    return PartitionSums(cols, r, c, v, b, images, istat, rep, rmap, counts, p.nmeasures)


def read_partition_sums(db, index: int, pm: PassModel, st: PassState) -> PartitionSums | None:
    """Read one partition's Measure columns from ``db`` and sum it (None without measures)."""
    part = db.partition(int(index), kinds=("measure",), columns={"measure": MEASURE_COLUMNS})
    if len(part.measure) == 0:
        return None
    return partition_sums(prepare(part.measure, db.photcodes, pm, db.nsecfilt), pm, st)


class PassAccumulator:
    """Adds partitions' :class:`PartitionSums` into the image-level arrays, in call order."""

    def __init__(self, pm: PassModel, accumulate: bool) -> None:
        n = pm.n_params
        self.accumulate = accumulate
        self.S = np.zeros((n, n)) if accumulate else None
        self.b = np.zeros(n)
        self.istat = np.zeros((pm.n_images, kern.N_ISTAT))
        self.rep = np.zeros(REP_SHAPE)
        self.rmap = np.zeros((pm.n_map, 2))
        self.counts = np.zeros(kern.N_COUNTS, np.int64)
        self.measures = 0

    def add(self, s: PartitionSums | None) -> None:
        """Add one partition (None: a partition without measurements)."""
        if s is None:
            return
        if self.accumulate:
            self.S[s.cols[s.s_row], s.cols[s.s_col]] += s.s_val  # pairs are unique
            self.b[s.cols] += s.b
        rows = s.images[:, None]
        self.istat[rows, SUM_COLS] += s.istat[:, SUM_COLS]
        self.istat[rows, MAX_COLS] = np.maximum(self.istat[rows, MAX_COLS], s.istat[:, MAX_COLS])
        self.rep += s.rep
        self.rmap += s.rmap
        self.counts += s.counts
        self.measures += s.measures

    def result(self) -> PassResult:
        """The pass's image-level arrays."""
        out = PassResult(self.istat, self.rep, self.rmap, self.counts, measures=self.measures)
        if self.accumulate:
            out.S, out.b = self.S, self.b
        return out


def merge_sums(sums: Iterable[PartitionSums | None], pm: PassModel, accumulate: bool) -> PassResult:
    """Add partitions' sums in the order given."""
    acc = PassAccumulator(pm, accumulate)
    for s in sums:
        acc.add(s)
    return acc.result()


def partitions(db, model: Model) -> Iterator[Prepared]:
    """Prepared kernel inputs of every populated partition, one at a time."""
    photcodes, nsec = db.photcodes, db.nsecfilt
    for index in db.populated():
        part = db.partition(int(index), kinds=("measure",), columns={"measure": MEASURE_COLUMNS})
        if len(part.measure):
            yield prepare(part.measure, photcodes, model, nsec)


def run_pass(
    source: Callable[[], Iterator[Prepared]],
    model: Model,
    theta: np.ndarray,
    fit: np.ndarray,
    igroup: np.ndarray,
    *,
    robust: bool,
    accumulate: bool,
) -> PassResult:
    """Run the kernel over every partition at parameters ``theta``.

    Parameters
    ----------
    source : callable
        Returns an iterator of :class:`Prepared` partitions (see :func:`partitions`).
    model : Model
    theta : ndarray
        Current image-level parameters.
    fit : ndarray of bool
        Images whose measurements enter the star means and the normal equations.
    igroup : ndarray of int
        Group of every image in the fit (-1 unknown); images outside learn theirs from stars.
    robust : bool
        Use Cauchy weights, clipping and the star chi2/scatter cuts.
    accumulate : bool
        Also build the reduced normal equations ``S``, ``b``.
    """
    pm = PassModel.of(model)
    st = PassState(np.asarray(theta, np.float64), np.asarray(fit, bool),
                   np.asarray(igroup, np.int64), robust, accumulate)  # fmt: skip
    return merge_sums((partition_sums(p, pm, st) for p in source()), pm, accumulate)
