"""dvo.skytable: the hierarchical sky partition (GSC-style boxes or HEALPix pixels).

Knows nothing about catalogs: it maps points and regions to partitions and reads and
writes the SkyTable FITS file. Only ``dvo.errors`` is imported from the dvo namespace.
"""

from dvo.skytable.names import is_safe_name, safe_names
from dvo.skytable.regions import AllSky, Box, Cone, Polygon, Region
from dvo.skytable.table import Scheme, SkyTable

__all__ = [
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
