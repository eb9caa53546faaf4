"""``dvo polygon RA1 DEC1 RA2 DEC2 RA3 DEC3 ...``: rows inside a convex polygon."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, format_option, output_option, quiet_option
from dvo.cli.query_options import query_options


@click.command(context_settings={"ignore_unknown_options": True})
@catdir_option
@click.argument("vertices", nargs=-1, required=True)
@query_options
@format_option
@output_option
@quiet_option
def polygon(catdir, vertices, fmt, output, quiet, **opts) -> None:
    """Rows inside the convex polygon with vertices RA DEC pairs (at least 3 pairs)."""
    from dvo.cli.query_options import run_region
    from dvo.errors import QueryError
    from dvo.query.coords import parse_position
    from dvo.query.engine import make_region

    if len(vertices) < 6 or len(vertices) % 2:
        raise QueryError("polygon: give at least 3 vertices as RA DEC pairs")
    pairs = [parse_position(a, b) for a, b in zip(vertices[::2], vertices[1::2], strict=True)]
    region = make_region("polygon", [p[0] for p in pairs], [p[1] for p in pairs])
    run_region(catdir, region, opts, fmt=fmt, output=output, quiet=quiet)
