"""Benchmark of dvo.skytable: point lookups against healpy.ang2pix, near(), region lookups.

Run ``python bench/skytable.py [--points N]``; it prints a Markdown report (copied into
bench/skytable_results.md). Rates are ratios against healpy measured in the same run on
the same points, because the machines are shared and absolute times drift.
"""

from __future__ import annotations

import argparse
import time

import healpy as hp
import numpy as np
from dvo.skytable import Box, Cone, Polygon, SkyTable


def best_time(fn, repeat=3) -> float:
    best = np.inf
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def points(rng, n):
    return rng.uniform(0, 360, n), np.degrees(np.arcsin(rng.uniform(-1, 1, n)))


def paired_best(fn_a, fn_b, repeat=5) -> tuple[float, float]:
    """Best times of two functions run alternately (so load changes hit both alike)."""
    ta = tb = np.inf
    for _ in range(repeat):
        ta = min(ta, best_time(fn_a, 1))
        tb = min(tb, best_time(fn_b, 1))
    return ta, tb


def bench_lookup(tables, ra, dec) -> list[str]:
    n = ra.size
    rows = [
        "| table | partitions | lookup Mpts/s | healpy ang2pix Mpts/s (nside) | ratio |",
        "|---|---|---|---|---|",
    ]
    for label, st, nside in tables:
        st.lookup(ra[:10], dec[:10])
        t_hp, t_st = paired_best(
            lambda nside=nside: hp.ang2pix(nside, ra, dec, nest=True, lonlat=True),
            lambda st=st: st.lookup(ra, dec),
        )
        rows.append(
            f"| {label} | {len(st.partitions)} | {n / t_st / 1e6:.1f} | "
            f"{n / t_hp / 1e6:.1f} ({nside}) | {t_hp / t_st:.2f} |"
        )
    return rows


def bench_near(tables, ra, dec) -> list[str]:
    rows = [
        "| table | radius | points | near() Mpts/s | pairs per point | lookup Mpts/s |",
        "|---|---|---|---|---|---|",
    ]
    for label, st, _ in tables:
        for radius_as in (1.0, 10.0):
            st.near(ra[:10], dec[:10], radius_as / 3600)
            t = best_time(lambda st=st, r=radius_as: st.near(ra, dec, r / 3600), repeat=2)
            pt, _ = st.near(ra, dec, radius_as / 3600)
            t_l = best_time(lambda st=st: st.lookup(ra, dec), repeat=2)
            rows.append(
                f'| {label} | {radius_as:g}" | {ra.size} | {ra.size / t / 1e6:.2f} | '
                f"{pt.size / ra.size:.4f} | {ra.size / t_l / 1e6:.1f} |"
            )
    return rows


def sample_cap(rng, ra, dec, radius, n=4000):
    c = np.cos(np.radians(radius))
    rho = np.arccos(c + (1 - c) * rng.uniform(0, 1, n))
    rho = np.concatenate([rho, np.full(n // 2, np.radians(radius) * (1 - 1e-9))])
    az = rng.uniform(0, 2 * np.pi, rho.size)
    d = np.radians(dec)
    sd = np.sin(d) * np.cos(rho) + np.cos(d) * np.sin(rho) * np.cos(az)
    da = np.arctan2(np.sin(az) * np.sin(rho) * np.cos(d), np.cos(rho) - np.sin(d) * sd)
    return np.mod(ra + np.degrees(da), 360), np.degrees(np.arcsin(np.clip(sd, -1, 1)))


def bench_cones(tables, rng, n_cones=200) -> list[str]:
    rows = [
        "| table | radius | median latency ms | p90 ms | partitions returned (mean) | "
        "overhead vs sampled truth |",
        "|---|---|---|---|---|---|",
    ]
    for label, st, _ in tables:
        for radius in (1 / 60, 0.1, 1.0, 10.0):
            ra, dec = points(rng, n_cones)
            lat, got, true = [], 0, 0
            st.partitions_in(Cone(10.0, 10.0, radius))
            for a, d in zip(ra, dec, strict=True):
                cone = Cone(float(a), float(d), radius)
                t = time.perf_counter()
                ans = st.partitions_in(cone)
                lat.append(time.perf_counter() - t)
                sra, sdec = sample_cap(rng, a, d, radius)
                hit = np.unique(st.lookup(sra, sdec))
                assert np.isin(hit, ans).all()
                got += ans.size
                true += hit.size
            lat = np.array(lat) * 1e3
            rows.append(
                f"| {label} | {radius * 60:g}' | {np.median(lat):.3f} | "
                f"{np.percentile(lat, 90):.3f} | {got / n_cones:.1f} | {got / true - 1:+.1%} |"
            )
    return rows


def bench_other_regions(tables, rng, n=200) -> list[str]:
    rows = [
        "| table | region | median latency ms | overhead vs sampled truth |",
        "|---|---|---|---|",
    ]
    for label, st, _ in tables:
        for kind in ("box 2x1 deg", "polygon ~2 deg"):
            lat, got, true = [], 0, 0
            for _ in range(n):
                a, d = rng.uniform(0, 360), np.degrees(np.arcsin(rng.uniform(-0.95, 0.95)))
                if kind.startswith("box"):
                    reg = Box(a, (a + 2) % 360, max(d - 0.5, -90), min(d + 0.5, 90))
                    sra = np.mod(a + 2 * rng.uniform(0, 1, 6000), 360)
                    sdec = rng.uniform(reg.dec_min, reg.dec_max, 6000)
                else:
                    az = np.sort(rng.uniform(0, 2 * np.pi, 5))
                    vra, vdec = _ring(a, d, 1.0, az)
                    try:
                        reg = Polygon(vra, vdec)
                    except Exception:  # an unlucky near-degenerate draw
                        continue
                    sra, sdec = sample_cap(rng, a, d, 1.0, 6000)
                    inside = reg.contains(sra, sdec)
                    sra, sdec = sra[inside], sdec[inside]
                t = time.perf_counter()
                ans = st.partitions_in(reg)
                lat.append(time.perf_counter() - t)
                hit = np.unique(st.lookup(sra, sdec))
                got += ans.size
                true += hit.size
            rows.append(
                f"| {label} | {kind} | {np.median(lat) * 1e3:.3f} | {got / true - 1:+.1%} |"
            )
    return rows


def _ring(ra, dec, rho, az):
    d, r = np.radians(dec), np.radians(rho)
    sd = np.sin(d) * np.cos(r) + np.cos(d) * np.sin(r) * np.cos(az)
    da = np.arctan2(np.sin(az) * np.sin(r) * np.cos(d), np.cos(r) - np.sin(d) * sd)
    return np.mod(ra + np.degrees(da), 360), np.degrees(np.arcsin(np.clip(sd, -1, 1)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=10_000_000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    t = time.perf_counter()
    builds = {}
    for key, make in (
        ("gsc3", lambda: SkyTable.gsc(3)),
        ("gsc4", lambda: SkyTable.gsc(4)),
        ("hpx7", lambda: SkyTable.healpix(7)),
    ):
        t = time.perf_counter()
        builds[key] = (make(), time.perf_counter() - t)
    tables = [
        ("GSC level 3", builds["gsc3"][0], 2**5),
        ("GSC level 4", builds["gsc4"][0], 2**7),
        ("HEALPix order 7", builds["hpx7"][0], 2**7),
    ]
    ra, dec = points(rng, args.points)
    print("## Build times\n")
    for key, (st, sec) in builds.items():
        print(f"- {key}: {sec:.2f} s ({len(st)} rows)")
    print(f"\n## Point lookups ({args.points} uniform random points, best of 5, alternating)\n")
    print("\n".join(bench_lookup(tables, ra, dec)))
    print("\n## near() (1M uniform points)\n")
    print("\n".join(bench_near(tables, ra[:1_000_000], dec[:1_000_000])))
    print("\n## Cone to partitions (200 random cones per radius)\n")
    print("\n".join(bench_cones(tables, rng)))
    print("\n## Boxes and polygons (200 each)\n")
    print("\n".join(bench_other_regions(tables, rng)))


if __name__ == "__main__":
    main()
