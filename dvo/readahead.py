"""Input files read whole into reused buffers, the next one while this one is processed.

addstar reads each exposure once, whole (~30-200 MB), then turns it into rows. Read through
the page cache, each file costs the kernel fresh cache pages and a copy into the process.
:class:`ReadAhead` reads with ``O_DIRECT`` where the filesystem allows it (the disk writes
straight into a buffer the process reuses; nothing is copied, no cache page is taken), and
reads the next file on a background thread while the current one is parsed, associated and
logged, so the disk's time is not waited for either: the thread spends it waiting, not
computing. In bench/addstar.py (100 exposures, 3.4 GB) reading and parsing took 10.6 s
with the files not cached and 6.0 s cached; with this, 5.2 s and 4.8 s. Where ``O_DIRECT``
is refused (tmpfs, other systems) the file is read the ordinary way into the same buffer.
"""

from __future__ import annotations

import mmap
import os
import stat
from concurrent.futures import Future, ThreadPoolExecutor

from dvo.codecs import direct

__all__ = ["ReadAhead"]


class ReadAhead:
    """Reads whole files into two reused page-aligned buffers.

    :meth:`read` gives a file's bytes as ``(buffer, size)``: the first ``size`` bytes of the
    buffer are the file's (the buffer may be longer). They stay valid until the next
    :meth:`read`. :meth:`prefetch` starts reading a file in the background, into the other
    buffer; a :meth:`read` of that file then takes it. A file changed since its prefetch is
    read again. Use as a context manager (or :meth:`close`) to stop the thread.

    Examples
    --------
    >>> import tempfile
    >>> path = os.path.join(tempfile.mkdtemp(), "a.bin")
    >>> with open(path, "wb") as fh:
    ...     _ = fh.write(b"SIMPLE  =" * 1000)
    >>> with ReadAhead() as files:
    ...     files.prefetch(path)
    ...     buf, size = files.read(path)
    ...     size, buf[:9]
    (9000, b'SIMPLE  =')
    """

    def __init__(self) -> None:
        self._buffers: list[mmap.mmap | None] = [None, None]
        self._last = 0  # the buffer the last read returned
        self._pool: ThreadPoolExecutor | None = None
        self._pending: tuple[str, tuple, int, Future] | None = None  # path, stat, slot, read

    def read(self, path: str | os.PathLike) -> tuple[mmap.mmap, int]:
        """The bytes of ``path`` (OSError as ``open`` and ``read`` raise it)."""
        name = os.fspath(path)
        pending, self._pending = self._pending, None
        if pending is not None:
            got = _result(pending[3])  # its buffer is free only once the thread is done
            if got is not None and pending[0] == name and _identity(name) == pending[1]:
                self._last = pending[2]
                return self._buffers[pending[2]], got
        got = self._read(name, self._last)
        return self._buffers[self._last], got

    def prefetch(self, path: str | os.PathLike) -> None:
        """Start reading ``path`` in the background (a missing or unreadable file is left
        for :meth:`read` to report)."""
        name = os.fspath(path)
        if self._pending is not None:
            _result(self._pending[3])
        identity = _identity(name)
        if identity is None:
            self._pending = None
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(1, thread_name_prefix="dvo-readahead")
        slot = 1 - self._last
        self._pending = (name, identity, slot, self._pool.submit(self._read, name, slot))

    def close(self) -> None:
        """Wait for a background read, and stop the thread."""
        if self._pending is not None:
            _result(self._pending[3])
            self._pending = None
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> ReadAhead:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _read(self, name: str, slot: int) -> int:
        """Read file ``name`` into buffer ``slot``; the number of bytes read (fewer than
        its size only if it shrank meanwhile)."""
        fd, is_direct = direct.open_file(name, os.O_RDONLY | os.O_NONBLOCK)
        try:
            size = os.fstat(fd).st_size
            with memoryview(self._buffer(slot, size)) as view:
                return direct.read_into(fd, view, size, is_direct)
        finally:
            os.close(fd)

    def _buffer(self, slot: int, size: int) -> mmap.mmap:
        self._buffers[slot] = direct.grown(self._buffers[slot], size)
        return self._buffers[slot]


def _result(future: Future) -> int | None:
    """The bytes a background read got, or None if it failed."""
    try:
        return future.result()
    except OSError:
        return None


def _identity(name: str) -> tuple | None:
    """What says a file is still the one a prefetch read (None: no such regular file; a
    FIFO, say, is not read ahead: opening it would wait for a writer)."""
    try:
        st = os.stat(name)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode):
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns
