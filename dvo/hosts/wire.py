"""Checks for what crosses the wire: parameters a worker receives, summaries a client receives.

Everything here raises :class:`~dvo.errors.HostError` with a one-line reason. Numeric arrays
arrive through :func:`dvo.hosts.protocol.unpack_array` (exact dtype and rank); these helpers
then check what the engine relies on before any kernel indexes with them: lengths, ranges,
ordering, finiteness. Option dataclasses are rebuilt field by field with the type of each
field's default, never from names or types found in the message.

Examples
--------
>>> increasing(np.array([1, 4, 9]), "ids", 0, 10).tolist()
[1, 4, 9]
>>> in_range(np.array([3, -1]), "cols", -1, 2)
Traceback (most recent call last):
dvo.errors.HostError: cols: values outside [-1, 2)
"""

from __future__ import annotations

import dataclasses
import enum
import math
import re

import numpy as np

from dvo.errors import HostError

__all__ = [
    "require",
    "in_range",
    "increasing",
    "finite",
    "length",
    "dataclass_to_wire",
    "dataclass_from_wire",
    "files_from_wire",
    "count",
]

_SHA = re.compile(r"^[0-9a-f]{64}$")


def require(ok: bool, reason: str) -> None:
    """Raise ``HostError(reason)`` unless ``ok``."""
    if not ok:
        raise HostError(reason)


def in_range(a: np.ndarray, name: str, lo: int, hi: int) -> np.ndarray:
    """``a`` with every value in ``[lo, hi)``."""
    require(len(a) == 0 or (int(a.min()) >= lo and int(a.max()) < hi),
            f"{name}: values outside [{lo}, {hi})")  # fmt: skip
    return a


def increasing(a: np.ndarray, name: str, lo: int, hi: int) -> np.ndarray:
    """``a`` strictly increasing, within ``[lo, hi)``."""
    require(bool(np.all(np.diff(a) > 0)), f"{name}: not strictly increasing")
    return in_range(a, name, lo, hi)


def finite(a: np.ndarray, name: str) -> np.ndarray:
    """``a`` without NaN or infinity."""
    require(bool(np.all(np.isfinite(a))), f"{name}: not finite")
    return a


def length(a: np.ndarray, name: str, n: int) -> np.ndarray:
    """``a`` with exactly ``n`` rows."""
    require(len(a) == n, f"{name}: {len(a)} rows, expected {n}")
    return a


def count(value, name: str, hi: int = 1 << 62) -> int:
    """A JSON integer in ``[0, hi)`` (booleans refused)."""
    require(isinstance(value, int) and not isinstance(value, bool) and 0 <= value < hi,
            f"{name}: bad value {value!r:.40}")  # fmt: skip
    return int(value)


def dataclass_to_wire(obj) -> dict:
    """The fields of an options dataclass as JSON values (enums by value)."""
    out = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        out[f.name] = v.value if isinstance(v, enum.Enum) else v
    return out


def dataclass_from_wire(cls, data) -> object:
    """Rebuild an options dataclass whose fields all have bool/int/float/str-enum defaults.

    Every field must be present and of its default's type (an int is accepted for a float);
    the class's own validation then runs.
    """
    fields = {f.name: f for f in dataclasses.fields(cls)}
    require(isinstance(data, dict) and set(data) == set(fields), f"{cls.__name__}: wrong fields")
    values = {}
    for name, f in fields.items():
        default, v = f.default, data[name]
        if isinstance(default, bool):
            ok = isinstance(v, bool)
        elif isinstance(default, enum.Enum):
            ok = isinstance(v, str) and len(v) < 64
        elif isinstance(default, int):
            ok = isinstance(v, int) and not isinstance(v, bool) and abs(v) < 1 << 31
        elif isinstance(default, float):
            ok = isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            v = float(v) if ok else v
        else:  # pragma: no cover - a field type this wire format does not carry
            ok = False
        require(ok, f"{cls.__name__}.{name}: bad value {v!r:.40}")
        values[name] = v
    return cls(**values)


def files_from_wire(files, prefix: str) -> dict[str, list]:
    """Checksums ``{relative path: [size, sha256]}`` of files under partition ``prefix``."""
    require(isinstance(files, dict) and 0 < len(files) <= 8, "bad file checksums")
    for rel, value in files.items():
        ok = isinstance(rel, str) and rel.startswith(prefix + ".")
        require(ok and "/" not in rel[len(prefix) :], f"unexpected file {rel!r:.80}")
        require(isinstance(value, list) and len(value) == 2, f"bad checksum of {rel}")
        count(value[0], f"size of {rel}")
        require(isinstance(value[1], str) and bool(_SHA.match(value[1])), f"bad sha256 of {rel}")
    return files
