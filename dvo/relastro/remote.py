"""relastro's partition tasks for partition hosts: a pass (or the final pass), and the write.

- :class:`PassTask` (``relastro_pass``): one partition's :class:`~dvo.relastro.partials.ChipSums`
  at the current chip corrections (and, with ``final``, the report sums and model counts).
  The request carries the chip table (WCS, sizes, Earth positions, camera slots), the
  reference photcodes, the corrections and error scales as arrays, and the object options;
  the worker builds the partition's working set from its copy (kept for the worker's
  session in a private temporary folder, keyed by those inputs and the partition's file
  stamps) and sends back only the sums.
- :class:`PrepareTask` (``relastro_prepare``): the final pass over one partition plus its
  rewrite (:func:`dvo.relastro.apply.update_partition`), staged on the host
  (:func:`dvo.hosts.twophase.stage_partition`).

Working sets go through the same save/load round trip here and on the hosts, so the values
the kernels see are bitwise the same.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dvo.hosts import wire
from dvo.hosts.protocol import pack_array, unpack_array
from dvo.hosts.wire import count, finite, in_range, increasing, length, require

from . import workset
from ._kernels import NTERM_MAX
from .objects import ObjectOptions
from .partials import ChipSums, FinalSums, final_partition, pass_partition, workset_counts
from .report import CELLS, MAG_BINS, SLOTS, ReportSums

__all__ = ["PassTask", "PrepareTask", "WorksetCache", "Prepared", "chip_inputs"]

I8, F8 = "<i8", "<f8"
NCELL = SLOTS * CELLS * CELLS
NMAG = len(MAG_BINS) - 1
_CHIP_ARRAYS = {"image_id": (I8, 1), "crval": (F8, 2), "crpix": (F8, 2), "cd": (F8, 3),
                "nx": (F8, 1), "ny": (F8, 1), "earth": (F8, 2), "slot": (I8, 1)}  # fmt: skip
_CHIP_EXPECT = {"chips": (I8, 1), "ata": (F8, 4), "atb": (F8, 3), "nstar": (I8, 1),
                "chi2": (F8, 1), "nres": (I8, 1), "sum2": (F8, 2)}  # fmt: skip
_REPORT_EXPECT = {"field": (F8, 3), "nfield": (F8, 1), "mag2": (F8, 2), "nmag": (F8, 1),
                  "tot": (F8, 2), "ntot": (F8, 1), "models": (I8, 1)}  # fmt: skip
_REPORT_SHAPES = {"field": (2, 2, NCELL), "nfield": (NCELL,), "mag2": (2, NMAG), "nmag": (NMAG,),
                  "tot": (2, 2), "ntot": (2,), "models": (3,)}  # fmt: skip


@dataclass(frozen=True)
class ChipInputs:
    """The chip table a working set is built with, plus each chip's camera slot."""

    chips: workset.ChipTable
    slot: np.ndarray
    ref_codes: np.ndarray

    def to_wire(self) -> dict:
        """The request form (arrays packed)."""
        c = self.chips
        arrays = {k: pack_array(getattr(c, k)) for k in _CHIP_ARRAYS if k != "slot"}
        arrays["slot"] = pack_array(self.slot)
        return {"arrays": arrays, "ref_codes": pack_array(self.ref_codes)}

    @classmethod
    def from_wire(cls, data) -> ChipInputs:
        """Checked chip inputs from a request."""
        require(isinstance(data, dict) and isinstance(data.get("arrays"), dict), "chips")
        arrays = data["arrays"]
        require(set(arrays) == set(_CHIP_ARRAYS), "chip arrays")
        a = {k: unpack_array(arrays[k], t, k, ndim=nd) for k, (t, nd) in _CHIP_ARRAYS.items()}
        n = len(a["image_id"])
        shapes = {"crval": (n, 2), "crpix": (n, 2), "cd": (n, 2, 2), "earth": (n, 3)}
        for k, shape in shapes.items():
            require(a[k].shape == shape, f"{k} shape")
        for k in ("nx", "ny", "slot"):
            length(a[k], k, n)
        increasing(a["image_id"], "image_id", 0, 1 << 62)
        for k in ("crval", "crpix", "cd"):
            finite(a[k], k)
        for k in ("nx", "ny"):
            require(bool(np.all(finite(a[k], k) > 1.0)), f"{k} not above 1")
        in_range(a["slot"], "slot", 0, SLOTS)
        refs = unpack_array(data.get("ref_codes"), I8, "ref_codes")
        require(len(refs) <= 64, "too many reference photcodes")
        chips = workset.ChipTable(
            image_id=a["image_id"], row=np.arange(n), photcode=np.zeros(n, np.int64),
            crval=a["crval"], crpix=a["crpix"], cd=a["cd"], nx=a["nx"], ny=a["ny"],
            earth=a["earth"], center=np.zeros((n, 2)),
        )  # fmt: skip
        return cls(chips, a["slot"], refs)

    def key(self) -> str:
        """A digest naming the working sets built from these inputs."""
        text = json.dumps(self.to_wire(), sort_keys=True).encode()
        return hashlib.sha256(text).hexdigest()[:24]


def chip_inputs(chips: workset.ChipTable, photcodes, ref_codes) -> ChipInputs:
    """The chip inputs of a run (camera slots from the photcode names)."""
    from .report import chip_slots

    return ChipInputs(chips, chip_slots(chips, photcodes), np.asarray(ref_codes, np.int64))


class WorksetCache:
    """Working sets of one run's partitions, built once and kept in a scratch folder.

    A working set is read back from its file every time (also right after it is built), so
    every pass, here or on a host, sees the same float64 values.
    """

    def __init__(self, folder: Path, inputs: ChipInputs) -> None:
        self.folder, self.inputs, self.key = Path(folder), inputs, inputs.key()

    def get(self, db, index: int, part=None) -> dict | None:
        """The working set of partition ``index`` (None when it has no usable measure)."""
        from dvo.hosts.manifest import file_stamps

        name = str(db.skytable.name[index])
        stamp = hashlib.sha256(json.dumps(file_stamps(db.catdir, name)).encode()).hexdigest()
        path = self.folder / f"{self.key}-{index}-{stamp[:16]}.npz"
        none = path.with_suffix(".none")
        if none.exists():
            return None
        if not path.exists():
            if part is None:
                cols = {"measure": workset.MEASURE_COLUMNS, "average": workset.AVERAGE_COLUMNS}
                part = db.partition(int(index), kinds=("average", "measure"), columns=cols)
            ws = workset.build(part, self.inputs.chips, db.photcodes, self.inputs.ref_codes)
            if ws is None:
                none.touch()
                return None
            workset.save(ws, path)
        return workset.load(path)


_WORKER_SCRATCH: list = []  # the worker process's scratch folder (removed at exit)


def _worker_cache(inputs: ChipInputs) -> WorksetCache:
    if not _WORKER_SCRATCH:
        _WORKER_SCRATCH.append(tempfile.TemporaryDirectory(prefix="dvo-relastro-"))
    return WorksetCache(Path(_WORKER_SCRATCH[0].name), inputs)


def _options_from_wire(data) -> ObjectOptions:
    opts = wire.dataclass_from_wire(ObjectOptions, data)
    require(1 <= opts.npass <= 100 and opts.nsigma >= 0, "object options out of range")
    return opts


def _chip_arrays(s: ChipSums) -> dict:
    return {k: getattr(s, k) for k in _CHIP_EXPECT}


def _decode_chips(a: dict, nchip: int) -> ChipSums:
    chips = increasing(a["chips"], "chips", 0, nchip)
    nc = len(chips)
    shapes = {"ata": (nc, 2, NTERM_MAX, NTERM_MAX), "atb": (nc, 2, NTERM_MAX), "nstar": (nc,),
              "chi2": (nc,), "nres": (nc,), "sum2": (nc, 2)}  # fmt: skip
    for k, shape in shapes.items():
        require(a[k].shape == shape, f"{k} shape")
    in_range(a["nstar"], "nstar", 0, 1 << 62)
    in_range(a["nres"], "nres", 0, 1 << 62)
    return ChipSums(**{k: a[k] for k in _CHIP_EXPECT})


def _final_arrays(fs: FinalSums) -> dict:
    r = fs.report
    return {**_chip_arrays(fs.chips), "field": r.field, "nfield": r.nfield, "mag2": r.mag2,
            "nmag": r.nmag, "tot": r.tot, "ntot": r.ntot, "models": fs.models}  # fmt: skip


def _decode_final(a: dict, nchip: int) -> FinalSums:
    for k, shape in _REPORT_SHAPES.items():
        require(a[k].shape == shape, f"{k} shape")
    in_range(a["models"], "models", 0, 1 << 62)
    report = ReportSums(a["field"], a["nfield"], a["mag2"], a["nmag"], a["tot"], a["ntot"])
    return FinalSums(_decode_chips(a, nchip), report, a["models"])


@dataclass
class Counts:
    """Working-set counts of one partition."""

    measures: int
    objects: int
    refs: int

    @classmethod
    def from_meta(cls, meta: dict) -> Counts:
        """Checked counts from a summary's meta."""
        return cls(count(meta.get("measures"), "measures"), count(meta.get("objects"), "objects"),
                   count(meta.get("refs"), "refs"))  # fmt: skip


@dataclass
class PassResult:
    """One partition's pass: its chip sums (or final sums) and working-set counts."""

    sums: ChipSums | FinalSums
    counts: Counts


@dataclass(frozen=True)
class PassTask:
    """One relastro pass over one partition, wherever it lives (``task(catdir, index)`` here)."""

    inputs: ChipInputs
    coeff: np.ndarray  # (n, 2, NTERM_MAX) arcsec
    scale: np.ndarray  # (n,)
    opts: ObjectOptions
    clip: bool
    final: bool = False
    cache: WorksetCache | None = field(default=None, compare=False, repr=False)  # local
    db: object = field(default=None, compare=False, repr=False)

    op = "relastro_pass"
    reply = "arrays"

    @property
    def expect(self) -> dict:
        """The arrays of a reply."""
        return {**_CHIP_EXPECT, **(_REPORT_EXPECT if self.final else {})}

    def params(self) -> dict:
        """The request parameters (arrays packed)."""
        return {"chips": self.inputs.to_wire(), "coeff": pack_array(self.coeff),
                "scale": pack_array(self.scale), "options": wire.dataclass_to_wire(self.opts),
                "clip": bool(self.clip), "final": bool(self.final)}  # fmt: skip

    @classmethod
    def _parts(cls, req: dict) -> dict:
        inputs = ChipInputs.from_wire(req.get("chips"))
        n = len(inputs.chips)
        coeff = finite(unpack_array(req.get("coeff"), F8, "coeff", ndim=3), "coeff")
        require(coeff.shape == (n, 2, NTERM_MAX), "coeff shape")
        scale = finite(length(unpack_array(req.get("scale"), F8, "scale"), "scale", n), "scale")
        require(bool(np.all(scale > 0)), "scale not positive")
        clip, final = req.get("clip"), req.get("final")
        require(isinstance(clip, bool) and isinstance(final, bool), "clip/final")
        opts = _options_from_wire(req.get("options"))
        return {"inputs": inputs, "coeff": coeff, "scale": scale, "opts": opts, "clip": clip,
                "final": final}  # fmt: skip

    @classmethod
    def from_request(cls, req: dict) -> PassTask:
        """The task a worker received, every array checked."""
        parts = cls._parts(req)
        return cls(**parts, cache=_worker_cache(parts["inputs"]))

    def run(self, db, index: int, part=None):
        """``(sums, counts, ws, fit, chi2s, used)`` of one partition (sums None without a
        working set)."""
        ws = self.cache.get(db, index, part)
        counts = Counts(*workset_counts(ws))
        if ws is None:
            return None, counts, None, None, {}, None
        coeff, scale, opts = self.coeff, self.scale, self.opts
        if not self.final:
            return pass_partition(ws, coeff, scale, opts, self.clip), counts, ws, None, {}, None
        fs, f, chi2s, used = final_partition(ws, coeff, scale, opts, self.inputs.slot)
        return fs, counts, ws, f, chi2s, used

    def __call__(self, catdir: str, index: int) -> PassResult | None:
        """A partition held here."""
        from dvo.database import open_database

        db = self.db if self.db is not None else open_database(catdir)
        sums, counts, *_ = self.run(db, index)
        return None if sums is None else PassResult(sums, counts)

    def remote(self, db, index: int, stage=None):
        """On the worker: ``(meta, arrays)`` of one partition, or None without a working set."""
        sums, counts, *_ = self.run(db, index)
        if sums is None:
            return None
        arrays = _final_arrays(sums) if self.final else _chip_arrays(sums)
        return vars(counts), arrays

    def decode(self, index: int, meta: dict, a: dict) -> PassResult:
        """A worker's summary, checked."""
        n = len(self.inputs.chips)
        sums = _decode_final(a, n) if self.final else _decode_chips(a, n)
        return PassResult(sums, Counts.from_meta(meta))


@dataclass
class Prepared:
    """What a host reports for one prepared partition."""

    sums: FinalSums | None  # None: the partition had no working set
    counts: Counts
    stats: np.ndarray
    files: dict


@dataclass(frozen=True)
class PrepareTask:
    """The final pass over one partition, its rewrite, staged on its host (phase 1)."""

    pass_task: PassTask  # with final=True
    nsecfilt: int = 0
    names: object = field(default=None, compare=False, repr=False)  # client: SkyTable names

    op = "relastro_prepare"
    reply = "arrays"
    stages = True

    @property
    def expect(self) -> dict:
        """The final pass's arrays, then the statistics row."""
        from dvo.hosts.twophase import stats_expect

        return {**self.pass_task.expect, **stats_expect(self.nsecfilt)}

    def params(self) -> dict:
        """The request parameters: the final pass's."""
        return self.pass_task.params()

    @classmethod
    def from_request(cls, req: dict) -> PrepareTask:
        """The task a worker received, every array checked."""
        parts = PassTask._parts(req)
        require(parts["final"], "prepare needs the final pass")
        return cls(PassTask(**parts, cache=_worker_cache(parts["inputs"])))

    def rewrite(self, db, index: int, part):
        """The rewritten partition, the summary meta and arrays (the final pass's)."""
        from .apply import update_partition

        t = self.pass_task
        fs, counts, ws, f, chi2s, used = t.run(db, index, part)
        new = update_partition(part, ws, f, chi2s, used, t.inputs.chips, t.coeff, db.photcodes)
        if fs is None:  # no working set: empty sums, flagged
            fs = FinalSums(ChipSums.empty(), ReportSums.zeros(), np.zeros(3, np.int64))
            return new, {**vars(counts), "has_ws": False}, _final_arrays(fs)
        return new, {**vars(counts), "has_ws": True}, _final_arrays(fs)

    def remote(self, db, index: int, stage):
        """On the worker: final pass, rewrite and stage one partition; its summary."""
        from dvo.hosts.twophase import stage_partition

        return stage_partition(db, index, stage, lambda part: self.rewrite(db, index, part))

    def decode(self, index: int, meta: dict, a: dict) -> Prepared:
        """A host's report, checked."""
        from dvo.hosts.twophase import stats_from_arrays

        stats = stats_from_arrays(a, self.nsecfilt, index)
        has_ws = meta.get("has_ws")
        require(isinstance(has_ws, bool), "has_ws")
        sums = _decode_final(a, len(self.pass_task.inputs.chips)) if has_ws else None
        files = wire.files_from_wire(meta.get("files"), str(self.names[index]))
        return Prepared(sums, Counts.from_meta(meta), stats, files)
