"""``dvo skytable build|show|plot``: thin wrappers over :mod:`dvo.skytable`."""

from __future__ import annotations

import click

from dvo.errors import SkyTableError


@click.group()
def skytable() -> None:
    """Build, summarise and draw sky partition tables (SkyTable.fits)."""


@skytable.command()
@click.option("--scheme", type=click.Choice(["gsc", "healpix"]), default="gsc", show_default=True)
@click.option(
    "--level", type=int, default=3, show_default=True, help="GSC depth of the tables (1-4)."
)
@click.option(
    "--order", type=int, default=7, show_default=True, help="HEALPix order of the tables."
)
@click.option(
    "--density",
    "density_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="HEALPix star-count map (FITS); default: the bundled Galactic model.",
)
@click.option(
    "--max-per-partition",
    type=float,
    default=None,
    help="Build the density-adaptive table with at most this many per partition.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="SkyTable.fits",
    show_default=True,
    help="Output file.",
)
def build(scheme, level, order, density_path, max_per_partition, output) -> None:
    """Build a SkyTable and write it as FITS."""
    from dvo.skytable import Scheme, SkyTable
    from dvo.skytable.density import default_density, read_density

    density = read_density(density_path) if density_path else None
    if max_per_partition is not None:
        dens = default_density() if density is None else density
        st = SkyTable.adaptive(dens, max_per_partition, scheme=Scheme(scheme))
    elif scheme == "gsc":
        st = SkyTable.gsc(level, density=density)
    else:
        if density is not None:
            raise SkyTableError("--density needs --max-per-partition with --scheme healpix")
        st = SkyTable.healpix(order)
    st.write(output)
    click.echo(f"wrote {output}: {st!r}")


@skytable.command()
@click.argument("path", type=click.Path(dir_okay=False))
def show(path) -> None:
    """Print a summary: counts per depth and Dec band, partition area spread."""
    from dvo.skytable import SkyTable
    from dvo.skytable.summary import format_summary

    click.echo(format_summary(SkyTable.read(path)))


@skytable.command()
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--level", type=int, default=None, help="Depth to draw (default: the table level).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False),
    default="skytable.png",
    show_default=True,
    help="PNG file to write.",
)
def plot(path, level, output) -> None:
    """Draw the partitions at one depth on an all-sky Mollweide map (PNG)."""
    from dvo.skytable import SkyTable
    from dvo.skytable.plot import plot_partitions

    st = SkyTable.read(path)
    plot_partitions(st, st.level if level is None else level, output)
    click.echo(f"wrote {output}")
