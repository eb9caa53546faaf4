"""``dvo demo``: the main job on built-in demo data."""

from __future__ import annotations

import tempfile

import click


@click.command()
@click.option(
    "--keep",
    type=click.Path(file_okay=False),
    default=None,
    help="Keep the smf files and database in this (new) directory.",
)
def demo(keep) -> None:
    """Simulate a small survey, ingest it with addstar, verify it, and query a region."""
    from pathlib import Path

    from dvo.demo import run_demo
    from dvo.errors import DvoError

    if keep is not None:
        path = Path(keep)
        if path.exists() and any(path.iterdir()):
            raise DvoError(f"{path}: exists and is not empty")
        run_demo(path, echo=click.echo)
        return
    with tempfile.TemporaryDirectory(prefix="dvo-demo-") as tmp:
        run_demo(tmp, echo=click.echo)
