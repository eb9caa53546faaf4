"""Benchmark of dvo.codecs.write_table on wide structured tables, against a baseline revision.

Run: ``python bench/codecs_write.py [--repeat R] [--base REV] [--db DIR/PART]``. Writes the
three wide tables addstar checkpoints (Average .cpt 192 B/row, SecFilt .cps 176 B/row,
Measure .cpm 240 B/row) with ``compression="ZSTD"`` and ``"default"``, tile_rows=10000, once
with the working tree's dvo.codecs ("new") and once with the dvo.codecs of git revision
``--base`` ("old", loaded from ``git archive`` as a second package in this process), taking
turns (each first in alternate rounds) so both see the same machine load. Prints MB/s of
raw (in-memory) bytes, best of ``--repeat`` by wall and by CPU time, and checks that both
write the same file bytes. ``--base HEAD`` with a clean tree measures the noise: on the
shared 2-core machine (load ~2) identical code came out 0.86-1.14x on single runs.

The tables are read from an addstar benchmark database when present (``--db``, default
``/tmp/dvo-bench-addstar/db/n1500/1292``); otherwise they are simulated (SecFilt mostly
NaN/constant with a few real float columns, Measure and Average with real floats and ints).
Not a test: the figures go to bench/codecs_write_results.md.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

import numpy as np
from dvo.codecs import read_table, write_table

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
BASE_REV = "4b32cf9"  # the last commit before the fused write path
TABLES = {"Average": "cpt", "SecFilt": "cps", "Measure": "cpm"}
COMPRESSIONS = ["ZSTD", "default"]
TILE_ROWS = 10000


def load_base(rev: str, workdir: str):
    """dvo.codecs as of git revision ``rev``, imported as the package ``_codecs_base``."""
    blob = subprocess.run(
        ["git", "-C", REPO, "archive", rev, "codecs"], check=True, capture_output=True
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(blob)) as tar:
        tar.extractall(workdir, filter="data")
    root = os.path.join(workdir, "codecs")
    spec = importlib.util.spec_from_file_location(
        "_codecs_base", os.path.join(root, "__init__.py"), submodule_search_locations=[root]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules["_codecs_base"] = module
    spec.loader.exec_module(module)
    return module


def simulate(name: str, nrows: int, seed: int = 1) -> np.ndarray:
    """A table shaped like the real one: SecFilt mostly NaN/constant, others real values."""
    rng = np.random.default_rng(seed)
    dtypes = {
        "Average": [("RA", "f8"), ("DEC", "f8")]
        + [(f"F{i}", "f4") for i in range(30)]
        + [(f"I{i}", "i4") for i in range(8)]
        + [(f"H{i}", "u2") for i in range(6)]
        + [("TESS_ID", "S1"), ("SKYCELL_ID", "S1"), ("P", "i2"), ("N", "i2")]
        + [("FLAGS", "u4"), ("OBJ_ID", "u4"), ("CAT_ID", "u4"), ("EXT_ID", "i8")],
        "SecFilt": [(f"F{i}", "f4") for i in range(36)]
        + [(f"H{i}", "i2") for i in range(12)]
        + [("FLAGS", "u4"), ("I0", "i4"), ("I1", "i4")],
        "Measure": [("RA", "f8"), ("DEC", "f8")]
        + [(f"F{i}", "f4") for i in range(36)]
        + [(f"U{i}", "u4") for i in range(8)]
        + [("EXT_ID", "i8"), ("TIME", "i4"), ("PSF_NDOF", "i4"), ("PSF_NPIX", "i4")]
        + [(f"H{i}", "i2") for i in range(10)]
        + [("TIME_MSEC", "u2"), ("PHOTCODE", "u2"), ("PLTSCALE", "f4"), ("PADDING", "i4")],
    }[name]
    out = np.zeros(nrows, dtype=dtypes)
    obj = np.sort(rng.integers(0, max(nrows // 20, 1), nrows))
    for k, (field, dt) in enumerate(dtypes):
        kind = np.dtype(dt).kind
        if name == "SecFilt" and kind == "f" and k >= 6:
            out[field] = np.nan  # unobserved slots and stack/warp photometry
        elif name == "SecFilt" and kind in "iu" and k % 3:
            out[field] = 0
        elif field in ("RA", "DEC"):
            out[field] = 200.0 + obj * 1e-4 + rng.normal(0, 1e-5, nrows)
        elif kind == "f":
            out[field] = rng.normal(18, 2, nrows)
        elif kind in "iu":
            hi = min(np.iinfo(dt).max, 100000)
            out[field] = (obj + rng.integers(0, hi // 2, nrows)) % hi
        else:
            out[field] = b"a"
    return out


def tables(db: str, rows: int | None) -> dict[str, np.ndarray]:
    out = {}
    for name, ext in TABLES.items():
        path = f"{db}.{ext}"
        if os.path.exists(path):
            out[name] = read_table(path)
        else:
            out[name] = simulate(name, rows or 200000)
        if rows:
            out[name] = np.resize(out[name], rows) if len(out[name]) < rows else out[name][:rows]
    return out


def best(func, repeat: int) -> tuple[float, float]:
    """(best wall seconds, best CPU seconds) of ``repeat`` calls."""
    wall, cpu = [], []
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        func()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return min(wall), min(cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--base", default=BASE_REV, help="git revision of the old dvo.codecs")
    parser.add_argument("--db", default="/tmp/dvo-bench-addstar/db/n1500/1292")
    parser.add_argument("--rows", type=int, default=None, help="rows per table (resized)")
    parser.add_argument("--out", default=None, help="output folder (default: a temp folder)")
    parser.add_argument("--tables", nargs="+", default=list(TABLES), choices=list(TABLES))
    parser.add_argument("--compressions", nargs="+", default=COMPRESSIONS)
    args = parser.parse_args(argv)
    workdir = tempfile.mkdtemp(prefix="dvo_bench_codecs_write_", dir=args.out)
    try:
        base = load_base(args.base, workdir)
        data = tables(args.db, args.rows)
        real = all(os.path.exists(f"{args.db}.{e}") for e in TABLES.values())
        print(
            f"tables: {'from ' + args.db if real else 'simulated'}; tile {TILE_ROWS} rows; "
            f"best of {args.repeat}; old = dvo.codecs at {args.base}; cpus {os.cpu_count()}; "
            f"load average {os.getloadavg()[0]:.1f}\n"
        )
        print(
            "| table | rows | MB | compression | ratio | old MB/s (wall/cpu) | "
            "new MB/s (wall/cpu) | speed-up (wall/cpu) | same bytes |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for name, arr in data.items():
            if name not in args.tables:
                continue
            mb = arr.nbytes / 1e6
            for comp in args.compressions:
                p_old = os.path.join(workdir, f"old_{name}_{comp}.fits")
                p_new = os.path.join(workdir, f"new_{name}_{comp}.fits")

                def old(p=p_old, a=arr, c=comp):
                    base.write_table(p, a, compression=c, tile_rows=TILE_ROWS)

                def new(p=p_new, a=arr, c=comp):
                    write_table(p, a, compression=c, tile_rows=TILE_ROWS)

                old(), new()  # warm up (numba compile / cache load, page cache)
                t_old, t_new = [], []
                for k in range(args.repeat):  # take turns (first in alternate rounds)
                    if k % 2:
                        t_new.append(best(new, 1))
                        t_old.append(best(old, 1))
                    else:
                        t_old.append(best(old, 1))
                        t_new.append(best(new, 1))
                ow, oc = min(t[0] for t in t_old), min(t[1] for t in t_old)
                nw, nc = min(t[0] for t in t_new), min(t[1] for t in t_new)
                with open(p_old, "rb") as f1, open(p_new, "rb") as f2:
                    same = f1.read() == f2.read()
                ratio = arr.nbytes / os.path.getsize(p_new)
                print(
                    f"| {name} | {len(arr)} | {mb:.1f} | {comp} | {ratio:.2f} | "
                    f"{mb / ow:.0f} / {mb / oc:.0f} | {mb / nw:.0f} / {mb / nc:.0f} | "
                    f"{ow / nw:.2f}x / {oc / nc:.2f}x | {'yes' if same else 'NO'} |"
                )
                sys.stdout.flush()
        print(f"\nload average at the end {os.getloadavg()[0]:.1f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
