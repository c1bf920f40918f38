"""The `formation` command. Every verb is a client of the node API, except `node`, which is the
service, and `console`, which starts one embedded when none is running."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from formation import __version__
from formation.cli_output import capability_lines, emit_json, status_lines
from formation.commands.common import Context, json_option, node_option, run
from formation.config.paths import default_config_file
from formation.errors import FormationError


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config", "config_file", type=click.Path(path_type=Path), envvar="FORMATION_CONFIG",
    help="Node config file (default: /etc/formation/node.yaml as root, "
    "$XDG_CONFIG_HOME/formation/node.yaml otherwise).",
)
@click.version_option(__version__, "--version", prog_name="formation")
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
@click.pass_obj
def node(obj: Context) -> None:
    """Run the node service in the foreground until SIGTERM or Ctrl-C.

    It serves the API on the unix socket (and on api.listen for other nodes), logs to stderr in
    logfmt (or JSON with log.format: json), and finishes in-flight requests before it exits.
    """
    from formation.node.logs import setup_logging
    from formation.node.service import NodeService

    settings = obj.settings
    setup_logging(settings.log.level, settings.log.format)
    run(lambda: NodeService(settings, obj.config_file or default_config_file())
        .run_until_signalled())


@cli.command()
@node_option
@click.option("--16-colours", "sixteen", is_flag=True, default=None,
              help="Use the 16-colour theme (automatic on the Linux console and TERM=vt220).")
@click.option("--no-embedded", is_flag=True,
              help="Never start a node inside the console (the SSH session uses this).")
@click.pass_obj
def console(obj: Context, node_address: str | None, sixteen: bool | None,
            no_embedded: bool) -> None:
    """Open the console. With no node service running locally, one starts inside the console.

    With --node HOST:PORT it attaches to another node over TCP, every request signed with this
    host's key; inside, `n` switches between the local node and the bootstrap list.
    """
    from formation.tui.app import FormationApp

    settings = obj.settings
    app = FormationApp(client_factory=lambda address: obj.client(address),
                       start_embedded=None if no_embedded else _embedded_starter(obj),
                       node_address=node_address,
                       known_nodes=settings.bootstrap, sixteen_colours=sixteen)
    app.run()
    if app.return_code:
        sys.exit(app.return_code)


def _embedded_starter(obj: Context) -> Callable[[], Awaitable[Callable[[], Awaitable[None]]]]:
    """Returns a coroutine function that starts a node service on the caller's loop and hands
    back its stop function. Logs go to a file: the console owns the terminal."""

    async def start() -> Callable[[], Awaitable[None]]:
        from formation.node.logs import setup_logging
        from formation.node.service import NodeService

        settings = obj.settings
        settings.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        log_file = await asyncio.to_thread(open, settings.data_dir / "embedded-node.log", "a")
        setup_logging(settings.log.level, settings.log.format, stream=log_file)
        service = NodeService(settings, obj.config_file or default_config_file())
        await service.start()

        async def stop() -> None:
            await service.stop()
            log_file.close()

        return stop

    return start


@cli.command()
@json_option
@node_option
@click.pass_obj
def status(obj: Context, as_json: bool, node_address: str | None) -> None:
    """Show this node: identity, version, uptime, listen addresses, capabilities, resources."""
    from formation.api import routes

    async def fetch():
        async with obj.client(node_address) as client:
            return await client.call(routes.node_status)

    result = run(fetch)
    if as_json:
        emit_json(result)
    else:
        click.echo("\n".join(status_lines(result)))


@cli.command()
@json_option
@click.option("--local", is_flag=True, help="Probe in this process even if a node is running.")
@click.pass_obj
def doctor(obj: Context, as_json: bool, local: bool) -> None:
    """Probe what this host can really do and explain every missing capability.

    KVM is tested by booting a tiny guest under it and under software emulation: an openable
    /dev/kvm is not proof that guests run. Asks the running node to re-probe; without one (or
    with --local) probes here.
    """
    from formation.api import routes
    from formation.api.client import NodeUnreachable
    from formation.api.models import ProbeRequest

    async def probe():
        if not local:
            try:
                async with obj.client(None, timeout_s=120) as client:
                    return await client.call(routes.probe_capabilities, ProbeRequest())
            except NodeUnreachable:
                pass
        from formation.node.capabilities import CapabilityProber

        return await CapabilityProber(obj.settings.probe, obj.settings.data_dir).probe()

    caps = run(probe)
    if as_json:
        emit_json(caps)
        return
    click.echo("capabilities of this host")
    click.echo("\n".join(capability_lines(caps)))
    missing = [item for item in caps.items if not item.ok]
    if missing:
        click.echo(f"\n{len(missing)} missing: " + ", ".join(item.name for item in missing))


@cli.group()
def identity() -> None:
    """This node's keys (public parts only; the secret never leaves the data directory)."""


@identity.command("show")
@json_option
@click.pass_obj
def identity_show(obj: Context, as_json: bool) -> None:
    """Print the node id, Ed25519 public key, fingerprint and WireGuard public key."""
    from formation.identity.store import load_identity

    ident = load_identity(obj.settings.data_dir)
    info: dict[str, Any] = {
        "node_id": ident.node_id,
        "public_key": ident.public_key_hex,
        "fingerprint": ident.fingerprint,
        "wireguard_public_key": ident.wireguard_public_key,
    }
    if as_json:
        emit_json(info)
    else:
        width = max(map(len, info))
        click.echo("\n".join(f"{k:<{width}}  {v}" for k, v in info.items()))


@cli.command()
@json_option
def version(as_json: bool) -> None:
    """Print the version of this formation installation."""
    if as_json:
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


def _register_part_commands() -> None:
    """Each part of the system adds its command group here with one line."""
    from formation.commands import enroll, join, lab, mesh, peers, ssh, state

    cli.add_command(lab.lab)
    cli.add_command(peers.peers)
    cli.add_command(state.state)
    cli.add_command(mesh.mesh)
    cli.add_command(enroll.enroll)
    ssh.register(cli)
    join.register(cli)


_register_part_commands()
