"""Benchmark of the query engine against LSDB (same data, exported as HATS) and astropy.

Run: ``python bench/query.py [--db DIR] [--objects 2000000] [--epochs 4] [--inputs 1000000]
[--lsdb-python PYTHON]``. Builds (once) a simulated database with ``dvo.tools.querydata``: a
60 x 30 deg patch at RA 180 with ``--objects`` objects in g, r, i at ``--epochs`` epochs (10.8
measurements per object on average), GSC level-3 partitions. Then, in one run:

- cone latency for radii 1 arcmin, 10 arcmin, 1 deg: cold (a new Python process: imports,
  opening, first query) and warm (same process, 15 random centres, median and p90), with
  ``dvo`` and with LSDB on the HATS export (``lsdb.open_catalog(...).cone_search``);
- a lightcurve fetch by object id (warm median over 15 random objects);
- a crossmatch of ``--inputs`` positions (70 % within 0.3 arcsec of an object, 30 % random) at
  1 arcsec: ``db.crossmatch``, astropy ``match_to_catalog_sky`` on all objects, and LSDB
  ``crossmatch`` (KD-tree, with the margin catalogue dvo exports); the matched pairs of the three
  are compared.

LSDB is not a dependency of dvo: give ``--lsdb-python`` an interpreter that has it (e.g. a
venv made with ``--system-site-packages`` and ``pip install lsdb``); its part runs there in a
subprocess. Wall-clock times on a shared machine: the load average is printed with the results.
Not a test: the figures go to bench/query_results.md.
"""

# ruff: noqa: E501 - the report builds long Markdown table rows

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

RADII = {"1 arcmin": 1 / 60, "10 arcmin": 10 / 60, "1 deg": 1.0}
PATCH = (150.0, 210.0, -15.0, 15.0)


def build(path: Path, n: int, epochs: int) -> float:
    """Build the benchmark database if absent; seconds spent (0 when it existed)."""
    if (path / "dvo.json").exists():
        return 0.0
    from dvo.tools.querydata import build_database, patch_positions

    t = time.perf_counter()
    ra, dec = patch_positions(n, np.random.default_rng(3), *PATCH)
    build_database(path, ra, dec, n_epochs=epochs)
    return time.perf_counter() - t


def centres(rng, k: int, margin: float = 2.0):
    ra = rng.uniform(PATCH[0] + margin, PATCH[1] - margin, k)
    dec = rng.uniform(PATCH[2] + margin, PATCH[3] - margin, k)
    return ra, dec


COLD = """
import time, sys
t = time.perf_counter()
import dvo
db = dvo.open(sys.argv[1])
n = len(db.cone(float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])))
print(time.perf_counter() - t, n)
"""


def cold_cones(db_path: Path, rng) -> dict:
    """First query in a new process (imports included, interpreter start excluded)."""
    out = {}
    for name, r in RADII.items():
        ra, dec = centres(rng, 3)
        times = []
        for a, d in zip(ra, dec, strict=True):
            args = [sys.executable, "-c", COLD, str(db_path), str(a), str(d), str(r)]
            res = subprocess.run(args, capture_output=True, text=True, check=True)
            times.append(float(res.stdout.split()[0]))
        t = time.perf_counter()
        subprocess.run(
            [
                "dvo",
                "cone",
                "-D",
                str(db_path),
                str(ra[0]),
                str(dec[0]),
                str(r),
                "-q",
                "--format",
                "csv",
            ],
            capture_output=True,
            check=True,
        )
        out[name] = {"median": float(np.median(times)), "cli_wall": time.perf_counter() - t}
    return out


def warm_cones(db, rng) -> dict:
    out = {}
    db.cone(180.0, 0.0, 0.01)
    for name, r in RADII.items():
        ra, dec = centres(rng, 15)
        for a, d in zip(ra, dec, strict=True):  # first touch of each partition: not timed
            db.cone(a, d, r)
        times, rows = [], []
        for a, d in zip(ra, dec, strict=True):
            t = time.perf_counter()
            rows.append(len(db.cone(a, d, r)))
            times.append(time.perf_counter() - t)
        out[name] = {
            "median": float(np.median(times)),
            "p90": float(np.percentile(times, 90)),
            "rows": float(np.mean(rows)),
            "centres": [ra.tolist(), dec.tolist()],
        }
    return out


def lightcurves(db, rng) -> dict:
    ids = np.asarray(db.cone(180.0, 0.0, 1.0, columns="obj_id")["obj_id"])
    pick = rng.choice(ids, 15, replace=False)
    for oid in pick:
        db.lightcurve(int(oid))
    times, rows = [], []
    for oid in pick:
        t = time.perf_counter()
        rows.append(len(db.lightcurve(int(oid))))
        times.append(time.perf_counter() - t)
    return {"median": float(np.median(times)), "rows": float(np.mean(rows))}


def inputs(db, n: int, rng, tmp: Path) -> Path:
    """``n`` input positions (70 % near objects) as Parquet with columns id, ra, dec."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    objs = db.sky(columns=["ra", "dec"], output="numpy")
    k = int(0.7 * n)
    pick = rng.integers(0, len(objs), k)
    off = rng.normal(0, 0.3 / 3600, (2, k))
    ra = np.mod(objs["ra"][pick] + off[0] / np.cos(np.radians(objs["dec"][pick])), 360)
    dec = objs["dec"][pick] + off[1]
    rra, rdec = centres(rng, n - k, margin=0.0)
    path = tmp / "inputs.parquet"
    t = pa.table({"id": np.arange(n), "ra": np.r_[ra, rra], "dec": np.r_[dec, rdec]})
    pq.write_table(t, path)
    return path


def dvo_crossmatch(db, path: Path, radius: float) -> tuple[float, set]:
    from dvo.query import scan

    scan._position_cache.clear()  # as in a new process (the OS file cache stays warm for all)
    t = time.perf_counter()
    m = db.crossmatch(str(path), radius, output="numpy")
    sec = time.perf_counter() - t
    hit = m["obj_id"] >= 0
    return sec, set(zip(m["id"][hit].tolist(), m["obj_id"][hit].tolist(), strict=True))


def astropy_crossmatch(db, path: Path, radius: float) -> tuple[float, float, set]:
    import pyarrow.parquet as pq
    from astropy import units as u
    from astropy.coordinates import SkyCoord

    t = time.perf_counter()
    objs = db.sky(columns=["obj_id", "ra", "dec"], output="numpy")
    inp = pq.read_table(path).to_pydict()
    load = time.perf_counter() - t
    t = time.perf_counter()
    cat = SkyCoord(objs["ra"] * u.deg, objs["dec"] * u.deg)
    pts = SkyCoord(np.asarray(inp["ra"]) * u.deg, np.asarray(inp["dec"]) * u.deg)
    idx, sep, _ = pts.match_to_catalog_sky(cat)
    sec = time.perf_counter() - t
    hit = sep.arcsec <= radius
    ids = np.asarray(inp["id"])[hit]
    return sec, load, set(zip(ids.tolist(), objs["obj_id"][idx[hit]].tolist(), strict=True))


LSDB = r"""
import json, sys, time, warnings
import numpy as np, pandas as pd
import lsdb
warnings.simplefilter("ignore")
hats, margin, inputs, radius, centres, out = sys.argv[1:7]
radius = float(radius)
res = {}
t = time.perf_counter()
cat = lsdb.open_catalog(hats, margin_cache=margin, columns=["obj_id", "ra", "dec"])
res["open"] = time.perf_counter() - t
cones = {}
for name, spec in json.loads(centres).items():
    r, ra, dec = spec
    cat.cone_search(ra[0], dec[0], r * 3600).compute()
    times = []
    for a, d in zip(ra, dec):
        t = time.perf_counter()
        cat.cone_search(a, d, r * 3600).compute()
        times.append(time.perf_counter() - t)
    cones[name] = float(np.median(times))
res["cones"] = cones
df = pd.read_parquet(inputs)
t = time.perf_counter()
left = lsdb.from_dataframe(df, ra_column="ra", dec_column="dec")
res["from_dataframe"] = time.perf_counter() - t
t = time.perf_counter()
m = left.crossmatch(cat, radius_arcsec=radius, n_neighbors=1, suffixes=("_in", "")).compute()
res["crossmatch"] = time.perf_counter() - t
cols = list(m.columns)
idc = [c for c in cols if c.startswith("id")][0]
objc = [c for c in cols if c.startswith("obj_id")][0]
pd.DataFrame({"id": m[idc].to_numpy(), "obj_id": m[objc].to_numpy()}).to_parquet(out)
print(json.dumps(res))
"""


def lsdb_part(python: str, db, export_dir: Path, inp: Path, radius: float, warm: dict, tmp: Path):
    """Export to HATS (timed), then run LSDB in its own interpreter; (figures, pairs)."""
    import pyarrow.parquet as pq

    from dvo.query.export import export

    t = time.perf_counter()
    export(
        db,
        export_dir,
        tables_=("objects",),
        columns={"objects": "obj_id,ra,dec"},
        margin_arcsec=radius,
    )
    sec = time.perf_counter() - t
    spec = {k: [RADII[k], *v["centres"]] for k, v in warm.items()}
    out = tmp / "lsdb_matches.parquet"
    args = [
        python,
        "-c",
        LSDB,
        str(export_dir / "objects"),
        str(export_dir / "objects_margin"),
        str(inp),
        str(radius),
        json.dumps(spec),
        str(out),
    ]
    res = subprocess.run(args, capture_output=True, text=True)
    if res.returncode != 0:
        print(res.stderr[-3000:], file=sys.stderr)
        return {"export": sec, "error": res.stderr.strip().splitlines()[-1]}, set()
    figures = json.loads(res.stdout.strip().splitlines()[-1])
    figures["export"] = sec
    m = pq.read_table(out).to_pydict()
    return figures, set(zip(m["id"], m["obj_id"], strict=True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", default=os.path.join(tempfile.gettempdir(), "dvo-bench-query"))
    ap.add_argument("--objects", type=int, default=2_000_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--inputs", type=int, default=1_000_000)
    ap.add_argument("--radius", type=float, default=1.0, help="crossmatch radius, arcsec")
    ap.add_argument("--lsdb-python", default=None)
    ap.add_argument("--out", default=str(Path(__file__).with_name("query_results.md")))
    a = ap.parse_args()
    import dvo

    rng = np.random.default_rng(7)
    db_path = Path(a.db)
    built = build(db_path, a.objects, a.epochs)
    db = dvo.open(db_path)
    st = db.stats()
    r = {
        "objects": int(st["NAVERAGE"].sum()),
        "measures": int(st["NMEASURE"].sum()),
        "partitions": int((st["NAVERAGE"] > 0).sum()),
        "build": built,
    }
    r["cold"] = cold_cones(db_path, rng)
    r["warm"] = warm_cones(db, rng)
    r["lightcurve"] = lightcurves(db, rng)
    with tempfile.TemporaryDirectory(dir=db_path.parent) as tmp:
        tmp = Path(tmp)
        inp = inputs(db, a.inputs, rng, tmp)
        r["dvo_xm"], dvo_pairs = dvo_crossmatch(db, inp, a.radius)
        r["astropy_xm"], r["astropy_load"], ast_pairs = astropy_crossmatch(db, inp, a.radius)
        r["lsdb"], lsdb_pairs = {}, set()
        if a.lsdb_python:
            r["lsdb"], lsdb_pairs = lsdb_part(
                a.lsdb_python, db, tmp / "hats", inp, a.radius, r["warm"], tmp
            )
        r["pairs"] = {
            "dvo": len(dvo_pairs),
            "astropy": len(ast_pairs),
            "lsdb": len(lsdb_pairs),
            "dvo==astropy": dvo_pairs == ast_pairs,
            "dvo==lsdb": dvo_pairs == lsdb_pairs if a.lsdb_python else None,
            "dvo-lsdb": len(dvo_pairs - lsdb_pairs),
            "lsdb-dvo": len(lsdb_pairs - dvo_pairs),
        }
    r["load"] = os.getloadavg()
    text = report(r, a)
    print(text)
    Path(a.out).write_text(text)


def _ms(x) -> str:
    return f"{1000 * x:.1f} ms"


def report(r: dict, a) -> str:
    lx = r["lsdb"]
    lines = [
        "# Query benchmark (bench/query.py)",
        "",
        f"Database: {r['objects']:,} objects, {r['measures']:,} measurements, "
        f"{r['partitions']} partitions (GSC level 3, 60x30 deg patch). "
        f"Load average during the run: {', '.join(f'{x:.1f}' for x in r['load'])} on 2 cores.",
        "",
        "## Cone search latency (default columns, astropy Table out)",
        "",
        "| radius | rows | dvo cold (new process) | `dvo cone` CLI wall | dvo warm median | dvo warm p90 | LSDB warm median |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in RADII:
        c, w = r["cold"][name], r["warm"][name]
        lc = lx.get("cones", {}).get(name)
        lines.append(
            f"| {name} | {w['rows']:.0f} | {_ms(c['median'])} | {_ms(c['cli_wall'])} | "
            f"{_ms(w['median'])} | {_ms(w['p90'])} | {_ms(lc) if lc else 'n/a'} |"
        )
    lines += [
        "",
        f"Lightcurve by object id (warm, {r['lightcurve']['rows']:.1f} measurements): "
        f"median {_ms(r['lightcurve']['median'])}.",
        "",
        f"## Crossmatch of {a.inputs:,} positions at {a.radius} arcsec (nearest object)",
        "",
        "| engine | seconds | matches | notes |",
        "|---|---|---|---|",
        f"| dvo `db.crossmatch` | {r['dvo_xm']:.2f} | {r['pairs']['dvo']:,} | reads the input file, all partitions, 2 jobs |",
        f"| astropy `match_to_catalog_sky` | {r['astropy_xm']:.2f} | {r['pairs']['astropy']:,} | + {r['astropy_load']:.2f} s to load all objects from dvo |",
    ]
    if "crossmatch" in lx:
        lines.append(
            f"| LSDB `crossmatch` (KD-tree, with margin) | {lx['crossmatch']:.2f} | {r['pairs']['lsdb']:,} | + {lx['from_dataframe']:.2f} s `from_dataframe`, HATS export {lx['export']:.1f} s |"
        )
        lines.append("")
        lines.append(
            f"Speed-up over LSDB: {lx['crossmatch'] / r['dvo_xm']:.1f}x (crossmatch only), "
            f"{(lx['crossmatch'] + lx['from_dataframe']) / r['dvo_xm']:.1f}x (including partitioning the input)."
        )
    elif lx.get("error"):
        lines.append(f"| LSDB | failed: {lx['error']} | | |")
    lines += [
        "",
        f"Identical matches: dvo == astropy: {r['pairs']['dvo==astropy']}; "
        f"dvo == LSDB: {r['pairs']['dvo==lsdb']} (only dvo {r['pairs']['dvo-lsdb']}, only LSDB {r['pairs']['lsdb-dvo']}).",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
