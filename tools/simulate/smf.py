"""Writing smf files (``shared/reference/smf-format.md``) as raw FITS bytes, fast.

Headers are formatted here card by card (FITS fixed format for logicals and numbers, floats
as Python's shortest round-trip ``repr``), tables are big-endian numpy records; one exposure
is assembled in memory and written once through a temporary file and ``os.replace``.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from ._kernels import interleave_words

__all__ = [
    "CMF_PS1_V5",
    "CMF_PS1_V3",
    "LENSING",
    "COLUMNS",
    "card",
    "header_bytes",
    "table_hdu",
    "empty_image_hdu",
    "primary_hdu",
    "write_atomic",
]

_F = {"J": ">i4", "E": ">f4", "D": ">f8", "I": ">i2"}


def _cols(spec: str) -> list[tuple[str, str]]:
    return [(w.split(":")[0], w.split(":")[1]) for w in spec.split()]


#: CMF_PS1_V5 in FITS order (dvo-facts.md 1l), 232 bytes per row.
CMF_PS1_V5 = _cols(
    "IPP_IDET:J X_PSF:E Y_PSF:E X_PSF_SIG:E Y_PSF_SIG:E POSANGLE:E PLTSCALE:E PSF_INST_MAG:E "
    "PSF_INST_MAG_SIG:E PSF_INST_FLUX:E PSF_INST_FLUX_SIG:E AP_MAG:E AP_MAG_RAW:E AP_MAG_RADIUS:E "
    "AP_FLUX:E AP_FLUX_SIG:E AP_NPIX:J CAL_PSF_MAG:E CAL_PSF_MAG_SIG:E RA_PSF:D DEC_PSF:D "
    "PEAK_FLUX_AS_MAG:E SKY:E SKY_SIGMA:E PSF_CHISQ:E CR_NSIGMA:E EXT_NSIGMA:E PSF_MAJOR:E "
    "PSF_MINOR:E PSF_THETA:E PSF_CORE:E PSF_FWHM_MAJ:E PSF_FWHM_MIN:E PSF_QF:E PSF_QF_PERFECT:E "
    "PSF_NDOF:J PSF_NPIX:J MOMENTS_XX:E MOMENTS_XY:E MOMENTS_YY:E MOMENTS_M3C:E MOMENTS_M3S:E "
    "MOMENTS_M4C:E MOMENTS_M4S:E MOMENTS_R1:E MOMENTS_RH:E KRON_FLUX:E KRON_FLUX_ERR:E "
    "KRON_FLUX_INNER:E KRON_FLUX_OUTER:E SKY_LIMIT_RAD:E SKY_LIMIT_FLUX:E SKY_LIMIT_SLOPE:E "
    "FLAGS:J FLAGS2:J N_FRAMES:I PADDING:I"
)
#: CMF_PS1_V3 (224 bytes): the layout of the generated CMF_PS1_V3 struct (diff columns, no
#: AP_NPIX, PSF_CORE, FWHM, M3/M4 moments or SKY_LIMIT columns).
CMF_PS1_V3 = _cols(
    "IPP_IDET:J X_PSF:E Y_PSF:E X_PSF_SIG:E Y_PSF_SIG:E POSANGLE:E PLTSCALE:E PSF_INST_MAG:E "
    "PSF_INST_MAG_SIG:E PSF_INST_FLUX:E PSF_INST_FLUX_SIG:E AP_MAG:E AP_MAG_RAW:E AP_MAG_RADIUS:E "
    "AP_FLUX:E AP_FLUX_SIG:E PEAK_FLUX_AS_MAG:E CAL_PSF_MAG:E CAL_PSF_MAG_SIG:E RA_PSF:D DEC_PSF:D "
    "SKY:E SKY_SIGMA:E PSF_CHISQ:E CR_NSIGMA:E EXT_NSIGMA:E PSF_MAJOR:E PSF_MINOR:E PSF_THETA:E "
    "PSF_QF:E PSF_QF_PERFECT:E PSF_NDOF:J PSF_NPIX:J MOMENTS_XX:E MOMENTS_XY:E MOMENTS_YY:E "
    "MOMENTS_R1:E MOMENTS_RH:E KRON_FLUX:E KRON_FLUX_ERR:E KRON_FLUX_INNER:E KRON_FLUX_OUTER:E "
    "DIFF_NPOS:J DIFF_FRATIO:E DIFF_NRATIO_BAD:E DIFF_NRATIO_MASK:E DIFF_NRATIO_ALL:E DIFF_R_P:E "
    "DIFF_SN_P:E DIFF_R_M:E DIFF_SN_M:E FLAGS:J FLAGS2:J N_FRAMES:I PADDING:I"
)
_LENS = [
    f"{q}_{kind}_{src}"
    for kind, src in (("SM", "OBJ"), ("SH", "OBJ"), ("SM", "PSF"), ("SH", "PSF"))
    for q in ("X11", "X12", "X22", "E1", "E2")
]
_LENS += ["E1_PSF", "E2_PSF"]
_LENS += [
    f"{q}_AP_{r}" for r in ("R5", "R6", "R7") for q in ("FLUX", "FLUX_ERR", "FLUX_STD", "FLUX_FIL")
]
#: The ``XYnn.lensing`` table: IPP_IDET then the 34 float Lensing columns of dvo-facts 1e.
LENSING = [("IPP_IDET", "J")] + [(c, "E") for c in _LENS]
COLUMNS = {"PS1_V5": CMF_PS1_V5, "PS1_V3": CMF_PS1_V3}


def dtype_of(columns: list[tuple[str, str]]) -> np.dtype:
    """Big-endian record dtype of a column list of (name, TFORM letter)."""
    return np.dtype([(n, _F[t]) for n, t in columns])


def pack_records(
    columns: list[tuple[str, str]], n: int, values: dict, out: np.ndarray | None = None
) -> np.ndarray:
    """n big-endian records (dtype of ``columns``) from per-column scalars or arrays.

    Missing columns are zero. Scalars go into one template row; each array column is
    converted to big-endian contiguously, viewed as 4-byte words (a double as two), and a
    numba kernel writes template and words row by row. ``out`` is an optional uint32 buffer
    of at least n * row-size / 4 words to fill: reusing one avoids touching fresh memory
    (page faults) for every exposure.
    """
    dtype = dtype_of(columns)
    forms = dict(columns)
    template = np.zeros(1, dtype)
    for name, v in values.items():
        if name in forms and np.ndim(v) == 0:
            template[name] = v
    words, cols = [], []
    for name, v in values.items():
        if name in forms and np.ndim(v) != 0 and forms[name] != "I":
            w = dtype.fields[name][1] // 4
            be = np.asarray(v, dtype.fields[name][0]).view(np.uint32)
            if forms[name] == "D":
                words += [w, w + 1]
                cols += [be[0::2], be[1::2]]
            else:
                words.append(w)
                cols.append(be)
    stack = np.empty((len(cols), n), np.uint32)
    for k, col in enumerate(cols):
        stack[k] = col
    nw = dtype.itemsize // 4
    out = np.empty((n, nw), np.uint32) if out is None else out[: n * nw].reshape(n, nw)
    interleave_words(out, template.view(np.uint32), np.array(words, np.int64), stack)
    rows = out.view(dtype).reshape(n)
    for name, v in values.items():
        if forms.get(name) == "I" and np.ndim(v) != 0:
            rows[name] = v
    return rows


def _value(v: object) -> str:
    if isinstance(v, bool | np.bool_):
        return f"{'T' if v else 'F':>20}"
    if isinstance(v, int | np.integer):
        return f"{int(v):>20d}"
    if isinstance(v, float | np.floating):
        text = repr(float(v)).upper()
        if "." not in text and "E" not in text:
            text += ".0"
        return f"{text:>20}"
    s = str(v).replace("'", "''")
    return f"'{s:<8}'"


def card(key: str, value: object, comment: str = "") -> str:
    """One 80-character header card."""
    text = f"{key:<8}= {_value(value)}"
    if comment:
        text += f" / {comment}"
    return f"{text[:80]:<80}"


def header_bytes(cards: list[tuple]) -> bytes:
    """Header bytes (with END, padded to 2880) of (key, value[, comment]) tuples."""
    text = "".join(card(*c) for c in cards) + f"{'END':<80}"
    text += " " * (-len(text) % 2880)
    return text.encode("ascii")


def primary_hdu(cards: list[tuple]) -> bytes:
    """A primary HDU with no data and the given keywords."""
    base = [("SIMPLE", True), ("BITPIX", 8), ("NAXIS", 0), ("EXTEND", True)]
    return header_bytes(base + cards)


def empty_image_hdu(extname: str, cards: list[tuple]) -> bytes:
    """An IMAGE extension with NAXIS = 0 (header only)."""
    base = [("XTENSION", "IMAGE"), ("BITPIX", 8), ("NAXIS", 0), ("PCOUNT", 0), ("GCOUNT", 1)]
    return header_bytes(base + cards + [("EXTNAME", extname)])


@lru_cache(maxsize=16)
def _column_cards(columns: tuple[tuple[str, str], ...]) -> str:
    """The fixed cards after NAXIS2 of a BINTABLE with these columns (cached)."""
    head = [("PCOUNT", 0), ("GCOUNT", 1), ("TFIELDS", len(columns))]
    for k, (name, form) in enumerate(columns, 1):
        head += [(f"TTYPE{k}", name), (f"TFORM{k}", f"1{form}")]
    return "".join(card(*c) for c in head)


def table_hdu(
    extname: str, columns: list[tuple[str, str]], rows: np.ndarray, cards=()
) -> list[bytes | memoryview]:
    """A BINTABLE HDU of big-endian records ``rows`` (dtype of ``columns``).

    Returns the header bytes, a zero-copy view of the rows and the padding, to be written in
    this order (``b"".join`` gives the HDU bytes).
    """
    text = (
        card("XTENSION", "BINTABLE")
        + card("BITPIX", 8)
        + card("NAXIS", 2)
        + card("NAXIS1", rows.dtype.itemsize)
        + card("NAXIS2", len(rows))
        + _column_cards(tuple(columns))
        + "".join(card(*c) for c in cards)
        + card("EXTNAME", extname)
        + f"{'END':<80}"
    )
    text += " " * (-len(text) % 2880)
    data = memoryview(np.ascontiguousarray(rows).view(np.uint8))
    return [text.encode("ascii"), data, b"\0" * (-data.nbytes % 2880)]


def write_atomic(path: Path, chunks: list[bytes | memoryview]) -> None:
    """Write ``chunks`` to ``path`` through a temporary file and ``os.replace``."""
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        fh.writelines(chunks)
    os.replace(tmp, path)
