"""Numba kernel of :mod:`dvo.smf`: the Measure fields computed from detection columns.

Each field gets exactly the float64 operations, in the order, that the numpy expressions of
the reader used (and ``tests/smf_reference.py`` uses), so the rows are the same bytes; only
the temporaries and the passes over the rows are gone. ``log10`` stays with numpy (its
caller): numba's may differ from it in the last bit.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from dvo._assoc_kernels import mod360

#: Detection columns the kernel reads, as rows of its ``src`` (float64), with the value of
#: a missing column.
SOURCES = (
    ("AP_MAG", np.nan),
    ("AP_FLUX", np.nan),
    ("AP_FLUX_SIG", np.nan),
    ("KRON_FLUX", np.nan),
    ("KRON_FLUX_ERR", np.nan),
    ("PSF_INST_FLUX", np.nan),
    ("PSF_INST_FLUX_SIG", np.nan),
    ("SKY", np.nan),
    ("SKY_SIGMA", np.nan),
    ("PSF_FWHM_MAJ", np.nan),
    ("PSF_FWHM_MIN", np.nan),
    ("PSF_THETA", 0.0),
    ("MOMENTS_XX", np.nan),
    ("MOMENTS_XY", np.nan),
    ("MOMENTS_YY", np.nan),
    ("X_PSF_SIG", np.nan),
    ("Y_PSF_SIG", np.nan),
    ("POSANGLE", 0.0),
    ("PLTSCALE", np.nan),
)
KRON = 3  # the row of KRON_FLUX in ``src``

_BIG = 1.7976931348623157e308  # np.nan_to_num's stand-in for infinity


@njit(cache=True)
def _centi(v):
    """Hundredths as int16 (clipped to +-32767, NaN as 0)."""
    v = v * 100.0
    if v != v:
        return np.int16(0)
    return np.int16(min(max(v, -32767.0), 32767.0))


@njit(cache=True)
def _angle16(v):
    """Degrees -> 16-bit angle code (NaN as 0): ``v % 360`` scaled to 0..65535, as int16."""
    if v >= 0.0 and v < 360.0:
        pass
    elif v < 0.0 and v >= -360.0:
        v = v + 360.0
    else:
        if v != v:
            v = 0.0
        elif v > _BIG:
            v = _BIG
        elif v < -_BIG:
            v = -_BIG
        v = v % 360.0
    code = np.int64(np.uint16(v * 65535.0 / 360.0))
    return np.int16(code - 65536 if code > 32767 else code)


@njit(cache=True)
def _stored(x, offset, zero_point):
    """Measure.MAG from an instrumental magnitude (``offset`` = 2.5 log10(EXPTIME))."""
    return np.float32(x + offset + zero_point)


@njit(cache=True)
def fill_measures(
    m, src, ra, dec, inst, log_kron, counts, mcal, dmcal, scale, codes, offset, zero_point, t, k
):
    """Set the computed fields of Measure rows ``m`` (their other fields already hold the
    template and the copied columns, X_CCD and Y_CCD among them).

    ``src`` holds the :data:`SOURCES` columns, ``ra``, ``dec``, ``inst`` the positions and
    instrumental magnitudes, ``log_kron`` log10(KRON_FLUX); ``counts`` the rows of each chip
    in turn, whose MCAL_PSF, DMCAL, default plate scale (arcsec/pixel) and photcode are
    ``mcal``, ``dmcal``, ``scale``, ``codes``; ``t`` is EXPTIME and ``k`` 2.5 / ln 10.
    """
    i = 0
    for c in range(counts.shape[0]):
        for _ in range(counts[c]):
            r = m[i]
            r.RA, r.DEC = mod360(ra[i]), dec[i]
            r.MAG = _stored(inst[i], offset, zero_point)
            r.M_APER = _stored(src[0, i], offset, zero_point)
            ap_flux, ap_err = src[1, i], src[2, i]
            r.M_APER_ERR = k * ap_err / ap_flux
            kron, kron_err = src[3, i], src[4, i]
            r.M_KRON = _stored(-2.5 * log_kron[i], offset, zero_point)
            r.M_KRON_ERR = k * kron_err / kron
            r.FLUX_PSF = src[5, i] / t
            r.FLUX_PSF_ERR = src[6, i] / t
            r.FLUX_KRON, r.FLUX_KRON_ERR = kron / t, kron_err / t
            r.FLUX_AP, r.FLUX_AP_ERR = ap_flux / t, ap_err / t
            r.X_FIX, r.Y_FIX = r.X_CCD, r.Y_CCD
            r.MCAL_PSF = r.MCAL_APER = mcal[c]
            r.MAG_CAL_ERR = dmcal[c]
            r.SKY_FLUX, r.SKY_FLUX_ERR = src[7, i] / t, src[8, i] / t
            r.FWHM_MAJOR, r.FWHM_MINOR = _centi(src[9, i]), _centi(src[10, i])
            r.PSF_THETA = _angle16(src[11, i])
            r.MXX, r.MXY, r.MYY = _centi(src[12, i]), _centi(src[13, i]), _centi(src[14, i])
            r.X_CCD_ERR, r.Y_CCD_ERR = _centi(src[15, i]), _centi(src[16, i])
            r.POSANGLE = _angle16(src[17, i])
            s = src[18, i]
            r.PLTSCALE = s if np.isfinite(s) and s > 0.0 else scale[c]
            r.PHOTCODE = codes[c]
            i += 1
