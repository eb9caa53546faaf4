"""The unknowns of relphot and how they are indexed: options, images, exposures, nights, flats.

Parameter vector ``theta`` (image level; star means are eliminated per star):

``[ zero points | night offsets a_n | night airmass slopes k_n | flat cells ]``

- zero points: one per chip image (``ZeroPoints.IMAGE``, DVO's Mcal) or one per exposure
  (``ZeroPoints.EXPOSURE``, DVO's Mmos) shared by its chips;
- nights (``nights=True``): exposures of a night (a time group: exposures closer than
  ``night_gap`` days) share ``a_n + k_n (AIRMASS - 1)`` unless they are found non-photometric
  (their offset from the night model exceeds ``cloud_limit``), which frees their own zero point;
- flat cells: ``flat_grid`` x ``flat_grid`` cells per chip photcode (M_FLAT), cell
  ``ix = floor((X_CCD + 0.5) * grid / NX)`` as the simulator's flat.

What relphot stores: Image.MCAL_PSF (= MCAL_APER) is the image zero point without the flat;
Measure.MCAL_PSF/MCAL_APER = the image's MCAL and Measure.M_FLAT = the flat cell of its pixel, so
calibrated = MAG - 25 + 0.001 C_LAM + K (AIRMASS - 1) - MCAL - M_FLAT (dvo.photometry).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np

from dvo.errors import CalibrationError
from dvo.photcodes import Photcodes, PhotType

__all__ = ["ZeroPoints", "Pin", "Options", "Model", "build_model", "image_index", "MAP_GRID"]

MAP_GRID = 4  # residual-map cells per chip axis in the report


class ZeroPoints(enum.StrEnum):
    """Granularity of the free zero points."""

    IMAGE = "image"
    EXPOSURE = "exposure"


class Pin(enum.StrEnum):
    """How the free overall zero point of each connected group of images is fixed."""

    REF = "ref"  # reference (REF photcode) measurements in the database
    PHOTOMETRIC = "photometric"  # images flagged PHOTOM_UBERCAL keep their stored MCAL
    MEAN = "mean"  # mean zero point = 0; only the largest group is calibrated


@dataclass(frozen=True, kw_only=True)
class Options:
    """Every relphot knob, with the defaults a survey would run (mag unless noted)."""

    zeropoints: ZeroPoints = ZeroPoints.IMAGE
    nights: bool = False
    flat: bool = True
    flat_grid: int = 2
    pin: Pin = Pin.MEAN
    iterations: int = 8
    tolerance: float = 1e-4  # stop when no parameter moved more than this
    sys_error: float = 0.003  # added in quadrature to MAG_ERR in the weights
    max_error: float = 0.05  # measurements with larger MAG_ERR (S/N < ~20) are not used
    clip: float = 5.0  # sigma, measurements beyond are clipped
    cauchy: float = 4.0  # sigma, scale of the Cauchy robust weights
    star_chi2: float = 10.0  # stars with a larger reduced chi2 are variable: not used
    star_scatter: float = 0.1  # stars with a larger rms are not used
    image_min_stars: int = 5  # PHOTOM_FEW (uncalibrated) below this
    image_offset: float = 0.25  # PHOTOM_POOR beyond max(this, 3 sigma) from the median
    image_scatter: float = 0.05  # PHOTOM_POOR above max(this, 3 x median image rms)
    cloud_limit: float = 0.05  # nights: exposures further from the night model are freed
    night_gap: float = 0.25  # days between exposures that starts a new night
    bright_error: float = 0.01  # stars with rms MAG_ERR below this count as bright
    max_params: int = 30000  # the dense image-level matrix holds max_params**2 doubles

    def __post_init__(self) -> None:
        for name, kind in (("zeropoints", ZeroPoints), ("pin", Pin)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                choices = ", ".join(k.value for k in kind)
                raise CalibrationError(f"{name} must be one of {choices}, got {value!r}") from None
        if self.iterations < 1:
            raise CalibrationError(f"iterations must be at least 1, got {self.iterations}")
        if not 1 <= self.flat_grid <= 64:
            raise CalibrationError(f"flat_grid must be in 1..64, got {self.flat_grid}")
        for name in ("sys_error", "max_error", "clip", "cauchy", "star_chi2", "star_scatter"):
            if not getattr(self, name) > 0:
                raise CalibrationError(f"{name} must be positive, got {getattr(self, name)}")


@dataclass
class Model:
    """Image-level indexing: which parameter columns each chip image uses.

    Arrays are per chip image, in the order of ``image_id`` (sorted).
    """

    options: Options
    image_id: np.ndarray  # IMAGE_ID, sorted
    row: np.ndarray  # row of each image in the Images table
    photcode: np.ndarray
    slot: np.ndarray  # average filter of the image
    exposure: np.ndarray  # exposure index
    night: np.ndarray  # night index
    mjd: np.ndarray  # MJD_OBS
    xam1: np.ndarray  # AIRMASS - 1
    nx: np.ndarray
    ny: np.ndarray
    mcal0: np.ndarray  # MCAL_PSF as stored before relphot
    photometric: np.ndarray  # PHOTOM_UBERCAL images (pin = photometric)
    zcol: np.ndarray  # own zero-point column
    acol: np.ndarray  # night offset column (-1 without nights)
    kcol: np.ndarray  # night slope column
    fbase: np.ndarray  # first flat column of the image's photcode (-1 without flat)
    mbase: np.ndarray  # first residual-map cell of the image's photcode
    flat_codes: np.ndarray  # photcode of each flat block / map block
    n_zp: int
    n_nights: int
    n_params: int
    on_night: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def n_images(self) -> int:
        """Number of chip images."""
        return len(self.image_id)

    def flat_slice(self) -> slice:
        """Columns of the flat cells."""
        return slice(self.n_zp + 2 * self.n_nights, self.n_params)

    def image_index(self, image_id: np.ndarray) -> np.ndarray:
        """Index of each IMAGE_ID among the chip images (-1 when not a chip image)."""
        return image_index(self.image_id, image_id)

    def izcol(self) -> np.ndarray:
        """Own zero-point column per image, -1 where the night model applies (kernel input)."""
        return np.where(self.on_night, -1, self.zcol).astype(np.int64)

    def image_zp(self, theta: np.ndarray) -> np.ndarray:
        """The zero point (MCAL, flat excluded) of every image under ``theta``."""
        own = theta[self.zcol]
        if self.n_nights == 0:
            return own
        night = theta[self.acol] + theta[self.kcol] * self.xam1
        return np.where(self.on_night, night, own)

    def initial_theta(self) -> np.ndarray:
        """Start from the stored MCAL (zero points), flat and night terms 0."""
        theta = np.zeros(self.n_params)
        sums = np.bincount(self.zcol, weights=self.mcal0, minlength=self.n_zp)
        cnt = np.bincount(self.zcol, minlength=self.n_zp)
        theta[: self.n_zp] = sums / np.maximum(cnt, 1)
        return theta


def image_index(sorted_ids: np.ndarray, image_id: np.ndarray) -> np.ndarray:
    """Index of each IMAGE_ID in the sorted ``sorted_ids`` (-1 when absent).

    Examples
    --------
    >>> image_index(np.array([3, 5, 9]), np.array([5, 4, 9])).tolist()
    [1, -1, 2]
    """
    ids = np.asarray(image_id, np.int64)
    if len(sorted_ids) == 0:
        return np.full(len(ids), -1, np.int64)
    pos = np.clip(np.searchsorted(sorted_ids, ids), 0, len(sorted_ids) - 1)
    return np.where(sorted_ids[pos] == ids, pos, -1)


def _nights(mjd: np.ndarray, gap: float) -> np.ndarray:
    """Time groups: a new night starts after a gap of more than ``gap`` days."""
    order = np.argsort(mjd, kind="stable")
    new = np.concatenate([[0], (np.diff(mjd[order]) > gap).astype(np.int64)])
    out = np.empty(len(mjd), np.int64)
    out[order] = np.cumsum(new)
    return out


def build_model(images: np.ndarray, photcodes: Photcodes, options: Options) -> Model:
    """Index the chip images of an Images table (exposure rows and REF images are skipped).

    Raises
    ------
    CalibrationError
        When there are no chip images, or more parameters than ``options.max_params``.
    """
    codes = images["PHOTCODE"].astype(np.int64)
    known = photcodes.known(codes) & (codes > 0)
    chip = np.zeros(len(images), bool)
    chip[known] = photcodes.column("TYPE", codes[known]) == PhotType.DEP
    chip &= images["EXP_ID"].astype(np.int64) >= 0
    rows = np.flatnonzero(chip)
    if len(rows) == 0:
        raise CalibrationError("no chip images to calibrate")
    rows = rows[np.argsort(images["IMAGE_ID"][rows], kind="stable")]
    im = images[rows]
    code = im["PHOTCODE"].astype(np.int64)
    _, exposure = np.unique(im["EXP_ID"].astype(np.int64), return_inverse=True)
    night = _nights(im["MJD_OBS"].astype(np.float64), options.night_gap)
    n_img, n_exp = len(im), int(exposure.max()) + 1
    zcol = np.arange(n_img) if options.zeropoints is ZeroPoints.IMAGE else exposure
    n_zp = n_img if options.zeropoints is ZeroPoints.IMAGE else n_exp
    n_nights = int(night.max()) + 1 if options.nights else 0
    acol = n_zp + night if n_nights else np.full(n_img, -1)
    kcol = n_zp + n_nights + night if n_nights else np.full(n_img, -1)
    flat_codes, code_row = np.unique(code, return_inverse=True)
    ncell = options.flat_grid**2
    first_flat = n_zp + 2 * n_nights
    fbase = first_flat + code_row * ncell if options.flat else np.full(n_img, -1)
    n_params = first_flat + (len(flat_codes) * ncell if options.flat else 0)
    if n_params > options.max_params:
        raise CalibrationError(
            f"{n_params} image-level parameters exceed max_params={options.max_params}"
        )
    from dvo.flags import ImageFlags

    return Model(
        options=options,
        image_id=im["IMAGE_ID"].astype(np.int64),
        row=rows,
        photcode=code,
        slot=photcodes.sec_slot(code).astype(np.int64),
        exposure=exposure.astype(np.int64),
        night=night,
        mjd=im["MJD_OBS"].astype(np.float64),
        xam1=im["SECZ"].astype(np.float64) - 1.0,
        nx=np.maximum(im["NX"].astype(np.float64), 1.0),
        ny=np.maximum(im["NY"].astype(np.float64), 1.0),
        mcal0=np.nan_to_num(im["MCAL_PSF"].astype(np.float64)),
        photometric=(im["FLAGS"] & np.uint32(ImageFlags.PHOTOM_UBERCAL)) != 0,
        zcol=np.asarray(zcol, np.int64),
        acol=np.asarray(acol, np.int64),
        kcol=np.asarray(kcol, np.int64),
        fbase=np.asarray(fbase, np.int64),
        mbase=code_row.astype(np.int64) * MAP_GRID**2,
        flat_codes=flat_codes,
        n_zp=n_zp,
        n_nights=n_nights,
        n_params=n_params,
        on_night=np.full(n_img, bool(n_nights)),
    )
