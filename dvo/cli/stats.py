"""``dvo stats``: counts of the database, per-filter ranges, and a sky density map."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option


@click.command()
@catdir_option
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Sky map PNG.")
def stats(catdir, plot) -> None:
    """Partitions, objects, measurements, images; magnitude range per filter."""
    from dvo.database import open_database
    from dvo.query.stats import summary

    db = open_database(catdir)
    click.echo(summary(db))
    if plot:
        from dvo.query.plot import plot_density

        plot_density(db, plot)
