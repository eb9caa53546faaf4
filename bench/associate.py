"""Benchmark association alone: addstar's associate_batch per file, against the matching it
replaced (all objects of the touched partitions concatenated, then Matcher.match), in the
same run on the same partition states; the two must find the same objects.

The files are the two passes over a strip of bench/addstar.py (simulated if missing); the
time per detection of the new path should follow the file, not the partitions it touches.

    python bench/associate.py [--files 15] [--exposures 100] [--density 14000]
        [--out /tmp/dvo-bench-addstar]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=15, help="files of each pass")
    ap.add_argument("--exposures", type=int, default=100)
    ap.add_argument("--density", type=float, default=14000.0)
    ap.add_argument("--out", type=Path, default=Path("/tmp/dvo-bench-addstar"))
    args = ap.parse_args()

    import dvo.ingest as ingest
    from dvo.associate import Matcher, associate_batch
    from dvo.database import create_database

    smf_dir = args.out / f"smf-{args.exposures}-{int(args.density)}"
    files = sorted(smf_dir.glob("*.smf"))
    if len(files) < args.exposures:
        sys.path.insert(0, str(Path(__file__).parent))
        from addstar import simulate

        shutil.rmtree(smf_dir, ignore_errors=True)
        files, _, _ = simulate(smf_dir, args.exposures, args.density)
    half = len(files) // 2
    chosen = files[: args.files] + files[half : half + args.files]
    db_path = args.out / "db-associate"
    shutil.rmtree(db_path, ignore_errors=True)
    db = create_database(db_path, filters=("g", "r", "i", "z", "y"), compression="none")
    rows = []  # (pass, detections, new seconds, former seconds)

    def timed(db, source, batch, ids, matcher, prefetch=None):
        t = time.perf_counter()
        delta, counts = associate_batch(db, source, batch, ids, matcher, prefetch)
        t_new = time.perf_counter() - t
        # the former path on the same states (the Delta is not applied yet)
        m = batch.measure
        t = time.perf_counter()
        home = db.skytable.lookup(m["RA"], m["DEC"])
        _, near = db.skytable.near(m["RA"], m["DEC"], 2 * matcher.radius / 3600.0)
        touched = np.union1d(near, home)
        states = [source(int(i)) for i in touched]
        ora = np.concatenate([s.average["RA"] for s in states])
        odec = np.concatenate([s.average["DEC"] for s in states])
        idx, _ = Matcher(matcher.radius).match(m["RA"], m["DEC"], ora, odec)
        t_old = time.perf_counter() - t
        matched = int((idx >= 0).sum())
        assert matched == counts["matched"] + counts["blends"], "the two paths disagree"
        rows.append((len(rows) >= args.files, len(m), t_new, t_old))
        return delta, counts

    ingest.associate_batch = timed
    ingest.addstar(db, chosen)
    print(f"{'pass':>4} {'files':>5} {'detections':>10} {'ns/det':>8} {'former match':>13}")
    for second in (False, True):
        sel = [r for r in rows[1:] if r[0] == second]  # the first file compiles
        n = sum(r[1] for r in sel)
        new = sum(r[2] for r in sel) / n * 1e9
        old = sum(r[3] for r in sel) / n * 1e9
        print(f"{int(second) + 1:>4} {len(sel):>5} {n:>10} {new:>8.0f} {old:>13.0f}")
    print("ns/det: associate_batch (lookup, match, one per image, rows per partition);")
    print("former match: lookup, concatenation and Matcher.match alone, on the same states")


if __name__ == "__main__":
    main()
