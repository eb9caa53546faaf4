"""dvo.codecs.direct writes and reads exactly a file's bytes, with O_DIRECT or without.

The truth is the bytes given, read back with Python's ordinary file reads (and written with
ordinary writes for read_range)."""

from __future__ import annotations

import errno
import fcntl
import os

import numpy as np
import pytest
from dvo.codecs import direct
from dvo.codecs.direct import ALIGN

SMALL_CHUNK = 3 * ALIGN  # write_file's chunk, made small so files span several
SIZES = [0, 1, ALIGN - 1, ALIGN, ALIGN + 1, SMALL_CHUNK - 1, SMALL_CHUNK, SMALL_CHUNK + 1,
         2 * SMALL_CHUNK + ALIGN + 7, 100_003]  # fmt: skip


def _bytes(size: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _parts(data: bytes, seed: int) -> list:
    """``data`` cut at random places into bytes, uint8 arrays and memoryviews."""
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.integers(0, len(data) + 1, 4))
    pieces = np.split(np.frombuffer(data, np.uint8), cuts)
    kinds = [bytes, np.copy, memoryview]
    return [kinds[i % 3](p) for i, p in enumerate(pieces)]


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(direct, "CHUNK", SMALL_CHUNK)
    monkeypatch.setattr(direct, "_buffers", type(direct._buffers)())  # a fresh write buffer


def _write_and_check(folder, seed0: int = 0) -> None:
    for i, size in enumerate(SIZES):
        data = _bytes(size, seed0 + i)
        path = folder / f"f{size}.bin"
        path.write_bytes(_bytes(size + 5 * ALIGN + 3, 99))  # longer: must be truncated
        direct.write_file(path, _parts(data, i))
        assert path.read_bytes() == data, size


def test_write_file_gives_the_bytes(tmp_path, small_chunks):
    _write_and_check(tmp_path)


def test_write_file_with_the_real_chunk(tmp_path):
    data = _bytes(2 * direct.CHUNK + ALIGN + 123, 7)
    direct.write_file(tmp_path / "big", _parts(data, 7))
    assert (tmp_path / "big").read_bytes() == data


def test_write_file_without_o_direct(tmp_path, small_chunks, no_o_direct):
    _write_and_check(tmp_path, 20)


@pytest.mark.parametrize("most", [1000, ALIGN, 2 * ALIGN + 5])
def test_short_writes_are_completed(tmp_path, small_chunks, monkeypatch, most):
    """Writes that take fewer bytes than given (aligned or not) still give the whole file;
    after an unaligned one, O_DIRECT refuses the next write and the rest is written the
    ordinary way."""
    real_pwrite, calls = os.pwrite, []

    def short(fd, data, offset):
        calls.append(offset)
        return real_pwrite(fd, memoryview(data)[:most], offset)

    monkeypatch.setattr(os, "pwrite", short)
    _write_and_check(tmp_path, 40)
    assert len(calls) > len(SIZES) * 2


def test_a_write_that_fails_is_reported(tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with pytest.raises(OSError, match="No space"):
        direct.write_file(tmp_path / "f", [b"x" * 10_000])
    with pytest.raises(FileNotFoundError):
        direct.write_file(tmp_path / "no" / "f", [b"x"])


def test_the_direct_path_is_taken_where_allowed(tmp_path, monkeypatch, o_direct):
    real_pwrite, flags = os.pwrite, []

    def record(fd, data, offset):
        flags.append(fcntl.fcntl(fd, fcntl.F_GETFL) & direct.O_DIRECT)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", record)
    data = _bytes(3 * ALIGN + 11, 3)
    direct.write_file(tmp_path / "f", [data])
    assert flags and all(flags)
    assert (tmp_path / "f").read_bytes() == data


@pytest.mark.parametrize("sync", [False, True])
def test_sync_fsyncs_the_file(tmp_path, monkeypatch, sync):
    real_fsync, synced = os.fsync, []

    def record(fd):
        synced.append(os.fstat(fd).st_size)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    direct.write_file(tmp_path / "f", [b"y" * 5000], sync=sync)
    assert synced == ([5000] if sync else [])  # after the cut to size


RANGES = [(0, 0), (0, 1), (5, 100), (ALIGN - 3, 10), (ALIGN, ALIGN), (7, 5 * ALIGN + 1),
          (60_000, 10_000), (69_990, 50), (70_000, 10), (80_000, 10)]  # fmt: skip


def _read_and_check(folder) -> None:
    data = _bytes(70_000, 11)
    path = folder / "r.bin"
    path.write_bytes(data)
    for offset, size in RANGES:
        assert bytes(direct.read_range(path, offset, size)) == data[offset : offset + size]


def test_read_range_gives_the_bytes(tmp_path):
    _read_and_check(tmp_path)
    with pytest.raises(FileNotFoundError):
        direct.read_range(tmp_path / "gone", 0, 10)


def test_read_range_without_o_direct(tmp_path, no_o_direct):
    _read_and_check(tmp_path)


def test_new_files_get_the_mode_open_gives(tmp_path):
    """A group-writable umask (a shared survey database) is honoured as by open()."""
    old = os.umask(0o002)
    try:
        direct.write_file(tmp_path / "direct", [b"x"])
        with open(tmp_path / "plain", "wb") as fh:
            fh.write(b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "direct").stat().st_mode == (tmp_path / "plain").stat().st_mode
