"""Dense least-squares oracle for relphot on tiny problems (no Schur complement, no CG).

The full design matrix over [star means | image zero points | flat cells] is built row by row
and solved with ``numpy.linalg.lstsq`` together with heavily weighted gauge rows (mean zero
point 0, flat mean 0 per chip), the same gauge relphot pins.
"""

from __future__ import annotations

import numpy as np


def dense_relphot(
    star: np.ndarray,
    image: np.ndarray,
    fcell: np.ndarray,
    y: np.ndarray,
    sigma: np.ndarray,
    n_images: int,
    chip_of_cell: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(star means, image zero points, flat cells) minimising the weighted chi2.

    Parameters
    ----------
    star, image, fcell : int arrays
        Per measurement: star index, image index, flat cell (-1 none).
    y, sigma : arrays
        Magnitude and error of each measurement (model y = M + Z + F).
    n_images : int
    chip_of_cell : int array
        Chip of each flat cell (the flat mean of every chip is pinned to 0).
    """
    n_star = int(star.max()) + 1
    n_cell = len(chip_of_cell)
    n = n_star + n_images + n_cell
    rows = np.zeros((len(y), n))
    rows[np.arange(len(y)), star] = 1.0
    rows[np.arange(len(y)), n_star + image] = 1.0
    has = fcell >= 0
    rows[np.flatnonzero(has), n_star + n_images + fcell[has]] = 1.0
    w = 1.0 / sigma
    a, b = rows * w[:, None], y * w
    big = 1e4 * np.sqrt(np.median(w**2) * len(y))
    gauge = [np.r_[np.zeros(n_star), np.ones(n_images), np.zeros(n_cell)]]
    for c in np.unique(chip_of_cell):
        gauge.append(np.r_[np.zeros(n_star + n_images), (chip_of_cell == c).astype(float)])
    g = big * np.array(gauge)
    x = np.linalg.lstsq(np.vstack([a, g]), np.r_[b, np.zeros(len(g))], rcond=None)[0]
    return x[:n_star], x[n_star : n_star + n_images], x[n_star + n_images :]
