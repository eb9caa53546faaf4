"""``dvo crossmatch FILE --radius R``: nearest object for each row of a table."""

from __future__ import annotations

import warnings

import click

from dvo.cli.options import catdir_option, format_option, output_option, quiet_option
from dvo.cli.query_options import (
    allow_partial_option,
    columns_option,
    jobs_option,
    known_hosts_option,
    where_option,
)


@click.command()
@catdir_option
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("-r", "--radius", required=True, help="Match radius: arcsec, or 2arcsec, 0.1arcmin.")
@click.option("--all", "every", is_flag=True, help="Every object within the radius.")
@columns_option
@where_option
@jobs_option
@allow_partial_option
@known_hosts_option
@format_option
@output_option
@quiet_option
def crossmatch(catdir, file, radius, every, columns, where, jobs, fmt, output, quiet) -> None:
    """Match FILE (FITS/CSV/Parquet with ra, dec columns) against the objects."""
    from dvo.cli.progress import progress_bar
    from dvo.cli.query_options import _host_settings
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.query.coords import parse_radius
    from dvo.query.output import write

    text = radius.strip()
    arcsec = float(text) if text.replace(".", "", 1).isdigit() else parse_radius(text) * 3600
    db = open_database(catdir)
    with (
        progress_bar(len(db.populated()), "crossmatch", quiet=quiet) as bar,
        host_options(**_host_settings()),
        warnings.catch_warnings(record=True) as caught,
    ):
        result = db.crossmatch(
            file, arcsec, all=every, columns=columns, where=where, jobs=jobs, progress=bar
        )
    for w in caught:  # partition-host warnings become one stderr line; others pass through
        if w.category.__module__.startswith("dvo.hosts"):  # partial result, failover, stale
            click.echo(f"warning: {w.message}", err=True)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)
    write(result, fmt, output)
