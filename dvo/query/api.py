"""The query methods of :class:`dvo.database.Database` (one-liners over the query engine).

Every region method takes the options of :func:`dvo.query.engine.query`: ``table=``
(``objects``, ``measures``, ``lensing``), ``columns=``, ``where=``, ``limit=``,
``order_by=``, ``jobs=``, ``output=`` (``astropy``, ``arrow``, ``numpy``) and ``progress=``.
Unknown option names raise TypeError.

Examples
--------
>>> import dvo                                                  # doctest: +SKIP
>>> db = dvo.open("mydb")                                       # doctest: +SKIP
>>> db.cone(210.8, 54.3, 0.05, where="nmeasure > 3 and g < 19")  # doctest: +SKIP
>>> db.lightcurve(210.80123, 54.29871)                          # doctest: +SKIP
"""

from __future__ import annotations


class QueryMixin:
    """Mixed into Database: ``cone``, ``box``, ``polygon``, ``sky``, ``query``, ``explain``,
    ``object``, ``lightcurve``, ``crossmatch``. Each is a thin call into :mod:`dvo.query`."""

    def query(self, region=None, **options):
        """Rows of a table in any region (see :func:`dvo.query.engine.query`)."""
        from dvo.query.engine import query

        return query(self, region, **options)

    def cone(self, ra: float, dec: float, radius: float, **options):
        """Rows within ``radius`` degrees of (``ra``, ``dec``) (degrees)."""
        from dvo.query.engine import make_region

        return self.query(make_region("cone", ra, dec, radius), **options)

    def box(self, ra_min: float, ra_max: float, dec_min: float, dec_max: float, **options):
        """Rows in an RA/Dec box (``ra_min > ra_max`` crosses RA 0), degrees."""
        from dvo.query.engine import make_region

        return self.query(make_region("box", ra_min, ra_max, dec_min, dec_max), **options)

    def polygon(self, ra, dec, **options):
        """Rows inside a convex spherical polygon with vertices (``ra[i]``, ``dec[i]``)."""
        from dvo.query.engine import make_region

        return self.query(make_region("polygon", ra, dec), **options)

    def sky(self, **options):
        """Rows of the whole database."""
        from dvo.query.engine import make_region

        return self.query(make_region("sky"), **options)

    def explain(self, region=None, **options):
        """The :class:`dvo.query.plan.Plan` of a query, without running it."""
        from dvo.query.engine import explain

        return explain(self, region, **options)

    def object(self, obj_id, **options):
        """Object rows by 64-bit id (all columns by default); see :mod:`dvo.query.lookup`."""
        from dvo.query.lookup import objects

        return objects(self, obj_id, **options)

    def lightcurve(self, obj_id_or_ra, dec: float | None = None, **options):
        """Measurements of one object, by id or nearest to (ra, dec); sorted by time."""
        from dvo.query.lookup import lightcurve

        return lightcurve(self, obj_id_or_ra, dec, **options)

    def crossmatch(self, table_or_path, radius: float, **options):
        """Nearest object within ``radius`` arcsec of each input row (``all=True``: every one)."""
        from dvo.query.crossmatch import crossmatch

        return crossmatch(self, table_or_path, radius, **options)
