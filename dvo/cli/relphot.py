"""``relphot``: relative photometric calibration of a database (thin wrapper)."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, quiet_option

known_hosts_option = click.option(
    "--known-hosts", type=click.Path(dir_okay=False), default=None,
    help="Partition hosts: known_hosts file (default ~/.ssh/known_hosts).",
)  # fmt: skip


@click.command()
@catdir_option
@click.option("--dry-run", is_flag=True, help="Solve and report; change nothing.")
@click.option("--flat/--no-flat", default=True, show_default=True, help="Fit M_FLAT cells.")
@click.option("--flat-grid", type=int, default=2, show_default=True, help="Flat cells per axis.")
@click.option(
    "--nights/--no-nights",
    default=False,
    show_default=True,
    help="Tie photometric exposures to a per-night zero point and airmass slope.",
)
@click.option(
    "--zeropoints",
    type=click.Choice(["image", "exposure"]),
    default="image",
    show_default=True,
    help="One free zero point per chip image or per exposure.",
)
@click.option(
    "--pin",
    type=click.Choice(["ref", "photometric", "mean"]),
    default="mean",
    show_default=True,
    help="What fixes the overall zero point of each connected group of images.",
)
@click.option("--iterations", type=int, default=8, show_default=True, help="At most N passes.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), default=None,
              help="Folder for relphot.json and the PNG plots.")  # fmt: skip
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for the lock.")
@known_hosts_option
@quiet_option
def relphot(catdir, dry_run, flat, flat_grid, nights, zeropoints, pin, iterations, report_dir,
            wait, known_hosts, quiet) -> None:  # fmt: skip
    """Solve image zero points (MCAL) and flat-field cells (M_FLAT) and write them back.

    Partitions pushed to partition hosts are summed and rewritten on their hosts.
    """
    import logging

    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.relphot import relphot as run

    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    db = open_database(catdir)
    with host_options(known_hosts=known_hosts):
        report = run(
            db,
            dry_run=dry_run,
            report_dir=report_dir,
            lock_timeout=None if wait else 0.0,
            flat=flat,
            flat_grid=flat_grid,
            nights=nights,
            zeropoints=zeropoints,
            pin=pin,
            iterations=iterations,
        )
    click.echo(report.summary())


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``relphot`` script."""
    from dvo.cli.main import run_with_errors

    run_with_errors(relphot, args)
