"""Read smf exposure catalogues into Image and Measure rows.

The layout is fixed by ``shared/reference/smf-format.md``: a primary header with exposure
keywords, then per chip an ``XYnn.hdr`` header HDU and an ``XYnn.psf`` detection table (CMF
PS1_V3 or PS1_V5), and optionally ``XYnn.lensing``. Anything malformed raises IngestError
naming the file and the problem; detections with non-finite position or magnitude are dropped
and counted, as the format says.

The file is read in one piece and parsed here: headers card by card (only the keywords used
are converted, the way cfitsio/fitsio convert them), tables as zero-copy big-endian views of
the columns used. Measure rows of all chips are filled a few chips at a time, so that the
rows being filled stay in cache: the columns stored as they are copied one by one, the fields
computed from columns in one pass of a numba kernel (:mod:`dvo._smf_kernels`).
"""

from __future__ import annotations

import mmap
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from dvo._smf_kernels import KRON, SOURCES, fill_measures
from dvo.codecs import data_size
from dvo.errors import IngestError, SchemaError
from dvo.photcodes import Photcodes
from dvo.photometry import ZERO_POINT
from dvo.readahead import ReadAhead
from dvo.schema import IMAGE, LENSING, MEASURE, Schema
from dvo.skytable import angular_distance
from dvo.times import mjd_to_time
from dvo.wcs import tan_pixel_to_sky

__all__ = ["IngestBatch", "read_smf", "EXPOSURE_KEYS", "REQUIRED_COLUMNS"]

EXPOSURE_KEYS = ("EXP_NAME", "EXP_ID", "FILTER", "MJD-OBS", "EXPTIME", "AIRMASS")
REQUIRED_COLUMNS = (
    "IPP_IDET",
    "X_PSF",
    "Y_PSF",
    "RA_PSF",
    "DEC_PSF",
    "PSF_INST_MAG",
    "PSF_INST_MAG_SIG",
)
CHIP_KEYS = ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "IMNAXIS1", "IMNAXIS2")
MAG_PER_FLUX = 2.5 / np.log(10.0)

#: Detection-table columns read (all optional but REQUIRED_COLUMNS).
PSF_COLUMNS = REQUIRED_COLUMNS + (
    "AP_MAG",
    "AP_FLUX",
    "AP_FLUX_SIG",
    "KRON_FLUX",
    "KRON_FLUX_ERR",
    "PSF_INST_FLUX",
    "PSF_INST_FLUX_SIG",
    "SKY",
    "SKY_SIGMA",
    "PSF_QF",
    "PSF_QF_PERFECT",
    "PSF_CHISQ",
    "EXT_NSIGMA",
    "PSF_NDOF",
    "PSF_NPIX",
    "PSF_FWHM_MAJ",
    "PSF_FWHM_MIN",
    "PSF_THETA",
    "MOMENTS_XX",
    "MOMENTS_XY",
    "MOMENTS_YY",
    "X_PSF_SIG",
    "Y_PSF_SIG",
    "POSANGLE",
    "PLTSCALE",
    "FLAGS",
    "FLAGS2",
)
#: Detections per block of whole chips filled at a time (the block's rows stay in cache).
BLOCK_ROWS = 4096


@dataclass
class IngestBatch:
    """What one input file adds: images, and measurements tied to them by local index.

    ``meas_image[i]`` is the row of ``images`` that measurement ``i`` comes from; IMAGE_ID and
    the object links are filled in by addstar.
    """

    source: str
    images: np.ndarray
    measure: np.ndarray
    meas_image: np.ndarray
    lensing: np.ndarray = field(default_factory=lambda: LENSING.empty(0))
    lens_meas: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    rejected: int = 0
    exp_id: int = -1

    @property
    def ndetections(self) -> int:
        """Measurements to be added."""
        return len(self.measure)


def read_smf(path: str | Path, photcodes: Photcodes, files: ReadAhead | None = None) -> IngestBatch:
    """Read one smf file (through ``files``, which may have read it ahead already); raises
    IngestError naming the file and the problem."""
    path = Path(path)
    try:
        buf, size = (files or _files()).read(path)
        hdus = _hdus(buf, size)
        names = [h.name for h in hdus]
        first: dict[str, _Hdu] = {}
        for h in hdus:
            first.setdefault(h.name, h)
        chips = _chip_names(names, path)
        exposure = _exposure(hdus[0].header, path)
        parts = [_read_chip(buf, first, chip, exposure, photcodes, path) for chip in chips]
        return _assemble(path, exposure, parts, photcodes)  # copies: nothing keeps ``buf``
    except IngestError:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError, OverflowError) as exc:
        raise IngestError(f"unreadable FITS ({_one_line(exc)})", file=str(path)) from None


_local = threading.local()


def _files() -> ReadAhead:
    """This thread's reader: its buffers are reused from file to file (a fresh 20-200 MB
    buffer per exposure costs more in page faults than reading it does)."""
    files = getattr(_local, "files", None)
    if files is None:
        files = _local.files = ReadAhead()
    return files


def _one_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text[:200] if text else type(exc).__name__


# ---------------------------------------------------------------------------------------------
# FITS structure: HDUs, header cards, binary-table columns


class _FitsError(ValueError):
    """The file is not well-formed FITS (reported as "unreadable FITS (...)")."""


BLOCK, CARD = 2880, 80
_END = b"END     "
_INT_RE = re.compile(r"[+-]?\d+")


class _Header:
    """Keyword -> value of one header, converted on access as fitsio does.

    Keywords are upper case; the first card of a repeated keyword counts. Strings lose their
    quotes and trailing blanks, ``T``/``F`` are booleans, numbers with ``.``, ``E`` or ``D``
    are floats, other numbers integers, anything else stays text; an empty value is None.
    """

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, str]) -> None:
        self.raw = raw

    def __contains__(self, key: str) -> bool:
        return key.upper() in self.raw

    def __getitem__(self, key: str):
        return _value(self.raw[key.upper()])

    def get(self, key: str, default=None):
        raw = self.raw.get(key.upper())
        return default if raw is None else _value(raw)


@lru_cache(maxsize=16384)
def _value(raw: str):
    """The value of a card's text after the ``=`` (see :class:`_Header`)."""
    text = raw.lstrip()
    if text.startswith("'"):
        out, i = [], 1
        while True:
            j = text.find("'", i)
            if j < 0:
                raise _FitsError(f"unterminated string in header card value {raw.strip()!r}")
            out.append(text[i:j])
            if text[j + 1 : j + 2] != "'":
                return "".join(out).rstrip()
            out.append("'")
            i = j + 2
    value = text.split("/", 1)[0].strip()
    if not value:
        return None
    if value[0] == "T":
        return True
    if value[0] == "F":
        return False
    if "." in value or "E" in value or "e" in value:
        try:
            return float(value.replace("D", "E").replace("d", "e")) if "_" not in value else value
        except ValueError:
            return value
    return int(value) if _INT_RE.fullmatch(value) else value


@dataclass
class _Hdu:
    """One HDU: its index, EXTNAME, header and where its data unit starts in the file."""

    index: int
    name: str
    header: _Header
    data_start: int


def _hdus(buf: bytes | mmap.mmap, size: int) -> list[_Hdu]:
    """Every HDU of the file in ``buf[:size]``, in order; _FitsError if it is not well-formed
    FITS."""
    if size < 9 or buf[:9] != b"SIMPLE  =":
        raise _FitsError("not a FITS file: it does not start with SIMPLE")
    offset, out = 0, []
    while offset < size:
        block = buf[offset : min(offset + BLOCK, size)]
        if not block.strip(b"\0 ") and not buf[offset:size].strip(b"\0 "):
            break  # blank or zero padding after the last HDU
        index = len(out)
        header, data_start = _parse_header(buf, size, offset, index)
        nbytes = data_size(header, {"hdu": index})  # CodecError: unreadable FITS
        if data_start + nbytes > size:
            raise _FitsError(
                f"file truncated: HDU {index} needs {nbytes} data bytes, "
                f"{size - data_start} present"
            )
        name = header.get("EXTNAME")
        if name is None:
            name = header.get("HDUNAME")
        name = "" if name is None else str(name).strip()
        out.append(_Hdu(index, name, header, data_start))
        offset = data_start + -(-nbytes // BLOCK) * BLOCK
    return out


def _parse_header(buf: bytes | mmap.mmap, size: int, start: int, index: int) -> tuple[_Header, int]:
    """The header at ``start`` and the offset of its data unit (``buf[:size]`` is the file)."""
    end = buf.find(_END, start, size)
    while end >= 0 and (end - start) % CARD:
        end = buf.find(_END, end + 1, size)
    if end < 0:
        raise _FitsError(f"file truncated: the header of HDU {index} has no END card")
    data_start = start + -(-(end + CARD - start) // BLOCK) * BLOCK
    if data_start > size:
        raise _FitsError(f"file truncated inside the header of HDU {index}")
    try:
        text = buf[start:end].decode("ascii")
    except UnicodeDecodeError:
        raise _FitsError(f"the header of HDU {index} is not ASCII") from None
    first = "SIMPLE" if index == 0 else "XTENSION"
    if text[:8].rstrip() != first or text[8:9] != "=":
        raise _FitsError(f"HDU {index} at byte {start} does not start with {first}")
    raw: dict[str, str] = {}
    for i in range(len(text) - CARD, -1, -CARD):  # backwards: the first card of a key wins
        if text[i + 8] == "=":
            raw[text[i : i + 8].rstrip().upper()] = text[i + 9 : i + CARD]
    return _Header(raw), data_start


def _int_key(header: _Header, key: str, index: int, default: int | None = None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _FitsError(f"keyword {key} of HDU {index} is missing or not an integer")
    return value


_TFORM_RE = re.compile(r"\s*(\d*)([LXBIJKAEDCMPQ])")
_WIDTH = {"L": 1, "B": 1, "A": 1, "I": 2, "J": 4, "K": 8, "E": 4, "D": 8, "C": 8, "M": 16}
_NUMERIC = {"B": "u1", "I": ">i2", "J": ">i4", "K": ">i8", "E": ">f4", "D": ">f8"}
#: TZERO that makes a signed column unsigned (B: the other way round), as fitsio reads them.
_UNSIGNED = {"B": (-128, "i1"), "I": (32768, ">u2"), "J": (2**31, ">u4"), "K": (2**63, ">u8")}


@dataclass
class _Table:
    """A binary table: rows, and the columns wanted as arrays (big-endian views of the file
    where possible)."""

    nrows: int
    columns: dict[str, np.ndarray]
    names: set[str]


def _table(buf: bytes, hdu: _Hdu, label: str, wanted: tuple[str, ...], path: Path) -> _Table:
    """The wanted numeric columns of a BINTABLE HDU (those it has)."""
    h = hdu.header
    if str(h.get("XTENSION", "")).strip() != "BINTABLE":
        raise IngestError(f"{label} is not a binary table", file=str(path))
    if _int_key(h, "NAXIS", hdu.index) != 2:
        raise _FitsError(f"{label} has NAXIS other than 2")
    row_bytes, nrows = _int_key(h, "NAXIS1", hdu.index), _int_key(h, "NAXIS2", hdu.index)
    tfields = _int_key(h, "TFIELDS", hdu.index)
    if not 0 <= tfields <= 999:
        raise _FitsError(f"{label} has invalid TFIELDS={tfields}")
    positions, width = _layout(tuple(map(h.raw.get, _column_keys(tfields))))
    if width > row_bytes:
        raise _FitsError(f"{label}: columns need {width} bytes per row, NAXIS1 is {row_bytes}")
    names, formats, offsets, unsigned = [], [], [], []
    for name in wanted:
        if name not in positions:
            continue
        k, code, repeat, offset = positions[name]
        tform = _value(h.raw[f"TFORM{k}"])
        if code not in _NUMERIC or repeat != 1:
            raise IngestError(
                f"{label} column {name} has unsupported format {tform!r}", file=str(path)
            )
        tscal, tzero = h.get(f"TSCAL{k}", 1), h.get(f"TZERO{k}", 0)
        dtype = _NUMERIC[code]
        if tscal != 1 or tzero != 0:
            if code not in _UNSIGNED or tscal != 1 or tzero != _UNSIGNED[code][0]:
                raise IngestError(
                    f"{label} column {name} has unsupported scaling "
                    f"TSCAL={tscal!r} TZERO={tzero!r}",
                    file=str(path),
                )
            dtype = _UNSIGNED[code][1] if code != "B" else "u1"
            unsigned.append(name)
        names.append(name)
        formats.append(dtype)
        offsets.append(offset)
    dtype = _record(tuple(names), tuple(formats), tuple(offsets), row_bytes)
    rec = np.frombuffer(buf, dtype, count=nrows, offset=hdu.data_start)
    columns = {name: rec[name] for name in names}
    for name in unsigned:  # flip the sign bit (fitsio adds TZERO in the stored type)
        col = columns[name]
        if col.dtype == np.uint8:
            columns[name] = (col ^ np.uint8(0x80)).view(np.int8)
        else:
            native = col.dtype.newbyteorder("=")
            columns[name] = col.astype(native) ^ native.type(1 << (8 * native.itemsize - 1))
    return _Table(nrows, columns, set(positions))


@lru_cache(maxsize=16)
def _column_keys(tfields: int) -> tuple[str, ...]:
    """TTYPE1, TFORM1, TTYPE2, ... for ``tfields`` columns."""
    return tuple(f"{k}{i}" for i in range(1, tfields + 1) for k in ("TTYPE", "TFORM"))


@lru_cache(maxsize=64)
def _record(names: tuple, formats: tuple, offsets: tuple, itemsize: int) -> np.dtype:
    """A row dtype with only the given fields."""
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": itemsize})


@lru_cache(maxsize=64)
def _layout(cards: tuple[str | None, ...]) -> tuple[dict[str, tuple[int, str, int, int]], int]:
    """(name -> (field number, type code, repeat, byte offset), row bytes) of the raw
    (TTYPEn, TFORMn) card values; the first column of a repeated name counts."""
    positions: dict[str, tuple[int, str, int, int]] = {}
    offset = 0
    for k in range(1, len(cards) // 2 + 1):
        ttype, tform = cards[2 * k - 2], cards[2 * k - 1]
        if tform is None:
            raise _FitsError(f"TFORM{k} is missing")
        form = _value(tform)
        m = _TFORM_RE.match(str(form))
        if not m:
            raise _FitsError(f"TFORM{k} = {form!r} is not a binary-table format")
        repeat = int(m.group(1)) if m.group(1) else 1
        code = m.group(2)
        if code == "X":
            width = (repeat + 7) // 8
        elif code in "PQ":
            width = (8 if code == "P" else 16) * (repeat > 0)
        else:
            width = repeat * _WIDTH[code]
        name = _value(ttype) if ttype is not None else ""
        positions.setdefault(str(name) if name is not None else "", (k, code, repeat, offset))
        offset += width
    return positions, offset


# ---------------------------------------------------------------------------------------------
# Exposure and chips


def _chip_names(names: list[str], path: Path) -> list[str]:
    chips = sorted({n[:-4] for n in names if n.endswith(".hdr")})
    for chip in chips:
        if f"{chip}.psf" not in names:
            raise IngestError(f"chip {chip} has a header but no {chip}.psf table", file=str(path))
    return chips


def _exposure(phdr: _Header, path: Path) -> dict:
    missing = [k for k in EXPOSURE_KEYS if k not in phdr]
    if missing:
        raise IngestError(f"primary header lacks {', '.join(missing)}", file=str(path))
    exp = {k: phdr[k] for k in EXPOSURE_KEYS}
    exp["INSTRUME"] = str(phdr.get("INSTRUME", "GPC1")).strip()
    for key in ("MJD-OBS", "EXPTIME", "AIRMASS"):
        try:
            exp[key] = float(exp[key])
        except (TypeError, ValueError):
            raise IngestError(
                f"keyword {key} is not a number: {exp[key]!r}", file=str(path)
            ) from None
        if not np.isfinite(exp[key]):
            raise IngestError(f"keyword {key} is not finite", file=str(path))
    if exp["EXPTIME"] <= 0:
        raise IngestError(f"EXPTIME must be positive, got {exp['EXPTIME']}", file=str(path))
    exp["FILTER"] = str(exp["FILTER"]).strip()
    exp["EXP_NAME"] = str(exp["EXP_NAME"]).strip()
    exp["EXP_ID"] = int(exp["EXP_ID"])
    exp["RA"], exp["DEC"] = float(phdr.get("RA", np.nan)), float(phdr.get("DEC", np.nan))
    exp["LAT"] = float(phdr.get("OBS-LAT", np.nan))
    return exp


@dataclass
class _Chip:
    """One chip: its header values, photcode, detection table and optional lensing table.

    ``lo:hi`` are its rows among all detections of the file, ``klo:khi`` among the kept ones;
    ``keep`` is None when every detection is kept.
    """

    name: str
    hdr: dict
    code: int
    table: _Table
    lens: _Table | None
    lo: int = 0
    hi: int = 0
    klo: int = 0
    khi: int = 0
    keep: np.ndarray | None = None


def _read_chip(
    buf: bytes, first: dict, chip: str, exp: dict, photcodes: Photcodes, path: Path
) -> _Chip:
    hdr = first[f"{chip}.hdr"].header
    missing = [k for k in CHIP_KEYS if k not in hdr]
    if missing:
        raise IngestError(f"{chip}.hdr lacks {', '.join(missing)}", file=str(path))
    pname = f"{exp['INSTRUME']}.{exp['FILTER']}.{chip}"
    try:
        code = photcodes.code(pname)
    except SchemaError:
        raise IngestError(f"unknown photcode {pname}", file=str(path)) from None
    table = _table(buf, first[f"{chip}.psf"], f"{chip}.psf", PSF_COLUMNS, path)
    absent = [c for c in REQUIRED_COLUMNS if c not in table.names]
    if absent:
        raise IngestError(f"{chip}.psf lacks columns {', '.join(absent)}", file=str(path))
    lens = None
    if f"{chip}.lensing" in first:
        wanted = ("IPP_IDET",) + LENSING.names
        lens = _table(buf, first[f"{chip}.lensing"], f"{chip}.lensing", wanted, path)
        if lens.nrows and "IPP_IDET" not in lens.names:
            raise IngestError(f"{chip}.lensing lacks column IPP_IDET", file=str(path))
    return _Chip(chip, _chip_values(hdr, chip, path), code, table, lens)


def _chip_values(hdr: _Header, chip: str, path: Path) -> dict:
    """The chip keywords used, as numbers (IngestError naming the keyword if one is not)."""

    def number(key: str, default=None, kind=float):
        value = hdr[key] if default is None else hdr.get(key, default)
        try:
            return kind(value)
        except (TypeError, ValueError):
            raise IngestError(
                f"{chip}.hdr keyword {key} is not a number: {value!r}", file=str(path)
            ) from None

    out = {k: number(k) for k in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2")}
    if "CD1_1" in hdr:
        if "CD2_2" not in hdr:
            raise IngestError(f"{chip}.hdr has CD1_1 but lacks CD2_2", file=str(path))
        cd = [[number("CD1_1"), number("CD1_2", 0.0)], [number("CD2_1", 0.0), number("CD2_2")]]
    else:
        c1, c2 = number("CDELT1", 1.0), number("CDELT2", 1.0)
        pc = [
            [number("PC1_1", 1.0), number("PC1_2", 0.0)],
            [number("PC2_1", 0.0), number("PC2_2", 1.0)],
        ]
        cd = [[pc[0][0] * c1, pc[0][1] * c1], [pc[1][0] * c2, pc[1][1] * c2]]
    out["CD"] = cd
    out["CTYPE"] = str(hdr.get("CTYPE1", "RA---TAN"))[:15]
    out["NX"], out["NY"] = number("IMNAXIS1", kind=int), number("IMNAXIS2", kind=int)
    out["IMAGEID"] = number("IMAGEID", 0, int)
    for key, default in (("CERROR", 0.0), ("FWHM_X", 0.0), ("FWHM_Y", 0.0), ("ZPT_ERR", 0.0)):
        out[key] = number(key, default)
    out["ZPT_OBS"] = number("ZPT_OBS", np.nan)
    return out


# ---------------------------------------------------------------------------------------------
# Images, Measure and Lensing rows


@lru_cache(maxsize=8)
def _template(schema: Schema) -> np.ndarray:
    return schema.empty(1)


def _empty(schema: Schema, n: int) -> np.ndarray:
    """``schema.empty(n)`` without rebuilding the fill row every call."""
    out = np.empty(n, schema.dtype)
    out[...] = _template(schema)[0]
    return out


def _assemble(path: Path, exp: dict, parts: list[_Chip], photcodes: Photcodes) -> IngestBatch:
    images = _images(path, exp, parts, photcodes)
    n = 0
    for c in parts:
        c.lo, c.hi = n, n + c.table.nrows
        n = c.hi
    measure, row = np.empty(n, MEASURE.dtype), _measure_row(exp)
    nkept, start = 0, 0
    while start < len(parts):  # blocks of whole chips: their rows stay in cache meanwhile
        stop = start + 1
        while stop < len(parts) and parts[stop].hi - parts[start].lo <= BLOCK_ROWS:
            stop += 1
        block = parts[start:stop]
        ra, dec, inst = _keep(block, nkept, path)
        m = measure[nkept : block[-1].khi]
        _measures(block, m, row, images[1 + start : 1 + stop], exp["EXPTIME"], ra, dec, inst)
        nkept, start = block[-1].khi, stop
    images["NSTAR"][0] = nkept
    kept = np.array([c.khi - c.klo for c in parts], np.int64)
    lensing, lens_meas = _lensing(parts)
    return IngestBatch(
        source=str(path),
        images=images,
        measure=measure[:nkept],  # rejected detections leave unused rows at the end
        meas_image=np.repeat(np.arange(1, len(parts) + 1, dtype=np.int64), kept),
        lensing=lensing,
        lens_meas=lens_meas,
        rejected=n - nkept,
        exp_id=exp["EXP_ID"],
    )


def _exposure_row(row, path: Path, exp: dict) -> None:
    row["NAME"] = f"{path.name}"[:117]
    row["CTYPE"] = b"RA---DIS"
    row["CRVAL1"], row["CRVAL2"] = exp["RA"], exp["DEC"]
    row["TZERO"] = mjd_to_time(exp["MJD-OBS"])[0]
    row["MJD_OBS"], row["EXP_ID"] = exp["MJD-OBS"], exp["EXP_ID"]
    row["SECZ"], row["EXPTIME"], row["LAT"] = exp["AIRMASS"], exp["EXPTIME"], exp["LAT"]
    row["RA_CENTER"], row["DEC_CENTER"] = exp["RA"], exp["DEC"]
    row["EXTERN_ID"] = np.int32(exp["EXP_ID"] & 0x7FFFFFFF)
    row["MCAL_PSF"] = row["MCAL_APER"] = 0.0
    row["PHOTCODE"] = 0
    for name in ("APMIFIT", "DAPMIFIT", "DMCAL", "XM"):
        row[name] = 0.0


def _images(path: Path, exp: dict, parts: list[_Chip], photcodes: Photcodes) -> np.ndarray:
    """The exposure row, then one row per chip (every chip at once)."""
    images = _empty(IMAGE, len(parts) + 1)
    _exposure_row(images[0], path, exp)
    if not parts:
        return images
    rows, v = images[1:], [c.hdr for c in parts]

    def col(key: str) -> np.ndarray:
        return np.array([h[key] for h in v], np.float64)

    crval1, crval2, crpix1, crpix2 = col("CRVAL1"), col("CRVAL2"), col("CRPIX1"), col("CRPIX2")
    cd = np.array([h["CD"] for h in v], np.float64)  # (chip, 2, 2)
    with np.errstate(all="ignore"):
        cdelt = np.hypot(cd[:, :, 0], cd[:, :, 1])
        rows["CRVAL1"], rows["CRVAL2"] = crval1, crval2
        rows["CRPIX1"], rows["CRPIX2"] = crpix1, crpix2
        rows["CDELT1"], rows["CDELT2"] = cdelt[:, 0], cdelt[:, 1]
        rows["PC1_1"], rows["PC1_2"] = cd[:, 0, 0] / cdelt[:, 0], cd[:, 0, 1] / cdelt[:, 0]
        rows["PC2_1"], rows["PC2_2"] = cd[:, 1, 0] / cdelt[:, 1], cd[:, 1, 1] / cdelt[:, 1]
        rows["POLYTERMS"], rows["NPOLYTERMS"] = 0.0, 1
        rows["CTYPE"] = [h["CTYPE"] for h in v]
        nx, ny = [h["NX"] for h in v], [h["NY"] for h in v]
        rows["NX"], rows["NY"] = nx, ny
        nxf, nyf = np.array(nx, np.int64)[:, None], np.array(ny, np.int64)[:, None]
        one = np.ones_like(nxf)
        corner_x = np.hstack([(nxf + 1) / 2, one, nxf, one, nxf])
        corner_y = np.hstack([(nyf + 1) / 2, one, one, nyf, nyf])
        ra, dec = tan_pixel_to_sky(
            corner_x,
            corner_y,
            (crval1[:, None], crval2[:, None]),
            (crpix1[:, None], crpix2[:, None]),
            cd.transpose(1, 2, 0)[:, :, :, None],
        )
        rows["RA_CENTER"], rows["DEC_CENTER"] = ra[:, 0], dec[:, 0]
        rows["RADIUS"] = angular_distance(ra[:, :1], dec[:, :1], ra[:, 1:], dec[:, 1:]).max(axis=1)
        rows["TZERO"] = mjd_to_time(exp["MJD-OBS"])[0]
        rows["MJD_OBS"], rows["EXP_ID"] = exp["MJD-OBS"], exp["EXP_ID"]
        rows["NSTAR"] = [c.table.nrows for c in parts]
        rows["SECZ"], rows["EXPTIME"], rows["LAT"] = exp["AIRMASS"], exp["EXPTIME"], exp["LAT"]
        codes = [c.code for c in parts]
        rows["PHOTCODE"] = codes
        rows["NAME"] = [f"{path.name}[{c.name}.hdr]"[:117] for c in parts]
        rows["CCDNUM"] = [int(c.name[2:]) if c.name[2:].isdigit() else 0 for c in parts]
        rows["EXTERN_ID"] = [h["IMAGEID"] for h in v]
        pixscale = 3600.0 * cdelt.mean(axis=1)
        rows["CERROR"] = np.clip(50.0 * col("CERROR"), 0, 255)
        rows["FWHM_X"] = np.clip(25.0 * col("FWHM_X") * pixscale, 0, 255)
        rows["FWHM_Y"] = np.clip(25.0 * col("FWHM_Y") * pixscale, 0, 255)
        c_lam = photcodes.column("C_LAM", codes).astype(np.float64)
        k = photcodes.column("K", codes).astype(np.float64)
        zpt = col("ZPT_OBS")
        mcal = np.where(np.isfinite(zpt), 0.001 * c_lam + k * (exp["AIRMASS"] - 1.0) - zpt, 0.0)
    rows["MCAL_PSF"] = rows["MCAL_APER"] = mcal
    rows["DMCAL"] = col("ZPT_ERR")
    for name in ("APMIFIT", "DAPMIFIT", "XM"):
        rows[name] = 0.0
    return images


def _gather(
    parts: list[_Chip], name: str, out: np.ndarray, fill, *, kept: bool = True, cast: bool = False
) -> None:
    """Column ``name`` of consecutive chips into ``out`` (their kept rows, or all rows).

    ``out`` is float64, or a Measure field; values reach it exactly as the reader's
    historical ``astype(float64)`` then cast would put them (integers of more than 32 bits
    and floats go through float64 first; NaN becomes 0 for integer fields), or with ``cast``
    by a plain cast.
    """
    base = parts[0].klo if kept else parts[0].lo
    dst = out.dtype
    for c in parts:
        a, b = (c.klo - base, c.khi - base) if kept else (c.lo - base, c.hi - base)
        src = c.table.columns.get(name)
        if src is None:
            out[a:b] = fill
            continue
        if kept and c.keep is not None:
            src = src[c.keep]
        if not cast and not _direct(src.dtype, dst):
            src = src.astype(np.float64)
            if dst.kind in "iu":  # out-of-range casts differ between astype and setitem
                src = np.nan_to_num(src).astype(dst)
        out[a:b] = src


def _direct(src: np.dtype, dst: np.dtype) -> bool:
    """Whether casting ``src`` straight to ``dst`` equals the cast through float64."""
    if dst == np.float64 or src.kind == "f" and dst.kind == "f":
        return True
    small = src.kind in "iu" and src.itemsize <= 4
    if dst.kind == "f":
        return small
    if dst == np.int32:  # float64 -> int32 saturates out-of-range values: not for uint32
        return small and not (src.kind == "u" and src.itemsize == 4)
    return small


def _keep(parts: list[_Chip], start: int, path: Path) -> tuple[np.ndarray, ...]:
    """RA, DEC and PSF_INST_MAG (float64) of the detections of consecutive chips that are
    kept: those with finite values.

    Sets the chips' kept rows, from ``start`` on; IngestError if a kept position is out of
    range.
    """
    n = parts[-1].hi - parts[0].lo
    ra, dec, inst = np.empty(n), np.empty(n), np.empty(n)
    _gather(parts, "RA_PSF", ra, np.nan, kept=False)
    _gather(parts, "DEC_PSF", dec, np.nan, kept=False)
    _gather(parts, "PSF_INST_MAG", inst, np.nan, kept=False)
    keep = np.isfinite(ra) & np.isfinite(dec) & np.isfinite(inst)
    with np.errstate(invalid="ignore"):
        bad = keep & ((np.abs(dec) > 90) | (ra < -360) | (ra > 720))
    if bad.any():
        row = parts[0].lo + int(np.argmax(bad))
        chip = next(c.name for c in parts if c.lo <= row < c.hi)
        raise IngestError(f"{chip}.psf has coordinates out of range", file=str(path))
    all_kept = bool(keep.all())
    k = start
    for c in parts:
        c.klo = k
        if not all_kept:
            c.keep = keep[c.lo - parts[0].lo : c.hi - parts[0].lo]
            if c.keep.all():
                c.keep = None
        k += (c.hi - c.lo) if c.keep is None else int(c.keep.sum())
        c.khi = k
    if all_kept:
        return ra, dec, inst
    return ra[keep], dec[keep], inst[keep]


def _measure_row(exp: dict) -> np.ndarray:
    """A Measure row holding the fill values and the exposure's constants."""
    row = _template(MEASURE).copy()
    row["AIRMASS"] = exp["AIRMASS"]
    row["M_TIME"] = 2.5 * np.log10(exp["EXPTIME"])
    row["TIME"], row["TIME_MSEC"] = mjd_to_time(exp["MJD-OBS"])
    for name in ("X_OFF_KH", "Y_OFF_KH", "X_OFF_DCR", "Y_OFF_DCR", "X_OFF_CAM", "Y_OFF_CAM"):
        row[name] = 0.0
    row["M_FLAT"] = 0.0
    return row


#: Detection columns copied to Measure fields as they are: (column, field, missing value).
_COPIED = (
    ("PSF_INST_MAG_SIG", "MAG_ERR", np.nan),
    ("X_PSF", "X_CCD", np.nan),
    ("Y_PSF", "Y_CCD", np.nan),
    ("IPP_IDET", "DET_ID", 0),
    ("PSF_QF", "PSF_QF", np.nan),
    ("PSF_QF_PERFECT", "PSF_QF_PEFECT", np.nan),
    ("PSF_CHISQ", "PSF_CHISQ", np.nan),
    ("EXT_NSIGMA", "EXT_NSIGMA", np.nan),
    ("PSF_NDOF", "PSF_NDOF", 0),
    ("PSF_NPIX", "PSF_NPIX", 0),
    ("FLAGS", "PHOT_FLAGS", 0),
    ("FLAGS2", "PHOT_FLAGS2", 0),
)


def _measures(
    parts: list[_Chip],
    m: np.ndarray,
    row: np.ndarray,
    images: np.ndarray,
    t: float,
    ra: np.ndarray,
    dec: np.ndarray,
    inst: np.ndarray,
) -> None:
    """Fill the Measure rows ``m`` of the kept detections of consecutive chips ``parts``.

    ``row`` is from :func:`_measure_row`, ``images`` the chips' Image rows, ``t`` EXPTIME and
    ``ra``, ``dec``, ``inst`` from :func:`_keep`. Columns stored as they are are copied here;
    the fields computed from columns are set by :func:`fill_measures`.
    """
    n = len(m)
    m.view(np.uint8).reshape(n, m.dtype.itemsize)[:] = row.view(np.uint8)
    src = np.empty((len(SOURCES), n))
    with np.errstate(all="ignore"):
        for k, (name, fill) in enumerate(SOURCES):
            _gather(parts, name, src[k], fill)
        for name, dst, fill in _COPIED:
            _gather(parts, name, m[dst], fill, cast=name == "IPP_IDET")
        log_kron = np.log10(src[KRON])
    fill_measures(
        m,
        src,
        ra,
        dec,
        inst,
        log_kron,
        np.array([c.khi - c.klo for c in parts], np.int64),
        images["MCAL_PSF"],
        images["DMCAL"],
        3600.0 * images["CDELT1"].astype(np.float64),
        np.array([c.code for c in parts], np.int64),
        2.5 * np.log10(t),
        ZERO_POINT,
        t,
        MAG_PER_FLUX,
    )


def _lensing(parts: list[_Chip]) -> tuple[np.ndarray, np.ndarray]:
    """Lensing rows whose IPP_IDET matches a kept detection of their chip, and that
    detection's index among the kept ones."""
    matched = []
    for c in parts:
        if c.lens is None or not c.lens.nrows or c.khi == c.klo:
            continue
        det = c.table.columns["IPP_IDET"]
        det = np.asarray(det if c.keep is None else det[c.keep])
        det = det.astype(det.dtype.newbyteorder("="))
        lid = c.lens.columns["IPP_IDET"]
        lid = lid.astype(lid.dtype.newbyteorder("="))
        order = np.argsort(det, kind="stable")
        sorted_det = det[order]
        pos = np.clip(np.searchsorted(sorted_det, lid), 0, len(order) - 1)
        ok = sorted_det[pos] == lid
        matched.append((c, ok, lid, order[pos[ok]] + c.klo))
    if not matched:
        return LENSING.empty(0), np.zeros(0, np.int64)
    rows = _empty(LENSING, sum(int(ok.sum()) for _, ok, _, _ in matched))
    a = 0
    for c, ok, lid, _ in matched:
        b = a + int(ok.sum())
        for name in LENSING.names:
            col = c.lens.columns.get(name)
            if col is not None:
                rows[name][a:b] = col[ok]
        rows["DET_ID"][a:b] = lid[ok]
        a = b
    return rows, np.concatenate([idx for *_, idx in matched]).astype(np.int64)
