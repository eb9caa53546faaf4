"""The truth of a simulated survey, kept next to the smf files as ``truth.npz``.

``truth.npz`` holds structured arrays ``stars``, ``exposures``, ``images``, ``detections``
(and ``reference`` when written), the flat-field arrays ``flat_grid`` / ``flat_smooth``, the
distortion monomial exponents ``terms``, ``chips`` (chip names, the order of every chip index),
the configuration as JSON (``config``) and the model description (``model``, the text of
MODEL below). It loads with ``numpy.load`` alone (no pickles).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .camera import TERMS, chip_uv, flat_eval, poly_eval
from .config import SurveyConfig

__all__ = ["Truth", "IMAGE_DTYPE", "DETECTION_DTYPE", "MODEL", "TRUTH_FILE"]

TRUTH_FILE = "truth.npz"

IMAGE_DTYPE = np.dtype(
    [
        ("exp_index", "i4"),
        ("exp_name", "U20"),
        ("exp_id", "i8"),
        ("chip", "U4"),
        ("chip_index", "i4"),
        ("imageid", "i8"),
        ("mjd", "f8"),
        ("airmass", "f8"),
        ("filter", "U1"),
        ("exptime", "f8"),
        ("night", "i4"),
        ("cloudy", "?"),
        ("dzp", "f8"),
        ("dzp_exposure", "f8"),
        ("dzp_chip", "f8"),
        ("k_night", "f8"),
        ("dead", "?"),
        ("zpt_obs", "f8"),
        ("zpt_err", "f8"),
        ("cerror", "f8"),
        ("n_det", "i4"),
        ("dist", "f8", (2, 10)),
    ]
)

DETECTION_DTYPE = np.dtype(
    [
        ("exp_index", "i4"),
        ("exp_id", "i8"),
        ("imageid", "i8"),
        ("chip_index", "i2"),
        ("ipp_idet", "i4"),
        ("star_id", "i8"),
        ("x", "f4"),
        ("y", "f4"),
        ("ra_true", "f8"),
        ("dec_true", "f8"),
        ("pos_sig", "f4"),
        ("mag", "f4"),
        ("mag_true", "f8"),
        ("mag_sig", "f4"),
    ]
)

MODEL = """\
dvo.tools.simulate truth conventions (units: deg, arcsec, mag, mas, mas/yr, MJD UTC).
Tables: images has one row per (exposure, chip), row = exp_index * len(chips) + chip_index;
  dead images have no HDUs in the smf. detections: one row per written smf row, in file order
  (per exposure, chips in `chips` order, brightest first = IPP_IDET 0..); star_id -1 = spurious.
Photometry: PSF_INST_MAG = m_true - 0.001*C_LAM - K*(AIRMASS-1) + dzp + flat(chip, X_PSF, Y_PSF)
  - 2.5 log10(EXPTIME) + N(0, PSF_INST_MAG_SIG); detections.mag_true is that without the noise,
  detections.mag_sig = PSF_INST_MAG_SIG exactly; m_true = stars.mag_<filter> (+ variability).
  mag_sig = sqrt((1.0857 sigma_F/c)^2 + phot_floor^2), sigma_F = sqrt(c + 4 pi s^2 sky),
  c = 10^(-0.4 mag_true), s = FWHM/2.3548/0.258 px. dzp > 0 means fainter (clouds).
  images.dzp = images.dzp_exposure + images.dzp_chip; exposures.dzp_exposure = dzp_random
  + dzp_cloud + dzp_drift + dzp_extinction, dzp_extinction = -k_night*(AIRMASS-1) (the true K
  of the night is K + k_night). flat = flat_grid[chip, iy, ix] + poly(flat_smooth[chip])
  (Truth.flat). A calibrator recovers MCAL = dzp and M_FLAT = flat up to its gauge freedoms
  (one global constant; per-chip constants shared by M_FLAT and MCAL when both are per chip).
Astrometry: offset of RA_PSF/DEC_PSF (the header TAN WCS of pixel X_PSF+1, Y_PSF+1) from
  (ra_true, dec_true), in the tangent plane of the boresight (CRVAL; xi east, eta north,
  arcsec) = D(u, v) + N(0, pos_sig) per axis, D_a = sum_k images.dist[a, k] u^i_k v^j_k with
  (i_k, j_k) = terms[k] (Truth.distortion), u = (X_PSF - (NX-1)/2)/((NX-1)/2), v likewise;
  pos_sig = sqrt((centroid_k FWHM / SNR0)^2 + centroid_floor^2) = X_PSF_SIG * 0.258.
  ra_true/dec_true: stars moved by pm and parallax to the exposure (stars.apparent, geocentric,
  Earth position exposures.earth_x/y/z in au, no aberration or refraction).
"""


@dataclass
class Truth:
    """Everything a test needs to compare a reduction of the simulated survey against."""

    config: SurveyConfig
    chips: tuple[str, ...]
    stars: np.ndarray
    exposures: np.ndarray
    images: np.ndarray
    detections: np.ndarray
    flat_grid: np.ndarray
    flat_smooth: np.ndarray
    reference: np.ndarray | None = None

    def chip_index(self, chip: np.ndarray | str) -> np.ndarray:
        """Index into ``chips`` of chip names (or pass integer indices through)."""
        arr = np.asarray(chip)
        if arr.dtype.kind in "iu":
            return arr
        lut = {c: i for i, c in enumerate(self.chips)}
        return np.vectorize(lut.__getitem__, otypes=[np.int64])(arr)

    def image_rows(self, detections: np.ndarray | None = None) -> np.ndarray:
        """Row numbers into ``images`` of detections (default: all ``self.detections``)."""
        det = self.detections if detections is None else detections
        return det["exp_index"].astype(np.int64) * len(self.chips) + det["chip_index"]

    def flat(self, chip: np.ndarray | str, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The true flat-field offset (mag) at zero-based pixels (x, y) of chips (names or idx)."""
        x = np.asarray(x, dtype=np.float64)
        idx = np.broadcast_to(self.chip_index(chip), x.shape)
        return flat_eval(self.flat_grid, self.flat_smooth, idx, x, np.asarray(y, np.float64))

    def distortion(
        self, image_row: np.ndarray, x: np.ndarray, y: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """(dxi, deta) arcsec of the distortion of images (row numbers) at zero-based pixels."""
        coeffs = self.images["dist"][np.asarray(image_row)]
        coeffs = np.broadcast_to(coeffs, np.shape(x) + (2, 10))
        u, v = chip_uv(np.asarray(x, np.float64), np.asarray(y, np.float64))
        return poly_eval(coeffs[..., 0, :], u, v), poly_eval(coeffs[..., 1, :], u, v)

    def save(self, outdir: Path | str) -> Path:
        """Write ``outdir/truth.npz``; returns its path."""
        path = Path(outdir) / TRUTH_FILE
        arrays = {
            "stars": self.stars,
            "exposures": self.exposures,
            "images": self.images,
            "detections": self.detections,
            "flat_grid": self.flat_grid,
            "flat_smooth": self.flat_smooth,
            "terms": TERMS,
            "chips": np.array(self.chips, dtype="U4"),
            "config": np.array(self.config.to_json()),
            "model": np.array(MODEL),
        }
        if self.reference is not None:
            arrays["reference"] = self.reference
        tmp = path.with_name("truth.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, outdir: Path | str) -> Truth:
        """Read ``outdir/truth.npz`` written by :meth:`save`."""
        with np.load(Path(outdir) / TRUTH_FILE, allow_pickle=False) as z:
            return cls(
                config=SurveyConfig.from_json(str(z["config"])),
                chips=tuple(str(c) for c in z["chips"]),
                stars=z["stars"],
                exposures=z["exposures"],
                images=z["images"],
                detections=z["detections"],
                flat_grid=z["flat_grid"],
                flat_smooth=z["flat_smooth"],
                reference=z["reference"] if "reference" in z.files else None,
            )
