"""The `formation` command. Every verb is a client of the node API, except `node`, which is the
service, and `console`, which starts one embedded when none is running.

Commands load lazily: this module imports only click, and a command's module (with its pydantic,
aiohttp, Textual...) is imported when that command runs. sshd runs `formation ssh-keys` on every
login, so start-up time is login time. `--help` lists commands from the table below without
importing them; a unit test checks that each line matches the command's own help."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import click

from formation.commands.common import Context
from formation.errors import FormationError

# name -> (module:attribute, one-line help). A part adds its commands here, one line each.
COMMANDS: dict[str, tuple[str, str]] = {
    "account": ("formation.commands.account:account",
                "Accounts: people who deploy with their own keys, their roles and quotas "
                "(admins only)."),
    "ca": ("formation.commands.ca:ca",
           "The network CA: certificates for .fog names, trusted by every VM (admins only)."),
    "console": ("formation.commands.console:console", "Open the console."),
    "doctor": ("formation.commands.host:doctor",
               "Probe what this host can really do and explain every missing capability."),
    "enroll": ("formation.commands.enroll:enroll",
               "Enrol this node without the console, from an answer file."),
    "grant": ("formation.commands.grant:grant",
              "Let another key act for your account: some actions, some instances, until a "
              "time."),
    "grants": ("formation.commands.grant:grants",
               "Your account's grants, or those your key holds."),
    "identity": ("formation.commands.host:identity",
                 "This node's keys (public parts only; the secret never leaves the data "
                 "directory)."),
    "image": ("formation.commands.image:image",
              "Workload images: the kernel, initramfs and root disk a VM boots from."),
    "invite": ("formation.commands.join:invite",
               "Invite hosts into this node's network (admins only)."),
    "join": ("formation.commands.join:join",
             "Join a network, or decide on hosts that asked to join."),
    "key": ("formation.commands.key:key",
            "Account keys: make one on your machine, give an admin its public part."),
    "kit": ("formation.commands.kit:kit",
            "Start a workload: write a starter Formfile to edit, validate and build."),
    "lab": ("formation.commands.lab:lab", "Run N simulated hosts on this machine (needs root)."),
    "mesh": ("formation.commands.mesh:mesh",
             "The WireGuard mesh between the hosts of the network."),
    "network": ("formation.commands.join:network",
                "Found a network (this node becomes its first admin)."),
    "node": ("formation.commands.node:node",
             "Run the node service in the foreground until SIGTERM or Ctrl-C."),
    "pack": ("formation.commands.pack:pack",
             "Workloads from Formfiles: check one, build it into an image, run it."),
    "peers": ("formation.commands.peers:peers",
              "List the hosts this node found and their membership state."),
    "revoke": ("formation.commands.grant:revoke", "End a grant everywhere the revocation is "
               "known."),
    "route": ("formation.commands.route:route",
              "Public access: hostnames served by instances through the network's edge nodes."),
    "ssh-keys": ("formation.commands.ssh_keys:ssh_keys",
                 "Print the admin SSH public keys allowed to log in as USER (for "
                 "AuthorizedKeysCommand)."),
    "ssh-setup": ("formation.commands.ssh:ssh_setup",
                  "Install the sshd drop-in that gives admins the console over SSH."),
    "state": ("formation.commands.state:state",
              "The replicated state store: signed ops in a hash graph and the views folded "
              "from them."),
    "status": ("formation.commands.host:status",
               "Show this node: identity, version, uptime, listen addresses, capabilities, "
               "resources."),
    "tenant": ("formation.commands.tenant:tenant",
               "Deploy with your account key through any node (signed ops; the node only "
               "relays)."),
    "vm": ("formation.commands.vm:vm",
           "Virtual machines of the network: create, list, start, stop, resize, delete, "
           "serial."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use, listed from a table for --help."""

    def __init__(self, *args, lazy: dict[str, tuple[str, str]], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            module_name, attribute = self.lazy[cmd_name][0].split(":")
            self.add_command(getattr(importlib.import_module(module_name), attribute), cmd_name)
        return self.commands.get(cmd_name)

    def line_of(self, cmd_name: str, limit: int) -> str:
        if cmd_name in self.commands:
            return self.commands[cmd_name].get_short_help_str(limit)
        return click.Command(cmd_name, help=self.lazy[cmd_name][1]).get_short_help_str(limit)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, self.line_of(name, limit)) for name in names])


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        from formation import __version__

        click.echo(f"formation, version {__version__}")
        ctx.exit()


@click.group(cls=LazyGroup, lazy=COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), envvar="FORMATION_CONFIG",
    help="Node config file (default: /etc/formation/node.yaml as root, "
    "$XDG_CONFIG_HOME/formation/node.yaml otherwise).",
)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True,
              callback=_print_version, help="Show the version and exit.")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """Formation turns this host into a node of a fog-compute network.

    \b
    Start here:
      formation console        the console (starts a node in-process if none runs)
      formation node           run the node service (what systemd runs on the appliance)
      formation status         this node's identity, capabilities and resources
      formation doctor         what this host can and cannot do, and why

    Settings come from the config file, then FORMATION_* environment variables
    (FORMATION_NAME=edge1, FORMATION_API__LISTEN=0.0.0.0:7170).
    """
    ctx.obj = Context(config_file)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
def version(as_json: bool) -> None:
    """Print the version of this formation installation."""
    from formation import __version__

    if as_json:
        import json

        click.echo(json.dumps({"version": __version__, "python": sys.version.split()[0]}))
    else:
        click.echo(f"formation {__version__}")


def main() -> None:
    """Entry point: one clear line and a non-zero exit for every error, never a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except FormationError as exc:
        click.echo(f"formation: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # a bug: say so in one line; the traceback only on request
        if os.environ.get("FORMATION_DEBUG"):
            raise
        click.echo(f"formation: internal error: {type(exc).__name__}: {exc} "
                   "(set FORMATION_DEBUG=1 for details)", err=True)
        sys.exit(70)
