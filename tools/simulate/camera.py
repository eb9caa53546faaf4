"""The simulated GPC1 focal plane: chip placement, chip WCS, distortion and flat-field models.

Geometry
--------
Chip XY<cx><cy> (cx, cy = 0..7) is a CHIP_NX x CHIP_NY pixel array whose centre sits at
focal-plane pixel offset ((cx - 3.5) * PITCH_X, (cy - 3.5) * PITCH_Y) from the boresight, with
PITCH = CHIP_N + CHIP_GAP. All chips share one orientation. A focal-plane offset (L, M) in
pixels maps to the intermediate world coordinates of the boresight's TAN projection by
``(xi, eta) = CD @ (L, M)`` with ``CD = PIXEL_SCALE/3600 * [[-cos p, -sin p], [-sin p, cos p]]``
(p = POSANGLE). The chip header WCS is exactly this linear map: CRVAL = boresight, CD as above,
CRPIX = the (one-based) chip pixel of the boresight.

Normalised chip coordinates
---------------------------
``u = (x - (CHIP_NX - 1)/2) / ((CHIP_NX - 1)/2)``, ``v`` likewise with y and CHIP_NY, where
(x, y) = (X_PSF, Y_PSF) are zero-based pixels; u, v run over [-1, 1] on the chip.

Distortion
----------
``D(u, v) = sum_k c[a, k] * u**TERMS[k, 0] * v**TERMS[k, 1]`` (arcsec) for axis a = 0 (xi,
east) and a = 1 (eta, north), k over the 10 monomials of total degree <= 3 in TERMS. The image
coefficients are a static per-chip set (sum |c| = ``distortion`` per axis, so |D| <= distortion)
plus a per-image affine set (terms 0..2, sum |c| = ``distortion_exposure``).

Flat field
----------
``flat(chip, x, y) = grid[chip, iy, ix] + sum_k s[chip, k] u**TERMS[k,0] v**TERMS[k,1]`` (mag),
with cells ``ix = floor((x + 0.5) * cells / CHIP_NX)`` (clipped to 0..cells-1), grid values
uniform in [-flat_amplitude, flat_amplitude], and s over the 6 terms of degree <= 2 with
sum |s| = flat_smooth_amplitude.
"""

from __future__ import annotations

import numpy as np

from dvo.gpc1 import CHIP_NX, CHIP_NY, PIXEL_SCALE

__all__ = [
    "CHIP_GAP",
    "PITCH_X",
    "PITCH_Y",
    "TERMS",
    "chip_xy",
    "cd_matrix",
    "chip_crpix",
    "chip_uv",
    "poly_eval",
    "random_poly",
    "flat_eval",
    "field_radius",
]

CHIP_GAP = 150
PITCH_X = CHIP_NX + CHIP_GAP
PITCH_Y = CHIP_NY + CHIP_GAP
#: Exponents (i, j) of the monomials u**i v**j, by total degree.
TERMS = np.array(
    [(0, 0), (1, 0), (0, 1), (2, 0), (1, 1), (0, 2), (3, 0), (2, 1), (1, 2), (0, 3)], dtype=np.int64
)
_NTERMS_BY_ORDER = {0: 1, 1: 3, 2: 6, 3: 10}


def chip_xy(name: str) -> tuple[int, int]:
    """(cx, cy) of a chip name such as ``'XY34'``."""
    return int(name[2]), int(name[3])


def cd_matrix(posangle: float) -> np.ndarray:
    """The 2x2 CD matrix (deg/pixel) for a camera position angle in degrees."""
    p = np.radians(posangle)
    c, s = np.cos(p), np.sin(p)
    return PIXEL_SCALE / 3600.0 * np.array([[-c, -s], [-s, c]])


def chip_crpix(cx: int, cy: int) -> tuple[float, float]:
    """One-based chip pixel of the boresight (the chip's CRPIX1, CRPIX2)."""
    return (
        (CHIP_NX - 1) / 2 - (cx - 3.5) * PITCH_X + 1.0,
        (CHIP_NY - 1) / 2 - (cy - 3.5) * PITCH_Y + 1.0,
    )


def chip_uv(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Normalised chip coordinates (u, v) in [-1, 1] of zero-based pixels."""
    hx, hy = (CHIP_NX - 1) / 2, (CHIP_NY - 1) / 2
    return (x - hx) / hx, (y - hy) / hy


def poly_eval(coeffs: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Sum over k of ``coeffs[..., k] * u**i_k * v**j_k`` with per-row coefficients.

    Parameters
    ----------
    coeffs : ndarray, shape (n, K)
        Coefficients per row (K <= 10, in the order of TERMS).
    u, v : ndarray, shape (n,)
        Normalised chip coordinates.
    """
    out = np.zeros(np.shape(u))
    upow = [np.ones_like(u), u, u * u, u * u * u]
    vpow = [np.ones_like(v), v, v * v, v * v * v]
    for k in range(coeffs.shape[-1]):
        i, j = TERMS[k]
        out += coeffs[..., k] * upow[i] * vpow[j]
    return out


def random_poly(
    rng: np.random.Generator, shape: tuple[int, ...], order: int, bound: float
) -> np.ndarray:
    """Random coefficients, shape ``shape + (10,)``, with sum of |c| over terms = ``bound``.

    Only the terms of total degree <= ``order`` are non-zero, so |polynomial| <= bound on
    the chip.
    """
    out = np.zeros(shape + (len(TERMS),))
    k = _NTERMS_BY_ORDER[order]
    c = rng.normal(size=shape + (k,))
    norm = np.abs(c).sum(axis=-1, keepdims=True)
    out[..., :k] = bound * c / np.where(norm > 0, norm, 1.0)
    return out


def flat_eval(
    grid: np.ndarray, smooth: np.ndarray, chip: np.ndarray, x: np.ndarray, y: np.ndarray
) -> np.ndarray:
    """The flat-field offset (mag) of detections at zero-based pixels (x, y) on chips ``chip``.

    Parameters
    ----------
    grid : ndarray, shape (n_chips, cells, cells)
        Piecewise-constant part, indexed [chip, iy, ix].
    smooth : ndarray, shape (n_chips, 10)
        Polynomial part (terms of TERMS).
    chip : ndarray of int
        Index of each detection's chip into the first axis of grid and smooth.
    x, y : ndarray
        Zero-based chip pixels.
    """
    cells = grid.shape[-1]
    ix = np.clip(np.floor((x + 0.5) * cells / CHIP_NX).astype(np.int64), 0, cells - 1)
    iy = np.clip(np.floor((y + 0.5) * cells / CHIP_NY).astype(np.int64), 0, cells - 1)
    out = grid[chip, iy, ix]
    if np.any(smooth):
        u, v = chip_uv(x, y)
        out = out + poly_eval(smooth[chip], u, v)
    return out


def field_radius(chips: tuple[str, ...]) -> float:
    """Radius (deg) around the boresight that contains every pixel of the given chips."""
    r = 0.0
    for name in chips:
        cx, cy = chip_xy(name)
        lx = abs(cx - 3.5) * PITCH_X + CHIP_NX / 2
        ly = abs(cy - 3.5) * PITCH_Y + CHIP_NY / 2
        r = max(r, float(np.hypot(lx, ly)))
    return r * PIXEL_SCALE / 3600.0
