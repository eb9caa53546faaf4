"""``dvo hosts list|assign|check|push|pull|resume``: thin wrappers over :mod:`dvo.hosts`."""

from __future__ import annotations

import click

from dvo.cli.options import catdir_option

_ssh_options = [
    click.option(
        "--known-hosts",
        type=click.Path(dir_okay=False),
        default=None,
        help="known_hosts file (default ~/.ssh/known_hosts).",
    ),  # fmt: skip
    click.option(
        "--trust-new-host-keys",
        is_flag=True,
        help="Accept and record host keys not in known_hosts (first contact only).",
    ),  # fmt: skip
    click.option(
        "--timeout",
        type=float,
        default=30.0,
        show_default=True,
        help="Connect and command timeout, seconds.",
    ),  # fmt: skip
]


def ssh_options(fn):
    """Attach the SSH options shared by the commands that contact hosts."""
    for opt in reversed(_ssh_options):
        fn = opt(fn)
    return fn


def _config(known_hosts, trust_new_host_keys, timeout):
    from dvo.hosts.ssh import SshConfig

    return SshConfig(known_hosts=known_hosts, trust_new_host_keys=trust_new_host_keys,
                     connect_timeout=timeout, command_timeout=timeout)  # fmt: skip


@click.group()
def hosts() -> None:
    """Partition hosts: the host table and where each partition lives."""


@hosts.command("list")
@catdir_option
def list_hosts(catdir) -> None:
    """Show the hosts and the partitions (and bytes) each holds."""
    from dvo.database import open_database
    from dvo.hosts.assign import host_summary
    from dvo.hosts.table import read_host_table

    db = open_database(catdir)
    click.echo(f"{'id':>3} {'host':<24} {'port':>5} {'parts':>6} {'pushed':>6} {'backups':>7} "
               f"{'MB':>9}  path")  # fmt: skip
    for r in host_summary(db, read_host_table(db.catdir)):
        port = "-" if r["port"] is None else r["port"]
        click.echo(
            f"{r['id']:>3} {r['host']:<24} {port:>5} {r['partitions']:>6} {r['pushed']:>6} "
            f"{r['backups']:>7} {r['bytes'] / 1e6:>9.2f}  {r['path']}"
        )


@hosts.command()
@catdir_option
@click.option("--host", "host_ids", type=int, multiple=True,
              help="Use only these host ids (repeatable; default: every host).")  # fmt: skip
@click.option("--no-backups", is_flag=True, help="Do not assign backup hosts.")
def assign(catdir, host_ids, no_backups) -> None:
    """Assign partitions to hosts balanced by size, backups on a different host."""
    from dvo.database import open_database
    from dvo.errors import HostError
    from dvo.hosts.assign import assign_hosts
    from dvo.hosts.table import read_host_table

    db = open_database(catdir)
    table = read_host_table(db.catdir)
    chosen = [h for h in table if not host_ids or h.id in host_ids]
    unknown = set(host_ids) - {h.id for h in table}
    if unknown or not chosen:
        raise HostError(f"no such hosts in the host table: {sorted(unknown) or 'none defined'}")
    loads = assign_hosts(db, chosen, backups=not no_backups)
    for hid, nbytes in loads.items():
        click.echo(f"host {hid}: {nbytes / 1e6:.2f} MB")


@hosts.command()
@catdir_option
@ssh_options
def check(catdir, known_hosts, trust_new_host_keys, timeout) -> None:
    """Check each host: reachable, same dvo version, files match their checksums."""
    import sys

    from dvo.database import open_database
    from dvo.hosts.sync import check_hosts

    db = open_database(catdir)
    problems = check_hosts(db, _config(known_hosts, trust_new_host_keys, timeout),
                           echo=click.echo)  # fmt: skip
    if problems:
        click.echo(f"{len(problems)} problems", err=True)
        sys.exit(1)


@hosts.command()
@catdir_option
@ssh_options
def push(catdir, known_hosts, trust_new_host_keys, timeout) -> None:
    """Copy partitions to their hosts (SFTP), verify, then switch the SkyTable atomically."""
    from dvo.database import open_database
    from dvo.hosts.sync import push as run

    db = open_database(catdir)
    n = run(db, _config(known_hosts, trust_new_host_keys, timeout), echo=click.echo)
    click.echo(f"{n} partitions pushed")


@hosts.command()
@catdir_option
@ssh_options
def pull(catdir, known_hosts, trust_new_host_keys, timeout) -> None:
    """Copy partitions back from their hosts, verify, and mark them local again."""
    from dvo.database import open_database
    from dvo.hosts.sync import pull as run

    db = open_database(catdir)
    n = run(db, _config(known_hosts, trust_new_host_keys, timeout), echo=click.echo)
    click.echo(f"{n} partitions pulled")


@hosts.command()
@catdir_option
@ssh_options
def resume(catdir, known_hosts, trust_new_host_keys, timeout) -> None:
    """Finish an addstar/relphot/relastro write that some hosts did not confirm (see dvo
    verify)."""
    from dvo.database import open_database
    from dvo.ingest_remote import finish_pending

    db = open_database(catdir)
    with db.writer(timeout=60):
        n = finish_pending(db, _config(known_hosts, trust_new_host_keys, timeout))
    click.echo(f"{n} partition copies committed" if n else "no host write pending")
