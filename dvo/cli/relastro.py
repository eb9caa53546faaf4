"""``relastro``: relative astrometric calibration (chip corrections, positions, motions)."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, quiet_option
from dvo.cli.relphot import known_hosts_option


@click.command()
@catdir_option
@click.option("--dry-run", is_flag=True, help="Solve and report; write nothing.")
@click.option("--iterations", type=int, default=20, show_default=True, help="Maximum passes.")
@click.option("--order-max", type=int, default=3, show_default=True, help="Chip order cap (0-3).")
@click.option("--pm/--no-pm", default=True, show_default=True, help="Fit proper motions.")
@click.option("--parallax/--no-parallax", default=True, show_default=True, help="Fit parallaxes.")
@click.option(
    "--ref-photcode", default="GAIA", show_default=True, help="REF photcode of the reference."
)
@click.option("--no-ref", is_flag=True, help="Ignore reference objects; pin the free frame.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False), help="Report folder.")
@click.option("--wait", type=float, default=None, help="Seconds to wait for the writer lock.")
@known_hosts_option
@quiet_option
def relastro(
    catdir, dry_run, iterations, order_max, pm, parallax, ref_photcode, no_ref, report_dir, wait,
    known_hosts, quiet,
) -> None:  # fmt: skip
    """Fit chip astrometric corrections and object positions, proper motions and parallaxes.

    Partitions pushed to partition hosts are fitted and rewritten on their hosts.
    """
    import logging

    from dvo.database import open_database
    from dvo.hosts.executor import host_options
    from dvo.relastro import relastro as run

    if not quiet:
        logging.basicConfig(level=logging.INFO, format="%(message)s")
    with host_options(known_hosts=known_hosts):
        report = run(
            open_database(catdir),
            iterations=iterations,
            order_max=order_max,
            pm=pm,
            parallax=parallax,
            ref_photcode=None if no_ref else ref_photcode,
            dry_run=dry_run,
            report_dir=report_dir,
            lock_timeout=wait,
        )
    if not quiet:
        click.echo(report.summary())


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``relastro`` script."""
    from dvo.cli.main import run_with_errors

    run_with_errors(relastro, args)
