"""relphot's partition tasks for partition hosts: a pass, and the first phase of the write.

- :class:`PassTask` (``relphot_pass``): one partition's :class:`PartitionSums` at the
  current parameters. The request carries the image-level indexing (:class:`PassModel`) and
  the parameters (:class:`PassState`) as arrays; the worker reads its copy of the partition,
  runs the same kernel as a local pass and sends back only the sums (a block of the normal
  equations over the columns the partition touches, per-image statistics, counters).
- :class:`PrepareTask` (``relphot_prepare``): the partition rewritten with the solution
  (:class:`~dvo.relphot.apply.ApplyModel`) and staged on the host
  (:func:`dvo.hosts.twophase.stage_partition`); back come its statistics row and checksums.

Both validate every array before a kernel sees it (``from_request``, on the worker) and
every summary before it is summed (``decode``, here): lengths, index ranges, ordering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dvo.hosts import wire
from dvo.hosts.protocol import pack_array, unpack_array
from dvo.hosts.wire import count, finite, in_range, increasing, length, require

from . import _kernels as kern
from .accumulate import (
    REP_SHAPE,
    PartitionSums,
    PassModel,
    PassState,
    read_partition_sums,
)
from .apply import ApplyModel, rewrite_partition
from .model import MAP_GRID, Options

if TYPE_CHECKING:
    from dvo.hosts.twophase import Prepared

__all__ = ["PassTask", "PrepareTask"]

I8, F8, U1 = "<i8", "<f8", "|u1"
MAX_MAP = 1 << 24


def _model_to_wire(pm: PassModel) -> dict:
    arrays = {k: pack_array(getattr(pm, k)) for k in _MODEL_ARRAYS}
    return {"options": wire.dataclass_to_wire(pm.options), "arrays": arrays,
            "n_params": pm.n_params, "n_map": pm.n_map}  # fmt: skip


_MODEL_ARRAYS = {"image_id": I8, "nx": F8, "ny": F8, "fbase": I8, "mbase": I8, "izcol": I8,
                 "acol": I8, "kcol": I8, "xam1": F8}  # fmt: skip


def _model_from_wire(data) -> PassModel:
    require(isinstance(data, dict), "model must be an object")
    options = wire.dataclass_from_wire(Options, data.get("options"))
    arrays = data.get("arrays")
    require(isinstance(arrays, dict) and set(arrays) == set(_MODEL_ARRAYS), "model arrays")
    a = {k: unpack_array(arrays[k], t, k) for k, t in _MODEL_ARRAYS.items()}
    n = len(a["image_id"])
    n_params = count(data.get("n_params"), "n_params", options.max_params + 1)
    n_map = count(data.get("n_map"), "n_map", MAX_MAP)
    for k, v in a.items():
        length(v, k, n)
    increasing(a["image_id"], "image_id", 0, 1 << 62)
    for k in ("izcol", "acol", "kcol"):
        in_range(a[k], k, -1, n_params)
    night = a["izcol"] < 0
    require(bool(np.all(a["acol"][night] >= 0) & np.all(a["kcol"][night] >= 0)), "night columns")
    if options.flat:
        in_range(a["fbase"], "fbase", 0, n_params - options.flat_grid**2 + 1)
    in_range(a["mbase"], "mbase", 0, n_map - MAP_GRID**2 + 1)
    for k in ("nx", "ny"):
        require(bool(np.all(finite(a[k], k) >= 1.0)), f"{k} below 1")
    finite(a["xam1"], "xam1")
    return PassModel(options=options, n_params=n_params, n_map=n_map, **a)


def _state_to_wire(st: PassState) -> dict:
    return {"theta": pack_array(st.theta), "fit": pack_array(st.fit.astype(np.uint8)),
            "igroup": pack_array(st.igroup), "robust": bool(st.robust),
            "accumulate": bool(st.accumulate)}  # fmt: skip


def _state_from_wire(data, pm: PassModel) -> PassState:
    require(isinstance(data, dict), "state must be an object")
    theta = finite(
        length(unpack_array(data.get("theta"), F8, "theta"), "theta", pm.n_params), "theta"
    )
    fit = length(unpack_array(data.get("fit"), U1, "fit"), "fit", pm.n_images) != 0
    igroup = in_range(length(unpack_array(data.get("igroup"), I8, "igroup"), "igroup", pm.n_images),
                      "igroup", -1, 1 << 40)  # fmt: skip
    robust, acc = data.get("robust"), data.get("accumulate")
    require(isinstance(robust, bool) and isinstance(acc, bool), "robust/accumulate")
    return PassState(theta, fit, igroup, robust, acc)


@dataclass(frozen=True)
class PassTask:
    """One relphot pass over one partition, wherever it lives (``task(catdir, index)`` here)."""

    pm: PassModel
    st: PassState
    db: object = field(default=None, compare=False, repr=False)  # the local database

    op = "relphot_pass"
    reply = "arrays"
    expect = {"cols": (I8, 1), "s_row": (I8, 1), "s_col": (I8, 1), "s_val": (F8, 1),
              "b": (F8, 1), "images": (I8, 1), "istat": (F8, 2), "rep": (F8, 4),
              "rmap": (F8, 2), "counts": (I8, 1)}  # fmt: skip

    def params(self) -> dict:
        """The request parameters (arrays packed)."""
        return {"model": _model_to_wire(self.pm), "state": _state_to_wire(self.st)}

    @classmethod
    def from_request(cls, req: dict) -> PassTask:
        """The task a worker received, every array checked."""
        pm = _model_from_wire(req.get("model"))
        return cls(pm, _state_from_wire(req.get("state"), pm))

    def __call__(self, catdir: str, index: int) -> PartitionSums | None:
        """The sums of a partition held here."""
        from dvo.database import open_database

        db = self.db if self.db is not None else open_database(catdir)
        return read_partition_sums(db, index, self.pm, self.st)

    def remote(self, db, index: int, stage=None):
        """On the worker: ``(meta, arrays)`` of one partition, or None without measures."""
        s = read_partition_sums(db, index, self.pm, self.st)
        if s is None:
            return None
        arrays = {k: getattr(s, k) for k in self.expect if k != "counts"}
        arrays["counts"] = s.counts
        return {"measures": int(s.measures)}, arrays

    def decode(self, index: int, meta: dict, a: dict) -> PartitionSums:
        """A worker's summary, checked before it is summed."""
        pm = self.pm
        cols = increasing(a["cols"], "cols", 0, pm.n_params)
        k = len(cols)
        nnz = len(a["s_val"])
        length(a["s_row"], "s_row", nnz)
        length(a["s_col"], "s_col", nnz)
        in_range(a["s_row"], "s_row", 0, k)
        in_range(a["s_col"], "s_col", 0, k)
        require(bool(np.all(a["s_row"] <= a["s_col"])), "s_row above s_col")
        increasing(a["s_row"] * k + a["s_col"], "block entries", 0, max(k * k, 1))
        length(a["b"], "b", k)
        require(self.st.accumulate or (k == 0 and nnz == 0), "normal equations not asked for")
        images = increasing(a["images"], "images", 0, pm.n_images)
        require(a["istat"].shape == (len(images), kern.N_ISTAT), "istat shape")
        require(a["rep"].shape == REP_SHAPE, "rep shape")
        require(a["rmap"].shape == (pm.n_map, 2), "rmap shape")
        require(a["counts"].shape == (kern.N_COUNTS,), "counts shape")
        in_range(a["counts"], "counts", 0, 1 << 62)
        measures = count(meta.get("measures"), "measures")
        return PartitionSums(cols, a["s_row"], a["s_col"], a["s_val"], a["b"], images,
                             a["istat"], a["rep"], a["rmap"], a["counts"], measures)  # fmt: skip


# ------------------------------------------------------------------------------ the write
_APPLY_ARRAYS = {"image_id": I8, "calibrated": U1, "mcal": F8, "nx": F8, "ny": F8,
                 "fbase": I8, "theta": F8}  # fmt: skip


@dataclass(frozen=True)
class PrepareTask:
    """Rewrite one partition with a solution and stage it on its host (phase 1)."""

    am: ApplyModel
    nsecfilt: int = 0  # the client's, to check the statistics row it gets back
    names: object = field(default=None, compare=False, repr=False)  # client: SkyTable names

    op = "relphot_prepare"
    reply = "arrays"
    stages = True

    @property
    def expect(self) -> dict:
        """The arrays of a reply: the statistics row."""
        from dvo.hosts.twophase import stats_expect

        return stats_expect(self.nsecfilt)

    def params(self) -> dict:
        """The request parameters (arrays packed)."""
        am = self.am
        arrays = {k: pack_array(getattr(am, k)) for k in _APPLY_ARRAYS}
        arrays["calibrated"] = pack_array(am.calibrated.astype(np.uint8))
        return {"apply": {"arrays": arrays, "flat": am.flat, "flat_grid": am.flat_grid}}

    @classmethod
    def from_request(cls, req: dict) -> PrepareTask:
        """The task a worker received, every array checked."""
        data = req.get("apply")
        require(isinstance(data, dict) and isinstance(data.get("arrays"), dict), "apply")
        arrays = data["arrays"]
        require(set(arrays) == set(_APPLY_ARRAYS), "apply arrays")
        a = {k: unpack_array(arrays[k], t, k) for k, t in _APPLY_ARRAYS.items()}
        n = len(a["image_id"])
        for k in ("calibrated", "mcal", "nx", "ny", "fbase"):
            length(a[k], k, n)
        increasing(a["image_id"], "image_id", 0, 1 << 62)
        flat, grid = data.get("flat"), count(data.get("flat_grid"), "flat_grid", 65)
        require(isinstance(flat, bool) and grid >= 1, "flat settings")
        cal = a["calibrated"] != 0
        if flat:
            in_range(a["fbase"][cal], "fbase", 0, len(a["theta"]) - grid**2 + 1)
        for k in ("mcal", "theta"):
            finite(a[k], k)
        for k in ("nx", "ny"):
            require(bool(np.all(finite(a[k], k) >= 1.0)), f"{k} below 1")
        am = ApplyModel(a["image_id"], cal, a["mcal"], a["nx"], a["ny"], a["fbase"], a["theta"],
                        flat, grid)  # fmt: skip
        return cls(am)

    def remote(self, db, index: int, stage):
        """On the worker: rewrite and stage one partition; its summary."""
        from dvo.hosts.twophase import stage_partition

        def rewrite(part):
            return rewrite_partition(part, self.am, db.photcodes), {}, {}

        return stage_partition(db, index, stage, rewrite)

    def decode(self, index: int, meta: dict, a: dict) -> Prepared:
        """A host's report, checked."""
        from dvo.hosts.twophase import Prepared, stats_from_arrays

        stats = stats_from_arrays(a, self.nsecfilt, index)
        return Prepared(stats, wire.files_from_wire(meta.get("files"), str(self.names[index])))


def host_runner(db, executor):
    """A :data:`~dvo.relphot.run.Runner` that sums each pushed partition on its host.

    Partitions held here are summed here; all are merged in SkyTable order, so the pass is
    bitwise the local one. ``executor`` is a :class:`~dvo.hosts.executor.HostExecutor`.
    """
    from .accumulate import merge_sums

    indices = [int(i) for i in db.populated()]

    def run(pm: PassModel, st: PassState):
        task = PassTask(pm, st, db)
        sums = (s for _, s in executor.map(str(db.catdir), indices, task))
        return merge_sums(sums, pm, st.accumulate)

    return run
