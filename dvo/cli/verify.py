"""``dvo verify``: check every invariant of a database."""

from __future__ import annotations

import sys

import click

from dvo.cli.options import catdir_option, quiet_option


@click.command()
@catdir_option
@click.option("--no-checksums", is_flag=True, help="Skip CHECKSUM/DATASUM verification.")
@quiet_option
def verify(catdir, no_checksums, quiet) -> None:
    """Check ids, offsets, links, averages and checksums; exit 1 on any violation."""
    from dvo.cli.progress import progress_bar
    from dvo.database import open_database
    from dvo.verify import verify as run

    db = open_database(catdir)
    if _on_hosts(db):
        from dvo.hosts.verify import verify_hosts as run  # each partition checked where it lives
    with progress_bar(len(db.populated()), "verify", quiet=quiet) as bar:
        problems = run(db, checksums=not no_checksums, progress=bar)
    for problem in problems:
        click.echo(str(problem))
    if problems:
        click.echo(f"{len(problems)} violations", err=True)
        sys.exit(1)
    if not quiet:
        click.echo(f"{db.catdir}: ok")


def _on_hosts(db) -> bool:
    """Whether some partitions were pushed to partition hosts (``dvo hosts push``)."""
    from dvo.hosts.executor import uses_hosts

    return uses_hosts(db.skytable, db.populated())
