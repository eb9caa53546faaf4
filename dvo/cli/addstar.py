"""``addstar``: ingest smf files and reference catalogues."""

from __future__ import annotations

import sys

import click

from dvo.cli.options import catdir_option, quiet_option

known_hosts_option = click.option(
    "--known-hosts", type=click.Path(dir_okay=False), default=None,
    help="Partition hosts: known_hosts file (default ~/.ssh/known_hosts).",
)  # fmt: skip


@click.command()
@catdir_option
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--radius", type=float, default=None, help="Match radius, arcsec.")
@click.option("--replace", is_flag=True, help="Replace measurements of files already loaded.")
@click.option("--photcode", default=None, help="REF photcode name for plain catalogues.")
@click.option(
    "--checkpoint",
    type=click.IntRange(min=1),
    default=None,
    help="Write the changed partitions at least every N files, so that readers see them "
    "(default: at the end, or when they fill the memory budget). Every file is durable anyway.",
)
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait for another writer, or fail at once.",
)
@known_hosts_option
@quiet_option
def addstar(catdir, files, radius, replace, photcode, checkpoint, wait, known_hosts,
            quiet) -> None:  # fmt: skip
    """Ingest FILES (smf exposures, or FITS/Parquet/CSV catalogues) into the database.

    Partitions pushed to partition hosts are updated on their hosts.
    """
    from dvo.cli.progress import progress_bar
    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.ingest import addstar as run

    db = open_database(catdir)

    def show(report) -> str:
        return f"{report.detections:,} detections, {report.new_objects:,} new objects"

    with (
        progress_bar(len(files), "addstar", quiet=quiet, show=show) as bar,
        host_options(known_hosts=known_hosts),
    ):
        report = run(
            db,
            files,
            radius=radius,
            replace=replace,
            photcode=photcode,
            checkpoint=checkpoint,
            progress=None if bar is None else (lambda report: bar(1, report)),
            lock_timeout=None if wait else 0.0,
        )
    if not quiet or report.failed:
        click.echo(report.summary(), err=bool(report.failed) and quiet)
    if report.failed:
        sys.exit(1)


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``addstar`` script."""
    from dvo.cli.main import run_with_errors

    run_with_errors(addstar, args)
