"""Flag bits DVO tools set (from DVO's ``dvo.h``): Measure DB_FLAGS, Image FLAGS, Average FLAGS."""

from __future__ import annotations

import enum

__all__ = ["MeasFlags", "ImageFlags", "ObjFlags"]


class MeasFlags(enum.IntFlag):
    """Measure.DB_FLAGS bits (ID_MEAS_*)."""

    NOCAL = 0x1
    POOR_PHOTOM = 0x2
    SKIP_PHOTOM = 0x4
    AREA = 0x8
    POOR_ASTROM = 0x10
    SKIP_ASTROM = 0x20
    USED_OBJ = 0x40
    USED_CHIP = 0x80
    BLEND_MEAS = 0x100
    BLEND_OBJ = 0x200
    BLEND_MEAS_X = 0x1000


class ImageFlags(enum.IntFlag):
    """Image.FLAGS bits (ID_IMAGE_*)."""

    PHOTOM_NOCAL = 0x1
    PHOTOM_POOR = 0x2
    PHOTOM_SKIP = 0x4
    PHOTOM_FEW = 0x8
    ASTROM_NOCAL = 0x10
    ASTROM_POOR = 0x20
    ASTROM_FAIL = 0x40
    ASTROM_SKIP = 0x80
    ASTROM_FEW = 0x100
    PHOTOM_UBERCAL = 0x200
    MOSAIC_POOR = 0x800
    NIGHT_POOR = 0x1000
    IMAGE_PHOTCAL = 0x8000
    EXPOSURE = 0x40000000  # dvo: the row describes a whole exposure, not a chip


class ObjFlags(enum.IntFlag):
    """Average.FLAGS bits used by dvo (DVO ID_OBJ_* fit-model bits)."""

    FIT_AVE = 0x1
    FIT_PM = 0x2
    FIT_PAR = 0x4
    ASTROMETRY_FITTED = 0x100  # relastro wrote the position; addstar leaves it alone
