"""Options and the run-and-print helper shared by the query commands (cone, box, ...)."""

from __future__ import annotations

import warnings

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


def _host_setting(ctx: click.Context, param: click.Parameter, value):
    """Keep a partition-host option in ``ctx.meta`` (commands do not take it as an argument)."""
    ctx.meta[f"dvo.hosts.{param.name}"] = value
    return value


allow_partial_option = click.option(
    "--allow-partial", is_flag=True, expose_value=False, callback=_host_setting,
    help="Partition hosts: return what came back and warn, listing missing partitions.",
)  # fmt: skip
known_hosts_option = click.option(
    "--known-hosts", type=click.Path(dir_okay=False), default=None, expose_value=False,
    callback=_host_setting, help="Partition hosts: known_hosts file (default ~/.ssh/known_hosts).",
)  # fmt: skip


def query_options(func):
    """Apply the options every region command takes."""
    for option in reversed(
        [table_option, columns_option, where_option, limit_option, order_option, jobs_option,
         allow_partial_option, known_hosts_option]
    ):  # fmt: skip
        func = option(func)
    return func


def _host_settings() -> dict:
    ctx = click.get_current_context(silent=True)
    meta = {} if ctx is None else ctx.meta
    return {"allow_partial": bool(meta.get("dvo.hosts.allow_partial", False)),
            "known_hosts": meta.get("dvo.hosts.known_hosts")}  # fmt: skip


def run_region(catdir, region, opts: dict, *, fmt: str, output, quiet: bool) -> None:
    """Plan, run with a progress bar on a terminal, and print or write the result."""
    from dvo.cli.progress import progress_bar
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.query import tables
    from dvo.query.engine import build_request, run_plan
    from dvo.query.output import write
    from dvo.query.plan import plan_query

    db = open_database(catdir)
    jobs = opts.pop("jobs", None)
    req = build_request(db, region, **opts)
    with db.reader():  # a consistent snapshot: no commit lands while we read
        plan = plan_query(db, region, req)
        with (
            progress_bar(len(plan.scan), "query", quiet=quiet or len(plan.scan) < 8) as bar,
            host_options(**_host_settings()),
            warnings.catch_warnings(record=True) as caught,
        ):
            arr = run_plan(db, plan, jobs=jobs, progress=bar)
    for w in caught:  # partition-host warnings become one stderr line; others pass through
        if w.category.__module__.startswith("dvo.hosts"):  # partial result, failover, stale
            click.echo(f"warning: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    sec = tuple(db.photcodes.sec_names)
    write(arr, fmt, output, units=tables.units(req.table, sec, req.columns))
