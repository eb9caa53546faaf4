"""Solve the reduced image-level system: connected groups, explicit gauge pins, sparse PCG.

The reduced matrix ``S`` is a weighted graph Laplacian over the zero points (plus flat and
night columns). Its null space is pinned explicitly, never by accident:

- one overall zero point per connected group of images (``connected_components`` over the
  zero-point block of ``S``): by REF measurements (nothing to add: they tie star means to an
  external scale), by PHOTOM_UBERCAL images held at their stored MCAL, or by the group's mean;
- the flat mean per chip photcode (image zero points) or per filter (exposure or night zero
  points): the level of a chip belongs to its zero points.

Pins enter as penalties ``lam * (g . theta - t)^2`` whose directions ``g`` are exactly the
null vectors' complements, so they fix the gauge without biasing the solution. Groups whose
zero point has no anchor (and, with ``Pin.MEAN``, every group but the largest) are solved for
numerical convenience but reported as uncalibrated.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from ._kernels import pcg, upper_nonzeros
from .model import Model, Pin, ZeroPoints

__all__ = ["Groups", "find_groups", "solve_system", "SolveInfo"]


@dataclass
class Groups:
    """Connected groups of zero-point columns."""

    label: np.ndarray  # per zero-point-like column (zp block and night offsets), -1 inactive
    sizes: np.ndarray  # images per group
    anchored: np.ndarray  # bool per group: its zero point is fixed by the chosen pin


@dataclass
class SolveInfo:
    """How a solve went."""

    iterations: int
    converged: bool
    residual: float


def _zp_columns(model: Model) -> np.ndarray:
    return np.arange(model.n_zp + model.n_nights)


def find_groups(S: sp.csr_matrix, model: Model, active: np.ndarray, ref_tied: np.ndarray) -> Groups:
    """Connected components of the zero-point block, and which of them are anchored.

    Parameters
    ----------
    S : sparse matrix
        The reduced normal matrix.
    active : ndarray of bool
        Columns with data (non-zero diagonal).
    ref_tied : ndarray of bool
        Per image: shares a star with a REF measurement (pin = ref).
    """
    cols = _zp_columns(model)
    cols = cols[active[cols]]
    sub = S[cols][:, cols]
    ngroup, lab = connected_components(sub != 0, directed=False)
    label = np.full(model.n_zp + model.n_nights, -1, np.int64)
    label[cols] = lab
    img_label = image_groups(model, label)
    ok = img_label >= 0
    sizes = np.bincount(img_label[ok], minlength=ngroup)
    pin = model.options.pin
    if pin is Pin.MEAN:
        anchored = np.zeros(ngroup, bool)
        if ngroup:
            anchored[int(np.argmax(sizes))] = True
    else:
        tied = ref_tied if pin is Pin.REF else model.photometric
        anchored = np.bincount(img_label[ok & tied], minlength=ngroup) > 0
    return Groups(label, sizes, anchored)


def image_groups(model: Model, label: np.ndarray) -> np.ndarray:
    """Group of every image (-1 when its zero-point column has no data)."""
    own = label[model.zcol]
    if model.n_nights == 0:
        return own
    return np.where(model.on_night, label[model.acol], own)


def _pins(model: Model, groups: Groups, S_diag: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
    """Penalty rows ``G`` (unit norm) and targets ``t`` fixing every gauge direction."""
    rows, cols, vals, targets = [], [], [], []

    def add(c: np.ndarray, v: np.ndarray, t: float) -> None:
        norm = float(np.sqrt(np.sum(v * v)))
        if len(c) and norm > 0:
            rows.append(np.full(len(c), len(targets)))
            cols.append(c)
            vals.append(v / norm)
            targets.append(t / norm)

    label = groups.label
    photometric_pin = model.options.pin is Pin.PHOTOMETRIC
    img_label = image_groups(model, label)
    for g in range(len(groups.sizes)):
        if photometric_pin and groups.anchored[g]:
            for j in np.flatnonzero(model.photometric & (img_label == g)):
                if model.on_night[j]:
                    add(np.array([model.acol[j], model.kcol[j]]), np.array([1.0, model.xam1[j]]),
                        model.mcal0[j])  # fmt: skip
                else:
                    add(np.array([model.zcol[j]]), np.ones(1), model.mcal0[j])
        elif groups.anchored[g] and model.options.pin is Pin.REF:
            continue
        else:
            c = np.flatnonzero(label == g)
            add(c, np.ones(len(c)), 0.0)
    _flat_pins(model, S_diag, add)
    if not targets:
        return sp.csr_matrix((0, model.n_params)), np.zeros(0)
    G = sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(len(targets), model.n_params),
    )
    return G, np.asarray(targets)


def _flat_pins(model: Model, S_diag: np.ndarray, add) -> None:
    if not model.options.flat:
        return
    ncell = model.options.flat_grid**2
    first = model.flat_slice().start
    blocks = first + np.arange(len(model.flat_codes))[:, None] * ncell + np.arange(ncell)
    if model.options.zeropoints is ZeroPoints.IMAGE and model.n_nights == 0:
        groups = np.arange(len(model.flat_codes))
    else:
        slot_of_code = np.zeros(len(model.flat_codes), np.int64)
        _, first_img = np.unique(model.photcode, return_index=True)
        slot_of_code[:] = model.slot[first_img]
        groups = slot_of_code
    for g in np.unique(groups):
        c = blocks[groups == g].ravel()
        c = c[S_diag[c] > 0]
        add(c, np.ones(len(c)), 0.0)


def symmetric_csr(S_upper: np.ndarray) -> sp.csr_matrix:
    """The full symmetric sparse matrix from a dense array holding its upper triangle."""
    r, c, v = upper_nonzeros(S_upper)
    off = r != c
    rows = np.concatenate([r, c[off]])
    cols = np.concatenate([c, r[off]])
    vals = np.concatenate([v, v[off]])
    n = S_upper.shape[0]
    return sp.csr_matrix((vals, (rows, cols)), shape=(n, n))


def solve_system(
    S: np.ndarray, b: np.ndarray, model: Model, x0: np.ndarray, ref_tied: np.ndarray
) -> tuple[np.ndarray, Groups, SolveInfo]:
    """Solve ``S theta = b`` with every gauge pinned; returns (theta, groups, info).

    Columns without data keep their value in ``x0``.
    """
    diag = np.diag(S).copy()
    active = diag > 0
    Ss = symmetric_csr(S)
    groups = find_groups(Ss, model, active, ref_tied)
    G, t = _pins(model, groups, diag)
    lam = float(np.median(diag[active])) if active.any() else 1.0
    ridge = np.zeros(model.n_params)
    if model.n_nights:
        ridge[model.n_zp + model.n_nights : model.n_zp + 2 * model.n_nights] = 1e-6 * lam
    fixed = ~active
    ridge[fixed] = lam
    rhs = b + lam * (G.T @ t) + ridge * np.where(fixed, x0, 0.0)
    A_diag = Ss.diagonal() + lam * np.asarray(G.multiply(G).sum(axis=0)).ravel() + ridge
    x = np.array(x0, np.float64)
    G = G.tocsr()
    n_it, res = pcg(
        Ss.indptr.astype(np.int64), Ss.indices.astype(np.int64), Ss.data,
        G.indptr.astype(np.int64), G.indices.astype(np.int64), G.data,
        lam, ridge, 1.0 / A_diag, rhs, x, 1e-12, 20 * model.n_params,
    )  # fmt: skip
    return x, groups, SolveInfo(int(n_it), bool(res < 1e-8), float(res))
