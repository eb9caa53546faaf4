"""``dvo create``: make an empty database."""

from __future__ import annotations

import click


@click.command()
@click.argument("catdir", type=click.Path(file_okay=False))
@click.option("--scheme", type=click.Choice(["gsc", "healpix"]), default="gsc", show_default=True)
@click.option("--level", type=int, default=3, show_default=True, help="GSC level of partitions.")
@click.option("--order", type=int, default=7, show_default=True, help="HEALPix order.")
@click.option(
    "--filters",
    default="g,r,i,z,y,J,H,K,w",
    show_default=True,
    help="Average filters, comma separated.",
)
@click.option(
    "--photcodes",
    type=click.Path(dir_okay=False, exists=True),
    default=None,
    help="A DVO text photcode table instead of the default GPC1 one.",
)
@click.option(
    "--compression",
    type=click.Choice(["default", "none", "ZSTD", "GZIP_2", "GZIP_1"]),
    default="default",
    show_default=True,
    help="Table compression.",
)
@click.option(
    "--radius",
    type=float,
    default=1.0,
    show_default=True,
    help="Default association radius (arcsec).",
)
def create(catdir, scheme, level, order, filters, photcodes, compression, radius) -> None:
    """Make an empty database in CATDIR."""
    from dvo.database import create_database

    db = create_database(
        catdir,
        scheme=scheme,
        level=level,
        order=order,
        filters=tuple(f for f in filters.split(",") if f),
        photcodes=photcodes,
        compression=compression,
        match_radius=radius,
    )
    click.echo(
        f"created {db.catdir}: {len(db.skytable.partitions)} partitions, "
        f"{len(db.photcodes)} photcodes, filters {','.join(db.photcodes.sec_names)}"
    )
