"""Photcodes: where a measurement came from (camera, filter, detector), and its zero point.

A database keeps one :class:`Photcodes` table. SEC codes are the average filters (one SecFilt
slot each, in table order), DEP codes are detectors whose measurements map to one SEC code via
``EQUIV``, REF codes hold external catalogue values. The default table follows the IPP
``dvo.photcodes`` file: SEC 1-9 (g r i z y J H K w), GPC1 chips ``10000 + 100 f + XY`` and a few
REF codes for external catalogues.
"""

from __future__ import annotations

import enum
from pathlib import Path

import numpy as np

from dvo import gpc1
from dvo.errors import SchemaError
from dvo.schema import PHOTCODE

__all__ = ["PhotType", "Photcodes", "default_photcodes", "read_photcode_text", "SEC_NAMES"]

#: The default SEC (average) filters, code = position + 1.
SEC_NAMES = ("g", "r", "i", "z", "y", "J", "H", "K", "w")

#: Default REF codes: one per SEC filter (2000 + SEC code) and an astrometric reference.
REF_BASE = 2000
GAIA_CODE = 2100

#: GPC1 chip masks from the IPP photcode file.
_PHOTOM_POOR = 0xE0440130
_PHOTOM_BAD = 0x1003BC88


class PhotType(enum.IntEnum):
    """Photcode types as stored in the TYPE column (DVO values)."""

    SEC = 2
    DEP = 3
    REF = 4


class Photcodes:
    """A photcode table with vectorised lookups by code.

    Parameters
    ----------
    table : numpy structured array with the PHOTCODE schema.
    """

    def __init__(self, table: np.ndarray) -> None:
        self.table = PHOTCODE.conform(table, what="photcode table")
        codes = self.table["CODE"].astype(np.int64)
        if len(np.unique(codes)) != len(codes) or (codes == 0).any():
            raise SchemaError("photcode table: codes must be unique and non-zero")
        self._row = np.full(65536, -1, np.int32)
        self._row[codes] = np.arange(len(codes))
        sec = np.flatnonzero(self.table["TYPE"] == PhotType.SEC)
        self.sec_codes = codes[sec]
        slot_of_code = np.full(65536, -1, np.int16)
        slot_of_code[self.sec_codes] = np.arange(len(sec))
        equiv = self.table["EQUIV"].astype(np.int64)
        ok = (equiv > 0) & (equiv < 65536)
        slots = np.full(len(codes), -1, np.int16)
        slots[ok] = slot_of_code[equiv[ok]]
        slots[sec] = np.arange(len(sec))
        self._slot = np.full(65536, -1, np.int16)
        self._slot[codes] = slots
        self._by_code: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.table)

    @property
    def nsecfilt(self) -> int:
        """Number of average filters (SecFilt rows per object)."""
        return len(self.sec_codes)

    @property
    def sec_names(self) -> list[str]:
        """Names of the average filters in SecFilt order."""
        return [self.name(c) for c in self.sec_codes]

    def rows(self, codes: np.ndarray) -> np.ndarray:
        """Table row of each code; raises SchemaError naming any unknown code."""
        codes = np.asarray(codes, np.int64)
        bad = (codes <= 0) | (codes >= 65536)
        rows = np.where(bad, -1, self._row[np.clip(codes, 0, 65535)])
        if (rows < 0).any():
            raise SchemaError(f"unknown photcode {int(codes[rows < 0][0])}")
        return rows

    def known(self, codes: np.ndarray) -> np.ndarray:
        """Whether each code is in the table."""
        codes = np.asarray(codes, np.int64)
        inside = (codes > 0) & (codes < 65536)
        return inside & (self._row[np.clip(codes, 0, 65535)] >= 0)

    def column(self, name: str, codes: np.ndarray) -> np.ndarray:
        """A column of the table for each code (e.g. ``"C_LAM"``, ``"K"``, ``"TYPE"``)."""
        return self.table[name][self.rows(codes)]

    def by_code(self, name: str) -> np.ndarray:
        """A column of the table as an array indexed by code (65536 entries; unknown codes
        hold zero), for numba kernels that look codes up themselves."""
        if name not in self._by_code:
            known = self._row >= 0
            out = np.zeros(65536, self.table.dtype[name])
            out[known] = self.table[name][self._row[known]]
            self._by_code[name] = out
        return self._by_code[name]

    @property
    def slot_by_code(self) -> np.ndarray:
        """:meth:`sec_slot` as an array indexed by code (-1: no slot, or an unknown code)."""
        return self._slot

    def sec_slot(self, codes: np.ndarray) -> np.ndarray:
        """SecFilt slot (0..Nsecfilt-1) each code averages into, -1 for none."""
        self.rows(codes)
        return self._slot[np.asarray(codes, np.int64)]

    def code(self, name: str) -> int:
        """The code of a photcode name (e.g. ``GPC1.g.XY01``); SchemaError if unknown."""
        hit = np.flatnonzero(self.table["NAME"] == name.encode())
        if len(hit) != 1:
            raise SchemaError(f"unknown photcode {name!r}")
        return int(self.table["CODE"][hit[0]])

    def name(self, code: int) -> str:
        """The name of a photcode."""
        return self.table["NAME"][self.rows([code])[0]].decode()

    def type(self, code: int) -> PhotType:
        """The type of a photcode."""
        return PhotType(int(self.table["TYPE"][self.rows([code])[0]]))


def _rows(entries: list[tuple]) -> np.ndarray:
    """Build PHOTCODE rows from (code, name, type, zero, k, equiv) tuples."""
    out = PHOTCODE.empty(len(entries))
    out["X"] = 0.0
    for field in ("ASTROM_ERR_SYS", "ASTROM_ERR_SCALE", "ASTROM_ERR_MAG_SCALE", "PHOTOM_ERR_SYS"):
        out[field] = 0.0
    codes, names, types, zeros, ks, equivs = zip(*entries, strict=True)
    out["CODE"], out["NAME"], out["TYPE"] = codes, names, types
    out["C_LAM"] = np.round(np.array(zeros) * 1000).astype(np.int16)
    out["K"], out["EQUIV"] = ks, equivs
    return out


def default_photcodes(filters: tuple[str, ...] | list[str] = SEC_NAMES) -> Photcodes:
    """The default table: SEC filters, GPC1 chips, REF codes, restricted to ``filters``.

    Examples
    --------
    >>> pc = default_photcodes()
    >>> pc.name(10123), pc.nsecfilt, int(pc.sec_slot([10123])[0])
    ('GPC1.r.XY23', 9, 1)
    """
    unknown = [f for f in filters if f not in SEC_NAMES]
    if unknown or not filters:
        raise SchemaError(f"unknown filters {unknown}; choose from {','.join(SEC_NAMES)}")
    sec = [(SEC_NAMES.index(f) + 1, f, PhotType.SEC, 0.0, 0.0, 0) for f in filters]
    dep = []
    for fname, facts in gpc1.FILTERS.items():
        if fname not in filters:
            continue
        for x, y in gpc1.CHIPS:
            code = gpc1.chip_code(fname, x, y)
            dep.append(
                (
                    code,
                    f"GPC1.{fname}.XY{x}{y}",
                    PhotType.DEP,
                    facts.zero_point,
                    facts.k,
                    facts.sec_code,
                )
            )
    ref = [(REF_BASE + c, f"REF.{f}", PhotType.REF, 0.0, 0.0, c) for c, f, *_ in sec]
    ref.append((GAIA_CODE, "GAIA", PhotType.REF, 0.0, 0.0, 0))
    table = _rows(sec + dep + ref)
    is_gpc1 = table["TYPE"] == PhotType.DEP
    table["ASTROM_ERR_SYS"][is_gpc1] = 0.015
    table["ASTROM_ERR_MAG_SCALE"][is_gpc1] = 1.0
    table["PHOTOM_POOR_MASK"][is_gpc1] = _PHOTOM_POOR
    table["PHOTOM_BAD_MASK"][is_gpc1] = _PHOTOM_BAD
    return Photcodes(table)


_TYPES = {"sec": PhotType.SEC, "pri": PhotType.SEC, "dep": PhotType.DEP, "ref": PhotType.REF}


def read_photcode_text(path: str | Path) -> Photcodes:
    """Read a DVO text photcode file (``code name type zero K offset c1 c2 X Xzero equiv ...``).

    ``-`` means 0; ``equiv`` may be a code or a name. Raises SchemaError naming the file and
    line for anything malformed.
    """
    entries, pending = [], []
    for lineno, raw in enumerate(Path(path).read_text().splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) < 11:
            raise SchemaError(f"{path}:{lineno}: expected at least 11 fields, got {len(words)}")
        try:
            code, name = int(words[0]), words[1]
            ptype = _TYPES[words[2].lower()]
            zero, k = (0.0 if w == "-" else float(w) for w in words[3:5])
        except (ValueError, KeyError) as exc:
            raise SchemaError(f"{path}:{lineno}: bad photcode line ({exc})") from None
        if code <= 0 or code >= 65536 or name == "MAG":
            raise SchemaError(f"{path}:{lineno}: invalid photcode {code} {name}")
        entries.append([code, name, ptype, zero, k, 0])
        pending.append((len(entries) - 1, words[10], lineno))
    by_name = {e[1]: e[0] for e in entries}
    for i, word, lineno in pending:
        if word == "-":
            continue
        if word.lstrip("-").isdigit():
            entries[i][5] = int(word)
        elif word in by_name:
            entries[i][5] = by_name[word]
        else:
            raise SchemaError(f"{path}:{lineno}: unknown equiv photcode {word!r}")
    if not entries:
        raise SchemaError(f"{path}: no photcodes")
    return Photcodes(_rows([tuple(e) for e in entries]))
