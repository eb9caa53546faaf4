"""dvo.skytable: the hierarchical sky partition (GSC-style boxes or HEALPix pixels).

Knows nothing about catalogs: it maps points and regions to partitions and reads and
writes the SkyTable FITS file. Only ``dvo.errors`` is imported from the dvo namespace.

Conventions (details in the module docstrings):

- Rows are numpy columns; row ``i`` has INDEX ``i``; rows are ordered by depth, children of
  a row are the contiguous rows ``child_s .. child_e - 1``; ``has_table`` marks partitions.
- GSC scheme (:mod:`dvo.skytable._gsc`): depth 0 ``fullsky``, 1 the 24 Dec bands
  ``n0000``..``s8230``, 2 the 732 large regions ``<band>/z%03d`` plus ``<band>/pole`` in
  each polar band, 3 the small regions ``<band>/%04d`` (k x k, k = 2..4 by star density)
  and ``<band>/pole.0``..``pole.4``, 4 ``<name>.00``..``.15``.
- A point belongs to the box with ``R_MIN <= ra < R_MAX``, ``D_MIN <= dec < D_MAX``; Dec +90
  to the boxes reaching +90; RA is taken modulo 360; NaN or |Dec| > 90 raise SkyTableError.
- HEALPix scheme (:mod:`dvo.skytable._healpix`): depth = order, names
  ``Norder=<k>/Dir=<d>/Npix=<p>`` (the HATS layout), membership by ``healpy.ang2pix`` nested.
- Names are safe relative paths (:func:`is_safe_name`); the catalog file of a partition is
  ``<catdir>/<name>.<ext>``.
"""

from dvo.skytable._sphere import angular_distance
from dvo.skytable.names import is_safe_name, safe_names
from dvo.skytable.regions import AllSky, Box, Cone, Polygon, Region
from dvo.skytable.table import Scheme, SkyTable

__all__ = [
    "angular_distance",
    "AllSky",
    "Box",
    "Cone",
    "Polygon",
    "Region",
    "Scheme",
    "SkyTable",
    "is_safe_name",
    "safe_names",
]
