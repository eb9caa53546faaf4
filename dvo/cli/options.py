"""Options shared by several dvo commands."""

from __future__ import annotations

import click

catdir_option = click.option(
    "-D",
    "--catdir",
    envvar="DVO_CATDIR",
    required=True,
    type=click.Path(file_okay=False),
    help="Database directory (default: $DVO_CATDIR).",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="No progress bar or chatter.")
format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "csv", "fits", "parquet", "json"]),
    default="text",
    show_default=True,
    help="Output format.",
)
output_option = click.option(
    "-o", "--output", type=click.Path(dir_okay=False), default=None, help="Output file."
)
