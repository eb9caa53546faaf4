"""``dvo object ID [ID...]``: the full rows of objects by 64-bit id."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option, format_option, output_option
from dvo.cli.query_options import columns_option, table_option


@click.command("object")
@catdir_option
@click.argument("ids", nargs=-1, required=True)
@table_option
@columns_option
@format_option
@output_option
def object_(catdir, ids, table, columns, fmt, output) -> None:
    """Rows of the objects with these ids (all columns unless --columns; --table measures)."""
    from dvo.database import open_database
    from dvo.errors import QueryError
    from dvo.query.output import write

    try:
        values = [int(i, 0) for i in ids]
    except ValueError:
        raise QueryError(f"object ids must be integers, got {' '.join(ids)}") from None
    db = open_database(catdir)
    write(db.object(values, table=table, columns=columns or "*"), fmt, output)
