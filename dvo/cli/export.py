"""``dvo export --format parquet|hats DIR``: Parquet files partitioned as HATS catalogues."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, quiet_option


@click.command()
@catdir_option
@click.argument("out", type=click.Path(file_okay=False))
@click.option(
    "--format", "fmt", type=click.Choice(["hats", "parquet"]), default="hats", show_default=True
)
@click.option(
    "--table",
    "tables_",
    type=click.Choice(["objects", "measures", "lensing"]),
    multiple=True,
    help="Tables to export (default: objects and measures).",
)
@click.option("-c", "--columns", default="*", help="Comma-separated columns (default: all).")
@click.option(
    "--max-rows",
    type=int,
    default=1_000_000,
    show_default=True,
    help="Rows per HEALPix partition at most (chooses the order).",
)
@click.option("--margin", type=float, default=None, help="Also write a HATS margin (arcsec).")
@quiet_option
def export(catdir, out, fmt, tables_, columns, max_rows, margin, quiet) -> None:
    """Write OUT/objects (and OUT/measures) as HATS catalogues lsdb.read_hats can open."""
    from dvo.cli.progress import progress_bar
    from dvo.database import open_database
    from dvo.query.export import export as run

    db = open_database(catdir)
    tables_ = tables_ or ("objects", "measures")
    with progress_bar(len(db.populated()) * len(tables_), "export", quiet=quiet) as bar:
        done = run(
            db,
            out,
            fmt=fmt,
            tables_=tables_,
            columns=dict.fromkeys(tables_, columns),
            max_rows=max_rows,
            margin_arcsec=margin,
            progress=bar,
        )
    for table, (path, rows, order) in done.items():
        click.echo(f"{table}: {rows} rows at HEALPix order {order} in {path}")
