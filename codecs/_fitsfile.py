"""FITS file structure: locating HDUs, reading byte ranges, writing HDUs with checksums."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from dvo.errors import CodecError

from . import _checksum
from ._header import (
    BLOCK,
    CARD,
    Card,
    Header,
    HeaderError,
    format_card,
    format_header,
    parse_header_block,
)

MAX_HEADER_BLOCKS = 10000  # a header longer than 28.8 MB is treated as corrupt


@dataclass
class HDU:
    """Where one HDU sits in its file."""

    index: int
    header: Header
    header_start: int
    data_start: int
    data_size: int  # unpadded bytes of the data unit

    @property
    def end(self) -> int:
        """Offset just past the padded data unit."""
        return self.data_start + padded(self.data_size)


def padded(n: int) -> int:
    """``n`` rounded up to a whole number of 2880-byte blocks."""
    return -(-n // BLOCK) * BLOCK


def _int_key(header: Header, key: str, ctx: dict, default: int | None = None) -> int:
    value = header.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise CodecError(f"keyword {key} is missing or not an integer ({value!r})", **ctx)
    return value


def data_size(header: Header, ctx: dict) -> int:
    """Bytes in the data unit described by ``header`` (without padding)."""
    naxis = _int_key(header, "NAXIS", ctx)
    bitpix = _int_key(header, "BITPIX", ctx)
    if naxis < 0 or naxis > 999 or bitpix not in (8, 16, 32, 64, -32, -64):
        raise CodecError(f"invalid NAXIS={naxis} or BITPIX={bitpix}", **ctx)
    if naxis == 0:
        return 0
    size = 1
    for i in range(1, naxis + 1):
        n = _int_key(header, f"NAXIS{i}", ctx)
        if n < 0:
            raise CodecError(f"negative NAXIS{i}", **ctx)
        size *= n
    pcount = _int_key(header, "PCOUNT", ctx, 0)
    gcount = _int_key(header, "GCOUNT", ctx, 1)
    if pcount < 0 or gcount < 0:
        raise CodecError("negative PCOUNT or GCOUNT", **ctx)
    return abs(bitpix) // 8 * gcount * (pcount + size)


def read_header_at(fd: int, offset: int, ctx: dict) -> tuple[Header, int]:
    """Parse the header starting at ``offset``; return it and the data offset."""
    blocks = []
    for i in range(MAX_HEADER_BLOCKS):
        try:
            block = pread_exact(fd, BLOCK, offset + i * BLOCK, ctx)
        except CodecError:
            raise CodecError("file truncated inside a header", **ctx) from None
        blocks.append(block)
        if b"END     " in block:
            try:
                header, done = parse_header_block(b"".join(blocks))
            except HeaderError as exc:
                raise CodecError(f"bad header: {exc}", **ctx) from exc
            if done:
                return header, offset + (i + 1) * BLOCK
    raise CodecError("header has no END card", **ctx)


def _matches(hdu: HDU, ext: int | str) -> bool:
    if isinstance(ext, str):
        name = hdu.header.get("EXTNAME")
        return isinstance(name, str) and name.strip().upper() == ext.strip().upper()
    return hdu.index == ext


def find_hdu(fd: int, path: str, ext: int | str) -> HDU:
    """Scan HDUs from the start of the file until ``ext`` (index or EXTNAME) is found."""
    if isinstance(ext, bool) or not isinstance(ext, int | str):
        raise CodecError(f"ext must be an HDU number or an EXTNAME, not {ext!r}", file=path)
    size = os.fstat(fd).st_size
    offset, index = 0, 0
    while offset < size:
        ctx = {"file": path, "hdu": index}
        header, start = read_header_at(fd, offset, ctx)
        hdu = HDU(index, header, offset, start, data_size(header, ctx))
        if hdu.data_start + hdu.data_size > size:
            raise CodecError(
                f"file truncated: data unit needs {hdu.data_size} bytes, "
                f"{max(size - hdu.data_start, 0)} present",
                **ctx,
            )
        if _matches(hdu, ext):
            return hdu
        offset, index = hdu.end, index + 1
    raise CodecError(f"no HDU {ext!r} in file", file=path, hdu=ext)


def all_hdus(fd: int, path: str) -> list[HDU]:
    """Every HDU in the file, in order."""
    size = os.fstat(fd).st_size
    hdus, offset = [], 0
    while offset < size:
        ctx = {"file": path, "hdu": len(hdus)}
        header, start = read_header_at(fd, offset, ctx)
        hdu = HDU(len(hdus), header, offset, start, data_size(header, ctx))
        if hdu.data_start + hdu.data_size > size:
            raise CodecError("file truncated inside a data unit", **ctx)
        hdus.append(hdu)
        offset = hdu.end
    return hdus


def pread_exact(fd: int, n: int, offset: int, ctx: dict) -> bytes:
    """Read exactly ``n`` bytes at ``offset`` or raise CodecError (truncated file).

    A read may return fewer bytes than asked without the file ending (Linux returns at most
    ~2 GB per call): it is continued until ``n`` bytes or the end of the file."""
    data = os.pread(fd, n, offset)
    if len(data) == n:
        return data
    rest = np.empty(n - len(data), np.uint8)
    pread_into(fd, rest, offset + len(data), ctx)
    return data + rest.tobytes()


def pread_into(fd: int, buf: np.ndarray, offset: int, ctx: dict) -> None:
    """Fill the uint8 array ``buf`` from ``offset`` or raise CodecError (truncated file).

    Reading into a reused array spares the allocation and page faults of a new bytes
    object per read (``os.pread``), and slices of it are views, not copies.
    """
    n, done = len(buf), 0
    while done < n:  # Linux returns at most ~2 GB per call
        got = os.preadv(fd, [buf[done:]], offset + done)
        if got <= 0:
            raise CodecError(f"file truncated: wanted {n} bytes at {offset}, got {done}", **ctx)
        done += got


def data_unit(parts: list) -> np.ndarray:
    """The byte strings ``parts`` one after another, zero-padded to whole 2880-byte blocks,
    in one new uint8 array: one copy of each part (a ``b"".join`` and a padded copy of it
    cost two, each into fresh pages)."""
    size = sum(len(p) for p in parts)
    unit = np.empty(padded(size), dtype=np.uint8)
    view, offset = memoryview(unit), 0
    for part in parts:  # one slice assignment per heap block: no Python work per row
        view[offset : offset + len(part)] = part
        offset += len(part)
    unit[offset:] = 0
    return unit


def hdu_header(cards: list[Card], unit, *, checksum: bool) -> bytes:
    """Header bytes for the padded data unit ``unit``, with CHECKSUM/DATASUM if
    ``checksum``."""
    cards = [c for c in cards if c.key not in ("CHECKSUM", "DATASUM")]
    if not checksum:
        return format_header(cards)
    datasum = _checksum.ones_sum(unit)
    cards += [
        Card("CHECKSUM", _checksum.ZERO_CHECKSUM, "HDU checksum"),
        Card("DATASUM", str(datasum), "data unit checksum"),
    ]
    head = format_header(cards)
    value = _checksum.encode_checksum(_checksum.ones_sum(head, datasum))
    at = CARD * (len(cards) - 2)  # every card is 80 bytes: patch the CHECKSUM card in place
    card = format_card(Card("CHECKSUM", value, "HDU checksum")).encode("ascii")
    return head[:at] + card + head[at + CARD :]


def hdu_bytes(cards: list[Card], data: bytes | bytearray, *, checksum: bool) -> bytes:
    """Header + padded data unit, with CHECKSUM/DATASUM cards if ``checksum``."""
    unit = data_unit([data])
    return hdu_header(cards, unit, checksum=checksum) + unit.tobytes()


def verify_hdu(fd: int, hdu: HDU, path: str) -> None:
    """Check CHECKSUM and DATASUM of one HDU; raise CodecError on a mismatch or absence."""
    ctx = {"file": path, "hdu": hdu.index}
    for key in ("CHECKSUM", "DATASUM"):
        if key not in hdu.header:
            raise CodecError(f"no {key} keyword to verify", **ctx)
    data = pread_exact(fd, hdu.end - hdu.data_start, hdu.data_start, ctx)
    datasum = _checksum.ones_sum(data)
    stated = hdu.header["DATASUM"]
    if not isinstance(stated, str) or not stated.strip().isdigit() or int(stated) != datasum:
        raise CodecError(f"DATASUM mismatch: header says {stated!r}, data sum is {datasum}", **ctx)
    head = pread_exact(fd, hdu.data_start - hdu.header_start, hdu.header_start, ctx)
    if _checksum.ones_sum(head, datasum) != 0xFFFFFFFF:
        raise CodecError("CHECKSUM mismatch: the HDU (header or data) was modified", **ctx)
