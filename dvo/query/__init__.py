"""Queries: regions -> partitions -> parallel scans -> merged tables.

Modules, in the order a query goes through them:

- :mod:`dvo.query.expr`: the ``where`` language (tokenizer, recursive-descent parser, checks,
  numpy evaluation; never ``eval``);
- :mod:`dvo.query.tables`: the query tables (``objects``, ``measures``, ``lensing``), their
  columns and units;
- :mod:`dvo.query.plan`: SkyTable lookup and pruning with the statistics index -> a ``Plan``;
- :mod:`dvo.query.scan`: one partition scan, a pure function of (catdir, index, request);
- :mod:`dvo.query.execute`: executors (in-process, process pool; partition hosts plug in here);
- :mod:`dvo.query.engine`: the generic ``query`` (validate, plan, execute, merge, output);
- :mod:`dvo.query.lookup`, :mod:`dvo.query.crossmatch`, :mod:`dvo.query.export`: object and
  lightcurve lookups, crossmatch, HATS export;
- :mod:`dvo.query.coords`, :mod:`dvo.query.output`, :mod:`dvo.query.plot`,
  :mod:`dvo.query.stats`: what the ``dvo`` commands need around them.

The user-facing API is on the database (:class:`dvo.query.api.QueryMixin`): ``db.cone``,
``db.box``, ``db.polygon``, ``db.sky``, ``db.query``, ``db.explain``, ``db.object``,
``db.lightcurve``, ``db.crossmatch``. See ``docs/query.md``.
"""
