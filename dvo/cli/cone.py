"""``dvo cone RA DEC RADIUS``: objects (or measures, lensing) within a radius."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, format_option, output_option, quiet_option
from dvo.cli.query_options import query_options


@click.command(context_settings={"ignore_unknown_options": True})
@catdir_option
@click.argument("ra")
@click.argument("dec")
@click.argument("radius")
@query_options
@format_option
@output_option
@quiet_option
def cone(catdir, ra, dec, radius, fmt, output, quiet, **opts) -> None:
    """Rows within RADIUS of (RA, DEC), degrees or sexagesimal; RADIUS in deg or 10arcsec."""
    from dvo.cli.query_options import run_region
    from dvo.query.coords import parse_position, parse_radius
    from dvo.query.engine import make_region

    region = make_region("cone", *parse_position(ra, dec), parse_radius(radius))
    run_region(catdir, region, opts, fmt=fmt, output=output, quiet=quiet)
