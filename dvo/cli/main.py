"""The ``dvo`` command group.

Subcommands live one per module in ``dvo.cli`` and are imported only when invoked, so that
``dvo cone`` from a new process does not pay for importing every library. A :class:`DvoError`
becomes a one-line message and exit code 1 here, in one place.
"""

from __future__ import annotations

import importlib
import sys

import click

from dvo.errors import DvoError

# command name -> "module:attribute" (a click command or group)
COMMANDS: dict[str, str] = {
    "skytable": "dvo.cli.skytable:skytable",
    "create": "dvo.cli.create:create",
    "addstar": "dvo.cli.addstar:addstar",
    "relphot": "dvo.cli.relphot:relphot",
    "relastro": "dvo.cli.relastro:relastro",
    "verify": "dvo.cli.verify:verify",
    "demo": "dvo.cli.demo:demo",
    "cone": "dvo.cli.cone:cone",
    "box": "dvo.cli.box:box",
    "polygon": "dvo.cli.polygon:polygon",
    "explain": "dvo.cli.explain:explain",
    "object": "dvo.cli.object:object_",
    "lightcurve": "dvo.cli.lightcurve:lightcurve",
    "crossmatch": "dvo.cli.crossmatch:crossmatch",
    "stats": "dvo.cli.stats:stats",
    "export": "dvo.cli.export:export",
    "hosts": "dvo.cli.hosts:hosts",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


def run_with_errors(command: click.Command, args: list[str] | None = None) -> None:
    """Run a click command, turning DvoError (and OSError) into a one-line message and exit
    code 1."""
    try:
        command.main(args=args, standalone_mode=False)
    except DvoError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except OSError as exc:  # a full disk, a vanished folder: the database stays consistent
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


@click.group(cls=LazyGroup)
@click.version_option(package_name="dvo")
def cli() -> None:
    """dvo: a partitioned catalog database for sky surveys."""


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``dvo`` script."""
    run_with_errors(cli, args)
