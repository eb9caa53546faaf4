"""``dvo box RA_MIN RA_MAX DEC_MIN DEC_MAX``: rows in an RA/Dec box."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, format_option, output_option, quiet_option
from dvo.cli.query_options import query_options


@click.command(context_settings={"ignore_unknown_options": True})
@catdir_option
@click.argument("ra_min")
@click.argument("ra_max")
@click.argument("dec_min")
@click.argument("dec_max")
@query_options
@format_option
@output_option
@quiet_option
def box(catdir, ra_min, ra_max, dec_min, dec_max, fmt, output, quiet, **opts) -> None:
    """Rows with RA in [RA_MIN, RA_MAX] (RA_MIN > RA_MAX crosses 0), Dec in [DEC_MIN, DEC_MAX]."""
    from dvo.cli.query_options import run_region
    from dvo.query.coords import parse_dec, parse_ra
    from dvo.query.engine import make_region

    region = make_region(
        "box", parse_ra(ra_min), parse_ra(ra_max), parse_dec(dec_min), parse_dec(dec_max)
    )
    run_region(catdir, region, opts, fmt=fmt, output=output, quiet=quiet)
