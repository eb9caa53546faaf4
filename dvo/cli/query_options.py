"""Options and the run-and-print helper shared by the query commands (cone, box, ...)."""

from __future__ import annotations

import click

table_option = click.option(
    "--table",
    type=click.Choice(["objects", "measures", "lensing"]),
    default="objects",
    show_default=True,
    help="Table to query.",
)
columns_option = click.option(
    "-c", "--columns", default=None, help="Comma-separated columns, or '*' (default: a summary)."
)
where_option = click.option(
    "-w", "--where", default=None, help='Filter, e.g. "g < 19 and nmeasure > 3".'
)
limit_option = click.option("-n", "--limit", type=int, default=None, help="At most this many rows.")
order_option = click.option("--order-by", default=None, help="Sort column ('-col' for descending).")
jobs_option = click.option(
    "-j", "--jobs", type=int, default=None, help="Worker processes (default: number of cores)."
)


def query_options(func):
    """Apply the options every region command takes."""
    for option in reversed(
        [table_option, columns_option, where_option, limit_option, order_option, jobs_option]
    ):
        func = option(func)
    return func


def run_region(catdir, region, opts: dict, *, fmt: str, output, quiet: bool) -> None:
    """Plan, run with a progress bar on a terminal, and print or write the result."""
    from dvo.cli.progress import progress_bar
    from dvo.database import open_database
    from dvo.query import tables
    from dvo.query.engine import build_request, run_plan, to_output
    from dvo.query.output import write
    from dvo.query.plan import plan_query

    db = open_database(catdir)
    jobs = opts.pop("jobs", None)
    req = build_request(db, region, **opts)
    plan = plan_query(db, region, req)
    with progress_bar(len(plan.scan), "query", quiet=quiet or len(plan.scan) < 8) as bar:
        arr = run_plan(db, plan, jobs=jobs, progress=bar)
    sec = tuple(db.photcodes.sec_names)
    write(to_output(arr, tables.units(req.table, sec, req.columns)), fmt, output)
