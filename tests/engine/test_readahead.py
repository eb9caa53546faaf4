"""ReadAhead gives exactly a file's bytes, read now or ahead, with O_DIRECT or without."""

from __future__ import annotations

import os

import numpy as np
import pytest
from dvo.codecs import direct
from dvo.codecs.direct import ALIGN

from dvo.readahead import ReadAhead

SIZES = [0, 1, 9, ALIGN - 1, ALIGN, ALIGN + 1, 5 * ALIGN, 300_000, 1_000_003]


def _write(path, size: int, seed: int) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    return data


def _got(files: ReadAhead, path) -> bytes:
    buf, size = files.read(path)
    return bytes(buf[:size])


def test_read_now_and_ahead_give_the_file(tmp_path):
    paths = [tmp_path / f"f{size}.bin" for size in SIZES]
    truth = [_write(p, size, i) for i, (p, size) in enumerate(zip(paths, SIZES, strict=True))]
    with ReadAhead() as files:
        for p, data in zip(paths, truth, strict=True):  # no read ahead: the buffer is reused
            assert _got(files, p) == data
        for i, (p, data) in enumerate(zip(paths, truth, strict=True)):  # each next one ahead
            assert _got(files, p) == data
            if i + 1 < len(paths):
                files.prefetch(paths[i + 1])
        for p, data in zip(paths[::-1], truth[::-1], strict=True):  # large to small
            files.prefetch(p)
            assert _got(files, p) == data


def test_a_read_is_not_changed_by_the_next_prefetch(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    data_a, data_b = _write(a, 200_000, 1), _write(b, 200_000, 2)
    with ReadAhead() as files:
        buf, size = files.read(a)
        files.prefetch(b)
        files.close()  # the background read is done: it went to the other buffer
        assert bytes(buf[:size]) == data_a
        assert _got(files, b) == data_b


def test_prefetch_of_another_file_changed_or_missing(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    data_a, data_b = _write(a, 70_000, 1), _write(b, 50_000, 2)
    with ReadAhead() as files:
        files.prefetch(a)
        assert _got(files, b) == data_b  # the read ahead of ``a`` is not taken
        files.prefetch(a)
        os.utime(a, ns=(1, 1))
        data_a = _write(a, 90_000, 3)  # rewritten after the prefetch
        os.utime(a, ns=(2, 2))
        assert _got(files, a) == data_a
        gone = tmp_path / "gone"
        _write(gone, 10_000, 4)
        files.prefetch(gone)
        gone.unlink()
        with pytest.raises(FileNotFoundError):
            files.read(gone)
        files.prefetch(tmp_path / "never")  # nothing to read ahead; reading says so
        with pytest.raises(FileNotFoundError):
            files.read(tmp_path / "never")
        assert _got(files, a) == data_a


def test_a_fifo_is_not_read_ahead(tmp_path):
    """Opening a FIFO waits for a writer: the background thread must not (addstar reports
    a FIFO as no file at its turn, and goes on to the next file)."""
    import threading

    fifo, a = tmp_path / "fifo", tmp_path / "a"
    os.mkfifo(fifo)
    data = _write(a, 30_000, 7)
    result = []

    def work():
        with ReadAhead() as files:
            files.prefetch(fifo)
            result.append(_got(files, a))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    thread.join(20)
    assert result == [data]


def test_without_o_direct(tmp_path, no_o_direct):
    """A filesystem that refuses O_DIRECT (tmpfs) is read the ordinary way."""
    paths = [tmp_path / f"f{size}.bin" for size in SIZES]
    truth = [_write(p, size, i) for i, (p, size) in enumerate(zip(paths, SIZES, strict=True))]
    with ReadAhead() as files:
        for i, (p, data) in enumerate(zip(paths, truth, strict=True)):
            assert _got(files, p) == data
            if i + 1 < len(paths):
                files.prefetch(paths[i + 1])


@pytest.mark.parametrize("chunk", [1000, ALIGN, 3 * ALIGN + 5])
def test_short_direct_reads_are_completed(tmp_path, monkeypatch, chunk):
    """Reads that return less than asked (aligned or not) still give the whole file."""
    real_preadv = os.preadv
    calls = []

    def short(fd, buffers, offset):
        calls.append(offset)
        view = buffers[0][:chunk]
        return real_preadv(fd, [view], offset)

    monkeypatch.setattr(os, "preadv", short)
    path = tmp_path / "f.bin"
    data = _write(path, 20 * ALIGN + 123, 5)
    with ReadAhead() as files:
        assert _got(files, path) == data
    assert len(calls) > 1


def test_the_direct_path_is_taken_where_allowed(tmp_path, monkeypatch, o_direct):
    path = tmp_path / "f.bin"
    data = _write(path, 3 * ALIGN + 7, 6)
    taken = []
    real = direct.read_into
    monkeypatch.setattr(
        direct, "read_into", lambda fd, v, n, d: (d and taken.append(1)) or real(fd, v, n, d)
    )
    with ReadAhead() as files:
        assert _got(files, path) == data
    assert taken
