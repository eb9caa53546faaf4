"""``dvo explain cone|box|polygon|sky ARGS``: print the plan of a query without running it."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option
from dvo.cli.query_options import query_options


@click.command(context_settings={"ignore_unknown_options": True})
@catdir_option
@click.argument("kind", type=click.Choice(["cone", "box", "polygon", "sky"]))
@click.argument("args", nargs=-1)
@query_options
def explain(catdir, kind, args, jobs, **opts) -> None:
    """Partitions considered, pruned (and why), where each runs, rows expected."""
    from dvo.database import open_database
    from dvo.query.coords import parse_dec, parse_ra, parse_radius
    from dvo.query.engine import explain as plan
    from dvo.query.engine import make_region

    if kind == "cone":
        values = (
            [parse_ra(args[0]), parse_dec(args[1]), parse_radius(args[2])]
            if len(args) == 3
            else None
        )
    elif kind == "box":
        values = (
            [parse_ra(args[0]), parse_ra(args[1]), parse_dec(args[2]), parse_dec(args[3])]
            if len(args) == 4
            else None
        )
    elif kind == "polygon":
        values = [[parse_ra(a) for a in args[::2]], [parse_dec(d) for d in args[1::2]]]
    else:
        values = []
    if values is None:
        raise click.UsageError(f"wrong number of coordinates for {kind}")
    db = open_database(catdir)
    click.echo(plan(db, make_region(kind, *values), jobs=jobs, **opts).describe())
