"""Shared fixtures for the dvo.codecs tests: seeded tables, the cfitsio tools, sample files."""

from __future__ import annotations

import pathlib
import shutil
import subprocess
import types
import zlib

import numpy as np
import pytest

SAMPLES = pathlib.Path("/work/shared/reference/fpack-samples")
HAVE_FPACK = shutil.which("fpack") is not None and shutil.which("funpack") is not None

# dtype name -> maker(rng, n); realistic spreads so every codec sees non-trivial data
MAKERS = {
    "bool": lambda rng, n: rng.integers(0, 2, n).astype(bool),
    "uint8": lambda rng, n: rng.integers(0, 256, n).astype(np.uint8),
    "int8": lambda rng, n: rng.integers(-128, 128, n).astype(np.int8),
    "int16": lambda rng, n: rng.integers(-3000, 3000, n).astype(np.int16),
    "uint16": lambda rng, n: rng.integers(0, 65536, n).astype(np.uint16),
    "int32": lambda rng, n: np.cumsum(rng.integers(-5, 50, n)).astype(np.int32),
    "uint32": lambda rng, n: rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32),
    "int64": lambda rng, n: rng.integers(-(2**62), 2**62, n),
    "float32": lambda rng, n: rng.normal(18, 2, n).astype(np.float32),
    "float64": lambda rng, n: rng.uniform(0, 360, n),
    "S8": lambda rng, n: np.array([b"obj%05d" % v for v in rng.integers(0, 99999, n)], dtype="S8"),
    "vec3f": lambda rng, n: rng.normal(size=(n, 3)).astype(np.float32),
    "vec2i": lambda rng, n: rng.integers(-1000, 1000, (n, 2)).astype(np.int32),
}


def make_table(rng: np.random.Generator, n: int, kinds=None) -> dict[str, np.ndarray]:
    """A dict of columns, one per dtype kind (all kinds by default)."""
    return {k: MAKERS[k](rng, n) for k in (kinds or MAKERS)}


def assert_same(got: np.ndarray, want: dict | np.ndarray, names=None) -> None:
    """Field-by-field equality (NaN equal to NaN, bytes compared exactly)."""
    for name in names or (want.dtype.names if isinstance(want, np.ndarray) else want):
        a, b = np.asarray(got[name]), np.asarray(want[name])
        assert a.shape == b.shape, name
        if a.dtype.kind == "f":
            assert np.array_equal(a, b, equal_nan=True), name
        else:
            assert (a == b).all(), name


def run_tool(*args: str) -> subprocess.CompletedProcess:
    """Run fpack/funpack with a list of arguments (never through a shell)."""
    return subprocess.run(list(args), capture_output=True, text=True, timeout=120)


@pytest.fixture
def rng(request) -> np.random.Generator:
    """A generator seeded from the test name, so each test is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


@pytest.fixture(scope="session")
def helpers() -> types.SimpleNamespace:
    """Helper functions (conftest is not importable under --import-mode=importlib)."""
    return types.SimpleNamespace(
        make_table=make_table,
        assert_same=assert_same,
        run_tool=run_tool,
        samples=SAMPLES,
        makers=MAKERS,
    )


@pytest.fixture
def cfitsio() -> None:
    """Skip the test when the cfitsio tools are not installed."""
    if not HAVE_FPACK:
        pytest.skip("fpack/funpack not installed")
