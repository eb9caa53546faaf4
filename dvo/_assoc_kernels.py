"""Numba kernels for association: nearest object within a radius.

:func:`nearest_within` (Matcher.match): objects sorted by (zone, RA) with zone height equal
to the radius, so the candidates of a detection lie in three zones and, in each, in one RA
window found by binary search (two windows where it crosses RA = 0; the whole zone near the
poles). Distances are haversine.

:func:`grid_nearest` (Matcher.match_partitions, addstar): the same answer from grids of cells
kept per partition across files (``grid_*``: built, appended to, moved in), so that the cost
of a file follows the file. Also the small passes of associate_batch: :func:`first_per_key`
(one measurement per image), :func:`group_order` and :func:`take_rows` (rows per partition).
No objects, no I/O: arrays in, arrays out.
"""

from __future__ import annotations

import numpy as np
from numba import njit

D2R = np.pi / 180.0


@njit(cache=True, inline="always")
def _hav_c(ra1, dec1, ra2, dec2, cos1, cos2):
    """Haversine of the angular distance with ``cos1``, ``cos2`` = cos(dec1), cos(dec2)
    given (kept per object by the grids)."""
    s1 = np.sin(0.5 * (dec2 - dec1))
    s2 = np.sin(0.5 * (ra2 - ra1))
    return s1 * s1 + cos1 * cos2 * s2 * s2


@njit(cache=True)
def _hav(ra1, dec1, ra2, dec2):
    """Haversine of the angular distance (monotonic in distance), inputs in radians."""
    return _hav_c(ra1, dec1, ra2, dec2, np.cos(dec1), np.cos(dec2))


@njit(cache=True)
def _scan(ra_s, dec_s, lo, hi, qra, qdec, best_h, best_j):
    """Closest of sorted objects lo..hi-1 to the query (radians); returns updated best."""
    for j in range(lo, hi):
        h = _hav(qra, qdec, ra_s[j] * D2R, dec_s[j] * D2R)
        if h < best_h:
            best_h = h
            best_j = j
    return best_h, best_j


@njit(cache=True)
def nearest_within(q_ra, q_dec, ra_s, dec_s, starts, zmin, height, radius):
    """For each query, the index (into the sorted arrays) of the closest object within
    ``radius`` degrees, or -1; and the haversine of that distance.

    ``starts[z - zmin] .. starts[z - zmin + 1]`` are the sorted rows of zone ``z`` (zones of
    ``height`` degrees counted from dec = -90), RA ascending within a zone.
    """
    n = q_ra.shape[0]
    nz = starts.shape[0] - 1
    out = np.full(n, -1, np.int64)
    out_h = np.full(n, np.inf)
    limit = np.sin(0.5 * radius * D2R) ** 2
    for i in range(n):
        qra, qdec = q_ra[i], q_dec[i]
        z = int(np.floor((qdec + 90.0) / height))
        top = min(abs(qdec) + radius, 90.0)
        whole = top >= 89.9 or radius >= 30.0
        dra = 180.0 if whole else radius / np.cos(top * D2R) + 1e-9
        best_h, best_j = limit * (1 + 1e-12), -1
        for zz in range(z - 1, z + 2):
            k = zz - zmin
            if k < 0 or k >= nz:
                continue
            s, e = starts[k], starts[k + 1]
            if s == e:
                continue
            if whole or dra >= 180.0:
                best_h, best_j = _scan(ra_s, dec_s, s, e, qra * D2R, qdec * D2R, best_h, best_j)
                continue
            lo_ra, hi_ra = qra - dra, qra + dra
            windows = (
                (lo_ra, hi_ra),
                (lo_ra + 360.0, hi_ra + 360.0),
                (lo_ra - 360.0, hi_ra - 360.0),
            )
            for w in windows:
                a = max(w[0], 0.0)
                b = min(w[1], 360.0)
                if a > b:
                    continue
                lo = s + np.searchsorted(ra_s[s:e], a, side="left")
                hi = s + np.searchsorted(ra_s[s:e], b, side="right")
                best_h, best_j = _scan(ra_s, dec_s, lo, hi, qra * D2R, qdec * D2R, best_h, best_j)
        if best_j >= 0:
            out[i] = best_j
            out_h[i] = best_h
    return out, out_h


# ------------------------------------------------------------------------- position grids
# A partition's objects in a grid of cells over (Dec, RA relative to ``geo[6]``), ``geo`` =
# (dec_lo, cell height, rows, rel_lo, cell width, columns, ra_ref); positions outside go to
# the edge cells. Per object row: ``ra``, ``dec``, ``cell``, ``row_slot``. The objects are
# stored cell after cell (``start``, positions in ``pos``, rows in ``slot_row``) when the
# grid is built; objects added or moved to another cell since are chained per cell in an
# overflow list (``ohead``, ``onext``; ``row_slot`` -1), their old slot emptied (Dec +inf).
# ``obox`` bounds the positions ever indexed (Dec min, max, relative RA min, max).


@njit(cache=True, inline="always")
def _rel(ra, ref):
    """RA relative to ``ref`` in [-180, 180) (for the grid only: not the exact test)."""
    r = ra - ref
    if r >= 180.0:
        r -= 360.0
    elif r < -180.0:
        r += 360.0
    return r


@njit(cache=True, inline="always")
def _clamp_floor(x, n):
    x = min(max(x, -1.0), float(n))
    return min(max(int(np.floor(x)), 0), n - 1)


@njit(cache=True, inline="always")
def _cell_of(ra, dec, geo):
    r = _clamp_floor((dec - geo[0]) / geo[1], int(geo[2]))
    c = _clamp_floor((_rel(ra, geo[6]) - geo[3]) / geo[4], int(geo[5]))
    return r * int(geo[5]) + c


@njit(cache=True, inline="always")
def _grow_box(obox, ra, dec, ref):
    rel = _rel(ra, ref)
    obox[0] = min(obox[0], dec)
    obox[1] = max(obox[1], dec)
    obox[2] = min(obox[2], rel)
    obox[3] = max(obox[3], rel)


@njit(cache=True, inline="always")
def mod360(a):
    """``a % 360.0`` as numpy computes it (+0.0 for -0.0), without the float remainder
    (numba's costs a call to fmod) where ``a`` is already in [0, 360)."""
    return (a + 0.0) if 0.0 <= a < 360.0 else a % 360.0


@njit(cache=True, inline="always")
def _set_row(j, ra_col, dec_col, i, ra, dec, cdec, bad):
    """Row ``i`` of the partition's RA/DEC columns into row ``j`` (RA modulo 360, and the
    cosine of Dec the haversine takes); ``bad`` flags what Matcher.validate rejects."""
    a = mod360(ra_col[i])
    d = dec_col[i]
    ra[j] = a
    dec[j] = d
    cdec[j] = np.cos(d * D2R)
    if not (np.isfinite(a) and np.isfinite(d)):
        bad[0] = True
    elif abs(d) > 90:
        bad[1] = True


@njit(cache=True)
def read_rows(first, stop, ra_col, dec_col, ra, dec, cdec, bad):
    """Rows ``first .. stop - 1`` of the columns (strided views are fine) into the grid's
    per-row positions."""
    for j in range(first, stop):
        _set_row(j, ra_col, dec_col, j, ra, dec, cdec, bad)


@njit(cache=True)
def grid_build(n, ra, dec, cdec, cell, row_slot, geo, start, pos, slot_row, ohead, obox):
    """Store objects ``0 .. n - 1`` cell after cell (rows ascending within a cell); empty
    overflow lists. ``start`` has one entry per cell and one more."""
    ncell = ohead.shape[0]
    obox[0], obox[1], obox[2], obox[3] = np.inf, -np.inf, np.inf, -np.inf
    start[:] = 0
    for j in range(n):
        c = _cell_of(ra[j], dec[j], geo)
        cell[j] = c
        start[c + 1] += 1
        _grow_box(obox, ra[j], dec[j], geo[6])
    for c in range(ncell):
        start[c + 1] += start[c]
    fill = start[:ncell].copy()
    for j in range(n):
        c = cell[j]
        k = fill[c]
        fill[c] = k + 1
        pos[k, 0] = ra[j]
        pos[k, 1] = dec[j]
        pos[k, 2] = cdec[j]
        slot_row[k] = j
        row_slot[j] = k
    ohead[:] = -1


@njit(cache=True)
def grid_append(first, stop, ra, dec, cell, row_slot, onext, geo, ohead, obox):
    """Chain new objects ``first .. stop - 1`` (positions read) into overflow lists."""
    for j in range(first, stop):
        c = _cell_of(ra[j], dec[j], geo)
        cell[j] = c
        row_slot[j] = -1
        onext[j] = ohead[c]
        ohead[c] = j
        _grow_box(obox, ra[j], dec[j], geo[6])


@njit(cache=True)
def grid_move(
    rows, ra_col, dec_col, ra, dec, cdec, cell, row_slot, onext, geo, pos, ohead, obox, bad
):  # fmt: skip
    """Read objects' new positions (rows of the columns); those leaving their cell go to an
    overflow list. Returns how many left a stored slot."""
    for k in range(rows.shape[0]):  # the reads first: independent, they overlap
        j = rows[k]
        _set_row(j, ra_col, dec_col, j, ra, dec, cdec, bad)
    left = 0
    for k in range(rows.shape[0]):
        j = rows[k]
        _grow_box(obox, ra[j], dec[j], geo[6])
        c = _cell_of(ra[j], dec[j], geo)
        old = cell[j]
        s = row_slot[j]
        if s >= 0:
            if c == old:
                pos[s, 0] = ra[j]
                pos[s, 1] = dec[j]
                pos[s, 2] = cdec[j]
                continue
            pos[s, 1] = np.inf  # an empty slot: never within reach
            row_slot[j] = -1
            left += 1
        else:
            if c == old:
                continue
            p = ohead[old]
            if p == j:
                ohead[old] = onext[j]
            else:
                while onext[p] != j:
                    p = onext[p]
                onext[p] = onext[j]
        cell[j] = c
        onext[j] = ohead[c]
        ohead[c] = j
    return left


@njit(cache=True, inline="always")
def _first_window(ora, qra, dra):
    """Which of nearest_within's RA windows (0, 1, 2) scans RA ``ora`` first, -1 if none."""
    lo_ra, hi_ra = qra - dra, qra + dra
    for w in range(3):
        shift = 0.0 if w == 0 else (360.0 if w == 1 else -360.0)
        a = max(lo_ra + shift, 0.0)
        b = min(hi_ra + shift, 360.0)
        if a <= b and a <= ora <= b:
            return w
    return -1


@njit(cache=True)
def grid_nearest(
    q_ra, q_dec, reach_tab, step, dec_reach, ra, dec, cdec, onext, geo, start, pos, slot_row,
    ohead, obox, height, radius, box, part, best_h, best_p, best_row, best_ra, best_dec,
):  # fmt: skip
    """Update each query's best object with the objects of one partition's grid.

    The result is exactly :func:`nearest_within`'s over the objects of all partitions in
    ``part`` order (call once per partition, ``part`` ascending) after the bounding-box
    prefilter ``box`` (Dec min, max, RA on/off, reference, relative RA min, max): the same
    candidates pass (the haversine under the same limit, the same zone and RA-window tests)
    and ties go to the first in its scan order (zone, window, RA, partition, row).

    The cells visited hold every object that can pass: Dec within ``dec_reach`` and RA
    within ``reach_tab[int(|dec| / step)]`` of the query (bounds wider than the radius).
    """
    n = q_ra.shape[0]
    dlo, nrow = geo[0], int(geo[2])
    rlo, ncol = geo[3], int(geo[5])
    ref = geo[6]
    olo, ohi, orlo, orhi = obox[0], obox[1], obox[2], obox[3]
    limit = np.sin(0.5 * radius * D2R) ** 2
    limit_eps = limit * (1 + 1e-12)
    ntab = reach_tab.shape[0]
    for i in range(n):
        qdec = q_dec[i]
        if qdec + dec_reach < olo or qdec - dec_reach > ohi:
            continue
        qra = q_ra[i]
        reach = reach_tab[min(int(abs(qdec) / step), ntab - 1)]
        qrel = _rel(qra, ref)
        whole = reach >= 180.0
        inside = not whole and qrel - reach >= -180.0 and qrel + reach < 180.0
        if inside and (qrel + reach < orlo or qrel - reach > orhi):
            continue  # no seam to cross, and the objects are all on one side
        r0 = _clamp_floor((qdec - dec_reach - dlo) / geo[1], nrow)  # as _cell_of computes
        r1 = _clamp_floor((qdec + dec_reach - dlo) / geo[1], nrow)
        # relative RA intervals: one, or the parts on each side of the seam at +-180
        if whole:
            a0, b0, a1, b1, a2, b2 = -360.0, 360.0, 1.0, 0.0, 1.0, 0.0
        else:
            a0, b0 = qrel - reach, qrel + reach
            a1, b1 = (-180.0, b0 - 360.0) if b0 >= 180.0 else (1.0, 0.0)
            a2, b2 = (a0 + 360.0, 180.0) if a0 < -180.0 else (1.0, 0.0)
        qra_r, qdec_r = qra * D2R, qdec * D2R
        cq = np.cos(qdec_r)
        # the query's best so far (``bh``: the bound to beat, the limit while none)
        bp, brow, bra, bdec = best_p[i], best_row[i], best_ra[i], best_dec[i]
        bh = best_h[i] if bp >= 0 else limit_eps
        found = False
        for s in range(3):
            a = a0 if s == 0 else (a1 if s == 1 else a2)
            b = b0 if s == 0 else (b1 if s == 1 else b2)
            if a > b or b < orlo or a > orhi:
                continue
            c0 = _clamp_floor((a - rlo) / geo[4], ncol)
            c1 = _clamp_floor((b - rlo) / geo[4], ncol)
            for r in range(r0, r1 + 1):
                for c in range(r * ncol + c0, r * ncol + c1 + 1):
                    for k in range(start[c], start[c + 1]):
                        odec = pos[k, 1]
                        if abs(odec - qdec) > dec_reach:
                            continue
                        ora = pos[k, 0]
                        if not whole and abs(_rel(ora, qra)) > reach:
                            continue
                        h = _hav_c(qra_r, qdec_r, ora * D2R, odec * D2R, cq, pos[k, 2])
                        if (h < bh or (h == bh and bp >= 0)) and _wins(
                            h, bh, bp, slot_row[k], ora, odec, part, brow, bra, bdec, qra,
                            qdec, height, radius, box,
                        ):  # fmt: skip
                            bh, bp, brow, bra, bdec = h, part, slot_row[k], ora, odec
                            found = True
                    j = ohead[c]
                    while j >= 0:
                        odec = dec[j]
                        ora = ra[j]
                        if abs(odec - qdec) <= dec_reach and (
                            whole or abs(_rel(ora, qra)) <= reach
                        ):
                            h = _hav_c(qra_r, qdec_r, ora * D2R, odec * D2R, cq, cdec[j])
                            if (h < bh or (h == bh and bp >= 0)) and _wins(
                                h, bh, bp, j, ora, odec, part, brow, bra, bdec, qra, qdec,
                                height, radius, box,
                            ):  # fmt: skip
                                bh, bp, brow, bra, bdec = h, part, j, ora, odec
                                found = True
                        j = onext[j]
        if found:
            best_h[i], best_p[i], best_row[i], best_ra[i], best_dec[i] = bh, bp, brow, bra, bdec


@njit(cache=True)
def _wins(h, bh, bp, row, ora, odec, part, brow, bra, bdec, qra, qdec, height, radius, box):
    """Whether an object at haversine ``h`` (within the bound ``bh``) becomes the query's
    best: it passes nearest_within's tests (the bounding box, zone and RA window), and is
    closer than the best so far (partition ``bp``, row ``brow`` at ``bra``, ``bdec``), or
    as close and first in the scan order."""
    if odec < box[0] or odec > box[1]:
        return False
    if box[2] != 0.0:  # _near_box's RA test, (ora - ref + 180) % 360 - 180 as numpy has it
        orel = mod360(ora - box[3] + 180.0) - 180.0
        if orel < box[4] or orel > box[5]:
            return False
    # closer than 0.999 radius in Dec and in RA, the zone and window tests pass (window 0),
    # rounding (1e-13 deg) being far below 0.001 radius
    near = height >= 1e-8 and abs(odec - qdec) <= 0.999 * height
    near = near and abs(ora - qra) <= 0.999 * radius
    if not near and _scan_key(qra, qdec, ora, odec, height, radius)[0] < 0:
        return False
    if bp < 0 or h < bh:
        return True
    return _tie_first(qra, qdec, height, radius, ora, odec, part, row, bra, bdec, bp, brow)


@njit(cache=True)
def _scan_key(qra, qdec, ora, odec, height, radius):
    """(window, zone) of an object in nearest_within's scan for this query: window -1 if
    the scan misses it (zone not within one of the query's, or RA outside the windows)."""
    z = int(np.floor((qdec + 90.0) / height))
    zo = int(np.floor((odec + 90.0) / height))
    if zo < z - 1 or zo > z + 1:
        return -1, zo
    top = min(abs(qdec) + radius, 90.0)
    whole = top >= 89.9 or radius >= 30.0
    dra = 180.0 if whole else radius / np.cos(top * D2R) + 1e-9
    if whole or dra >= 180.0:
        return 0, zo
    return _first_window(ora, qra, dra), zo


@njit(cache=True)
def _tie_first(qra, qdec, height, radius, ora, odec, part, row, ora2, odec2, part2, row2):
    """Of two objects at the same haversine, whether the first comes first in the scan
    order (zone, window, RA, partition, row)."""
    w, z = _scan_key(qra, qdec, ora, odec, height, radius)
    w2, z2 = _scan_key(qra, qdec, ora2, odec2, height, radius)
    if z != z2:
        return z < z2
    if w != w2:
        return w < w2
    if ora != ora2:
        return ora < ora2
    if part != part2:
        return part < part2
    return row < row2


@njit(cache=True)
def first_per_key(obj, image, sep, loser):
    """Mark in ``loser`` the detections with ``obj >= 0`` that lose to another with the same
    (obj, image): the smallest ``sep`` wins (NaN last), ties to the lower index. A hash
    table over the matched detections: the cost follows the detections only."""
    n = obj.shape[0]
    cap = 16
    while cap < 2 * n:
        cap *= 2
    mask = cap - 1
    slot = np.full(cap, -1, np.int64)
    for i in range(n):
        o = obj[i]
        if o < 0:
            continue
        im = image[i]
        k = ((o * 0x9E3779B1) ^ (im * 0x85EBCA77) ^ (o >> 17)) & mask
        while True:
            d = slot[k]
            if d < 0:
                slot[k] = i
                break
            if obj[d] == o and image[d] == im:
                si, sd = sep[i], sep[d]
                if si < sd or (np.isnan(sd) and not np.isnan(si)):
                    loser[d] = True
                    slot[k] = i
                else:
                    loser[i] = True
                break
            k = (k + 1) & mask


@njit(cache=True)
def prepare_queries(ra, dec, ra_out, dec_out, stats):
    """One pass over the detections (strided columns are fine): ``ra_out`` = RA modulo 360
    (numpy's ``%``), ``dec_out`` = Dec, and ``stats`` = (any non-finite, any |Dec| > 90,
    Dec min, Dec max, min and max of ``(ra_out - ra_out[0] + 180) % 360 - 180``), as
    Matcher.match computes them."""
    n = ra.shape[0]
    bad_f, bad_d = 0.0, 0.0
    dmin, dmax, lo, hi = np.inf, -np.inf, np.inf, -np.inf
    ref = 0.0
    for k in range(n):
        a = mod360(ra[k])
        ra_out[k] = a
        d = dec[k]
        dec_out[k] = d
        if not (np.isfinite(a) and np.isfinite(d)):
            bad_f = 1.0
            continue
        if abs(d) > 90:
            bad_d = 1.0
        if k == 0:
            ref = a
        dmin = min(dmin, d)
        dmax = max(dmax, d)
        rel = mod360(a - ref + 180.0) - 180.0
        lo = min(lo, rel)
        hi = max(hi, rel)
    stats[0], stats[1], stats[2], stats[3], stats[4], stats[5] = bad_f, bad_d, dmin, dmax, lo, hi


@njit(cache=True)
def group_order(key, nkey):
    """Stable counting sort of small keys (0 .. nkey - 1): the order, and where each key's
    rows start in it (``nkey + 1`` bounds)."""
    bounds = np.zeros(nkey + 1, np.int64)
    for i in range(key.shape[0]):
        bounds[key[i] + 1] += 1
    for g in range(nkey):
        bounds[g + 1] += bounds[g]
    fill = bounds[:nkey].copy()
    order = np.empty(key.shape[0], np.int64)
    for i in range(key.shape[0]):
        g = key[i]
        order[fill[g]] = i
        fill[g] += 1
    return order, bounds


@njit(cache=True)
def take_rows(src, sel, dst, words, image, loser, flag, refs, objid, cat):
    """Rows ``sel`` of ``src`` into ``dst`` (both as uint32 words per row), with the words
    ``words`` = (IMAGE_ID, AVE_REF, CAT_ID, OBJ_ID, DB_FLAGS) set: ``image[i]``,
    ``refs[k]``, ``cat``, ``objid[k]``, and ``flag`` or-ed in where ``loser[i]``."""
    width = src.shape[1]
    for k in range(sel.shape[0]):
        i = sel[k]
        for w in range(width):
            dst[k, w] = src[i, w]
        dst[k, words[0]] = image[i]
        dst[k, words[1]] = refs[k]
        dst[k, words[2]] = cat
        dst[k, words[3]] = objid[k]
        if loser[i]:
            dst[k, words[4]] |= flag


@njit(cache=True)
def extent(n, ra, dec, ref):
    """Dec min, max and relative RA (to ``ref``, in [-180, 180)) min, max of objects
    ``0 .. n - 1``."""
    out = np.array([np.inf, -np.inf, np.inf, -np.inf])
    for j in range(n):
        _grow_box(out, ra[j], dec[j], ref)
    return out


@njit(cache=True)
def new_objects(src, fresh, dst, template, src_pos, dst_pos, words, first_id, cat):
    """Average rows (as uint32 words) for new objects: the ``template`` row, the 4 words of
    RA and Dec copied from detection rows ``fresh`` of ``src`` (words ``src_pos`` to
    ``dst_pos``), and ``words`` = (OBJ_ID, CAT_ID) set to ``first_id + k`` and ``cat``."""
    for k in range(fresh.shape[0]):
        i = fresh[k]
        for w in range(dst.shape[1]):
            dst[k, w] = template[w]
        for w in range(src_pos.shape[0]):
            dst[k, dst_pos[w]] = src[i, src_pos[w]]
        dst[k, words[0]] = first_id + k
        dst[k, words[1]] = cat
