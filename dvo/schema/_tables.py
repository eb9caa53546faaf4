"""Column lists of the PS1_V6 tables, and the :class:`Schema` value object built from them."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dvo.errors import SchemaError


@dataclass(frozen=True)
class Schema:
    """A table layout: ordered columns with numpy dtypes, units and fill values.

    Parameters
    ----------
    name : str
        The DVO table name, also written as EXTNAME (e.g. ``DVO_AVERAGE_PS1_V6``).
    columns : tuple of (name, dtype, unit)
        FITS column names in file order; ``dtype`` is a numpy type string, with a shape
        prefix for vector columns (``"14f4"``).
    """

    name: str
    columns: tuple[tuple[str, str, str], ...]
    dtype: np.dtype = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype([(c, t) for c, t, _ in self.columns]))

    @property
    def names(self) -> tuple[str, ...]:
        """Column names in file order."""
        return self.dtype.names

    @property
    def units(self) -> dict[str, str]:
        """Column name -> unit, for columns that have one."""
        return {c: u for c, _, u in self.columns if u}

    def empty(self, n: int) -> np.ndarray:
        """``n`` rows with floats NaN (DVO's "not measured") and everything else zero."""
        template = np.zeros(1, self.dtype)
        for name in self.names:
            if template.dtype[name].base.kind == "f":
                template[name] = np.nan
        out = np.empty(n, self.dtype)
        opaque(out)[...] = opaque(template)[0]  # a byte copy per row, not per field
        return out

    def conform(self, data: np.ndarray, *, what: str = "table") -> np.ndarray:
        """Return ``data`` with exactly this schema's columns and types.

        Raises
        ------
        SchemaError
            If a column is missing or cannot be cast safely.
        """
        missing = [c for c in self.names if c not in (data.dtype.names or ())]
        if missing:
            raise SchemaError(f"{what}: missing columns {', '.join(missing)} for {self.name}")
        if data.dtype == self.dtype:
            return data
        out = np.empty(len(data), self.dtype)
        for name in self.names:
            out[name] = data[name]
        return out


def opaque(a: np.ndarray) -> np.ndarray:
    """Rows of a contiguous structured array as opaque byte records (same shape).

    Copies, takes, inserts and scatters on this view are plain memory copies, several times
    faster than numpy's field-by-field structured ones; ``.view(a.dtype)`` turns a result
    back into rows.
    """
    return a.view((np.void, a.dtype.itemsize)) if a.dtype.names else a


def _cols(spec: str) -> tuple[tuple[str, str, str], ...]:
    """Parse ``NAME type [unit]`` lines into column tuples."""
    rows = []
    for line in spec.strip().splitlines():
        parts = line.split()
        rows.append((parts[0], parts[1], parts[2] if len(parts) > 2 else ""))
    return tuple(rows)


AVERAGE = Schema(
    "DVO_AVERAGE_PS1_V6",
    _cols("""
RA f8 deg
DEC f8 deg
RA_ERR f4 arcsec
DEC_ERR f4 arcsec
U_RA f4 arcsec/yr
U_DEC f4 arcsec/yr
V_RA_ERR f4 arcsec/yr
V_DEC_ERR f4 arcsec/yr
PAR f4 arcsec
PAR_ERR f4 arcsec
RA_STK f8 deg
DEC_STK f8 deg
RA_STK_ERR f4 arcsec
DEC_STK_ERR f4 arcsec
CHISQ_POS f4
CHISQ_PM f4
CHISQ_PLX f4
MEAN_EPOCH i4 s
TIME_RANGE i4 s
PSF_QF f4
PSF_QF_PERF f4
STARGAL_SEP f4
NUMBER_POS u2
NMEASURE u2
NMISSING u2
NLENSING u2
NLENSOBJ u2
NGALPHOT u2
OFF_MEASURE i4
OFF_MISSING i4
OFF_LENSING i4
OFF_LENSOBJ i4
OFF_STARPAR i4
OFF_GALPHOT i4
REF_COLOR_BLUE f4
REF_COLOR_RED f4
TESS_ID S1
SKYCELL_ID S1
PROJECTION_ID i2
NSTARPAR i2
NWARP_OK i2
FLAGS u4
PHOTFLAGS_U u4
PHOTFLAGS_L u4
OBJ_ID u4
CAT_ID u4
EXT_ID i8
U_RA_GAL f4 arcsec/yr
U_DEC_GAL f4 arcsec/yr
"""),
)

SECFILT = Schema(
    "DVO_SECFILT_PS1_V6",
    _cols("""
MAG f4 mag
MAG_ERR f4 mag
MAG_AP f4 mag
MAG_AP_ERR f4 mag
MAG_AP_STDEV f4 mag
MAG_KRON f4 mag
MAG_KRON_ERR f4 mag
MAG_KRON_STDEV f4 mag
PSF_QF_MAX f4
PSF_QF_PERF_MAX f4
MAG_STDEV f4 mag
MAG_MIN f4 mag
MAG_MAX f4 mag
MAG_CHI f4
NCODE i2
NUSED i2
NUSED_KRON i2
NUSED_AP i2
FLAGS u4
MAG_PSF_STK f4 mag
FLUX_PSF_STK f4
FLUX_PSF_STK_ERR f4
MAG_KRON_STK f4 mag
FLUX_KRON_STK f4
FLUX_KRON_STK_ERR f4
MAG_AP_STK f4 mag
FLUX_AP_STK f4
FLUX_AP_STK_ERR f4
NSTACK i2
NSTACK_DET i2
STACK_PRIMARY_OFF i4
STACK_BEST_OFF i4
MAG_PSF_WRP f4 mag
FLUX_PSF_WRP f4
FLUX_PSF_WRP_ERR f4
FLUX_PSF_WRP_STD f4
MAG_KRON_WRP f4 mag
FLUX_KRON_WRP f4
FLUX_KRON_WRP_ERR f4
FLUX_KRON_WRP_STD f4
MAG_AP_WRP f4 mag
FLUX_AP_WRP f4
FLUX_AP_WRP_ERR f4
FLUX_AP_WRP_STD f4
NUSED_WRP i2
NUSED_KRON_WRP i2
NUSED_AP_WRP i2
NWARP i2
NWARP_GOOD i2
UBERCAL_DIST i2
"""),
)

MEASURE = Schema(
    "DVO_MEASURE_PS1_V6",
    _cols("""
RA f8 deg
DEC f8 deg
MAG f4 mag
MAG_ERR f4 mag
M_APER f4 mag
M_APER_ERR f4 mag
M_KRON f4 mag
M_KRON_ERR f4 mag
MCAL_PSF f4 mag
MAG_CAL_ERR f4 mag
M_TIME f4 mag
FLUX_PSF f4 ct/s
FLUX_PSF_ERR f4 ct/s
FLUX_KRON f4 ct/s
FLUX_KRON_ERR f4 ct/s
FLUX_AP f4 ct/s
FLUX_AP_ERR f4 ct/s
AIRMASS f4
AZ f4 deg
X_CCD f4 pix
Y_CCD f4 pix
X_FIX f4 pix
Y_FIX f4 pix
X_OFF_KH f4 pix
Y_OFF_KH f4 pix
X_OFF_DCR f4 pix
Y_OFF_DCR f4 pix
X_OFF_CAM f4 pix
Y_OFF_CAM f4 pix
M_FLAT f4 mag
MCAL_APER f4 mag
SKY_FLUX f4 ct/s
SKY_FLUX_ERR f4 ct/s
TIME i4 s
AVE_REF u4
DET_ID u4
OBJ_ID u4
CAT_ID u4
EXT_ID i8
IMAGE_ID u4
PSF_QF f4
PSF_QF_PEFECT f4
PSF_CHISQ f4
PSF_NDOF i4
PSF_NPIX i4
PHOT_FLAGS2 u4
EXT_NSIGMA f4
FWHM_MAJOR i2
FWHM_MINOR i2
PSF_THETA i2
MXX i2
MXY i2
MYY i2
TIME_MSEC u2
PHOTCODE u2
X_CCD_ERR i2
Y_CCD_ERR i2
POS_SYS_ERR i2
POSANGLE i2
PLTSCALE f4 arcsec/pix
DB_FLAGS u4
PHOT_FLAGS u4
PADDING i4
"""),
)

_LENS_TERMS = [
    f"{p}_{k}"
    for k in ("SM_OBJ", "SH_OBJ", "SM_PSF", "SH_PSF")
    for p in ("X11", "X12", "X22", "E1", "E2")
]
_AP_TERMS = [f"FLUX_{q}AP_{r}" for r in ("R5", "R6", "R7") for q in ("", "ERR_", "STD_", "FIL_")]

LENSING = Schema(
    "DVO_LENSING_PS1_V6",
    tuple((c, "f4", "") for c in _LENS_TERMS)
    + (("E1_PSF", "f4", ""), ("E2_PSF", "f4", ""))
    + tuple((c, "f4", "ct/s") for c in _AP_TERMS)
    + tuple(
        (c, "u4", "") for c in ("DET_ID", "OBJ_ID", "CAT_ID", "AVE_REF", "IMAGE_ID", "OLD_IM_ID")
    ),
)

LENSOBJ = Schema(
    "DVO_LENSOBJ_PS1_V6",
    tuple((c, "f4", "") for c in _LENS_TERMS)
    + tuple((c, "f4", "ct/s") for c in _AP_TERMS)
    + _cols("""
GAMMA f4
E1 f4
E2 f4
OBJ_ID u4
CAT_ID u4
PHOTCODE u2
NMEAS i2
"""),
)

IMAGE = Schema(
    "DVO_IMAGE_PS1_V6",
    _cols("""
CRVAL1 f8 deg
CRVAL2 f8 deg
CRPIX1 f4 pix
CRPIX2 f4 pix
CDELT1 f4 deg/pix
CDELT2 f4 deg/pix
PC1_1 f4
PC1_2 f4
PC2_1 f4
PC2_2 f4
POLYTERMS 14f4
CTYPE S15
NPOLYTERMS i1
TZERO i4 s
NSTAR i4
SECZ f4
NX u2 pix
NY u2 pix
APMIFIT f4 mag
DAPMIFIT f4 mag
MCAL_PSF f4 mag
MCAL_APER f4 mag
DMCAL f4 mag
XM f4
PADDING i2
PHOTCODE i2
EXPTIME f4 s
ST f4
LAT f4 deg
RA_CENTER f4 deg
DEC_CENTER f4 deg
RADIUS f4 deg
REF_COLOR_BLUE f4
REF_COLOR_RED f4
NAME S117
DETECTION_LIMIT u1
SATURATION_LIMIT u1
CERROR u1
FWHM_X u1
FWHM_Y u1
TRATE u1
CCDNUM u1
FLAGS u4
IMAGE_ID u4
PARENT_ID u4
EXTERN_ID i4
SOURCE_ID u2
NLINK_ASTROM i2
NLINK_PHOTOM i2
UBERCAL_DIST i2
XPIX_SYS_ERR f4 pix
YPIX_SYS_ERR f4 pix
MAG_SYS_ERR f4 mag
N_FIT_ASTROM i2
N_FIT_PHOTOM i2
PHOTOM_MAP_ID i4
ASTROM_MAP_ID i4
MJD_OBS f8 d
EXP_ID i8
"""),
)

PHOTCODE = Schema(
    "DVO_PHOTCODE_PS1_V6",
    _cols("""
CODE u2
NAME S32
TYPE u1
DUMMY S3
C_LAM i2 mmag
C_LAM_ERR i2 mmag
X_ERR i2 mmag
K f4 mag
C1 i4
C2 i4
EQUIV i4
NC i4
X 4f4
ASTROM_ERR_SYS f4 arcsec
ASTROM_ERR_SCALE f4
ASTROM_ERR_MAG_SCALE f4
ASTROM_POOR_MASK u4
ASTROM_BAD_MASK u4
PHOTOM_ERR_SYS f4 mag
PHOTOM_POOR_MASK u4
PHOTOM_BAD_MASK u4
"""),
)

#: Columns dvo adds to the DVO layouts, and why.
ADDED: dict[str, str] = {
    "IMAGE.MJD_OBS": "exposure start as MJD in double precision: TZERO (int unix seconds) "
    "loses the sub-second time that parallax and proper-motion fits need",
    "IMAGE.EXP_ID": "external exposure id (smf EXP_ID) so a whole exposure can be recognised "
    "on re-ingest and grouped by relphot/relastro",
}


def _check_sizes() -> None:
    """The DVO row sizes are authoritative (libautocode dies otherwise); keep ours equal."""
    expected = {AVERAGE: 192, SECFILT: 176, MEASURE: 240, LENSING: 160, LENSOBJ: 152}
    for schema, size in expected.items():
        if schema.dtype.itemsize != size:
            raise SchemaError(f"{schema.name}: {schema.dtype.itemsize} bytes, DVO has {size}")


_check_sizes()
