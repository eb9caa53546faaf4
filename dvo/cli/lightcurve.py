"""``dvo lightcurve ID`` or ``dvo lightcurve RA DEC``: the measurements of one object."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, format_option, output_option


@click.command(context_settings={"ignore_unknown_options": True})
@catdir_option
@click.argument("target", nargs=-1, required=True)
@click.option("--radius", default="1arcsec", show_default=True, help="Search radius by position.")
@click.option("-p", "--photcode", "photcodes", multiple=True, help="Only this photcode or filter.")
@click.option("--raw", is_flag=True, help="Stored MAG instead of the calibrated magnitude.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Draw to a PNG.")
@format_option
@output_option
def lightcurve(catdir, target, radius, photcodes, raw, plot, fmt, output) -> None:
    """Measurements of object ID, or of the object nearest RA DEC, sorted by time."""
    from dvo.database import open_database
    from dvo.errors import QueryError
    from dvo.query.coords import parse_position, parse_radius
    from dvo.query.output import write

    db = open_database(catdir)
    options = dict(photcodes=list(photcodes) or None, calibrated=not raw)
    if len(target) == 1:
        try:
            oid = int(target[0], 0)
        except ValueError:
            raise QueryError(f"object id must be an integer, got {target[0]!r}") from None
        lc = db.lightcurve(oid, **options)
    elif len(target) == 2:
        ra, dec = parse_position(*target)
        lc = db.lightcurve(ra, dec, radius=parse_radius(radius) * 3600, **options)
    else:
        raise QueryError("give an object id, or RA DEC")
    if plot:
        from dvo.query.plot import plot_lightcurve

        plot_lightcurve(lc, plot)
    write(lc, fmt, output)
