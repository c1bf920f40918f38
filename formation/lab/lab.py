"""`formation.lab.Lab`: bring N simulated hosts up and down, kill and start their nodes, cut and
heal the network. Blocking (netlink, processes): from async code use `async with Lab(3) as lab`
(which runs up/down in a thread) and `await asyncio.to_thread(lab.kill, "h2")`.

A later test founds a network on h1 and joins the others with `lab.exec("h2", [...])` or
through `lab.client("h2")`; the lab itself decides no membership."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from formation.config.loader import deep_merge
from formation.config.settings import NodeSettings
from formation.errors import FormationError
from formation.identity import load_or_create_identity
from formation.lab import fabric, processes
from formation.lab.names import API_PORT, MAX_HOSTS, NETNS_DIR, STATE_ROOT, LabNames
from formation.lab.state import HostState, LabState, load, save

NODE_START_TIMEOUT_S = 20.0
NODE_START_PER_HOST_S = 4.0  # nodes start together; on 2 cores 20 of them take a while


class LabError(FormationError):
    pass


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("formation lab needs root: it creates network and mount namespaces "
                       "(try: sudo formation lab up 3)")
    for tool in ("nsenter", "unshare"):
        if shutil.which(tool) is None:
            raise LabError(f"formation lab needs `{tool}` (Debian package util-linux)")


class Lab:
    """One lab. `Lab(3).up()` makes it; `Lab.attach("name")` finds a running one."""

    def __init__(self, count: int = 3, lab_id: str | None = None, *,
                 node_overrides: dict[str, Any] | None = None, pretrust: bool = True,
                 state_root: Path = STATE_ROOT) -> None:
        """`pretrust`: put every other host's key into each host's trusted_keys, so they gossip
        at once. A join test passes False: the hosts then find each other (mDNS lists them as
        untrusted) but exchange nothing until the network admits them."""
        if not 1 <= count <= MAX_HOSTS:
            raise LabError(f"host count {count}: expected 1 to {MAX_HOSTS}")
        try:
            self.names = LabNames(lab_id or secrets.token_hex(3), state_root)
        except ValueError as exc:
            raise LabError(str(exc)) from None
        self.count = count
        self.state = LabState(lab_id=self.names.lab_id, node_overrides=node_overrides or {},
                              pretrust=pretrust)

    @classmethod
    def attach(cls, lab_id: str, state_root: Path = STATE_ROOT) -> Lab:
        try:
            names = LabNames(lab_id, state_root)
        except ValueError as exc:
            raise LabError(str(exc)) from None
        state = load(names.state_dir)
        if state is None or not state.hosts:
            raise LabError(f"no lab {lab_id!r} is up (start one: formation lab up 3)")
        lab = cls(len(state.hosts), lab_id, state_root=state_root)
        lab.state = state
        return lab

    @property
    def lab_id(self) -> str:
        return self.names.lab_id

    # context managers -----------------------------------------------------------------------
    def __enter__(self) -> Lab:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    async def __aenter__(self) -> Lab:
        await asyncio.to_thread(self.up)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.down)

    # up and down ----------------------------------------------------------------------------
    def up(self) -> None:
        require_root()
        names = self.names
        if load(names.state_dir) is not None or fabric.lab_namespaces(names):
            raise LabError(f"lab {self.lab_id!r} is already up (or left over): "
                           f"run `formation lab --name {self.lab_id} down` first")
        try:
            save(self.state, names.state_dir)
            fabric.create_hub(names)
            for index in range(1, self.count + 1):
                self._add_host(index)
            self._write_configs()
            for host in self.state.hosts:
                self._start_node(host, wait=False)
            for host in self.state.hosts:
                self._wait_node(host)
        except BaseException:
            self.down()
            raise

    def _add_host(self, index: int) -> None:
        names = self.names
        host = HostState(index=index, name=names.host_name(index),
                         netns=names.host_netns(index), address=names.address(index))
        self.state.hosts.append(host)
        save(self.state, names.state_dir)
        fabric.add_host(names, index)
        host_dir = names.host_dir(index)
        host_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        host.holder_pid = processes.start_holder(host.netns, host.netns,
                                                 host_dir / "holder.log")
        save(self.state, names.state_dir)

    def node_config(self, host: HostState, trusted: list[str]) -> dict[str, Any]:
        base = {
            "name": host.name,
            "data_dir": str(self.names.host_dir(host.index) / "data"),
            "api": {"socket": processes.NODE_SOCKET, "listen": f"{host.address}:{API_PORT}"},
            "probe": {"boot_test": False},
            "trusted_keys": trusted,
            "discovery": {"addresses": [host.address]},
            # lab timing: a host seen dead (2.5 s) is lost a second later
            "vmm": {"replace_after_s": 1.0},
        }
        return deep_merge(base, self.state.node_overrides)

    def _write_configs(self) -> None:
        """Identities are made here, so every host can trust the others' keys from the start:
        until the state store decides membership, config trust is what admits a peer."""
        keys = {h.name: load_or_create_identity(self.names.host_dir(h.index) / "data")
                .public_key_hex for h in self.state.hosts}
        for host in self.state.hosts:
            trusted = [key for name, key in keys.items()
                       if name != host.name and self.state.pretrust]
            config = self.node_config(host, trusted)
            try:
                NodeSettings.model_validate(config)
            except ValidationError as exc:
                err = exc.errors()[0]
                where = ".".join(str(p) for p in err["loc"])
                message = err["msg"].removeprefix("Value error, ")
                raise LabError(f"node settings for the lab: {where}: {message}") from None
            self.config_path(host.name).write_text(yaml.safe_dump(config, sort_keys=False))

    def config_path(self, name: str) -> Path:
        return self.names.host_dir(self.state.host(name).index) / "node.yaml"

    def log_path(self, name: str) -> Path:
        return self.names.host_dir(self.state.host(name).index) / "node.log"

    def _start_node(self, host: HostState, wait: bool = True) -> None:
        assert host.holder_pid is not None
        host.node_pid = processes.start_node(host.holder_pid, self.config_path(host.name),
                                             self.log_path(host.name))
        save(self.state, self.names.state_dir)
        if wait:
            self._wait_node(host)

    def _wait_node(self, host: HostState) -> None:
        assert host.holder_pid is not None and host.node_pid is not None
        try:
            timeout = NODE_START_TIMEOUT_S + NODE_START_PER_HOST_S * len(self.state.hosts)
            processes.wait_healthy(host.holder_pid, host.node_pid, timeout,
                                   self.log_path(host.name))
        except processes.LabProcessError as exc:
            tail = _tail(self.log_path(host.name))
            raise LabError(f"{host.name}: {exc}" + (f"; last log line: {tail}" if tail else "")) \
                from None

    def down(self) -> dict[str, list]:
        """Removes everything this lab made; safe to call twice or after a crash."""
        return destroy(self.lab_id, self.names.state_root)

    # controlling hosts ----------------------------------------------------------------------
    def host(self, name: str) -> HostState:
        return self.state.host(name)

    @property
    def hosts(self) -> list[HostState]:
        return list(self.state.hosts)

    def kill(self, name: str) -> None:
        """A power cut: SIGKILL the host's node, then every other process of the host (its
        VMs' QEMU or Cloud Hypervisor, which run in sessions of their own and would outlive
        the node). No goodbye. The holder stays: it is the host's hardware, not a process
        the host ran; `start` boots the node again in the same namespaces."""
        host = self.host(name)
        if not processes.alive(host.node_pid):
            raise LabError(f"{name}: its node is not running")
        processes.kill(host.node_pid)
        processes.power_cut(NETNS_DIR / host.netns, keep=host.holder_pid)
        host.node_pid = None
        save(self.state, self.names.state_dir)

    def start(self, name: str) -> None:
        host = self.host(name)
        if processes.alive(host.node_pid):
            raise LabError(f"{name}: its node is already running (pid {host.node_pid})")
        self._start_node(host)

    def partition(self, names: list[str]) -> None:
        """Cut these hosts off from the rest; they still reach each other."""
        if not names:
            raise LabError("partition: name at least one host")
        cut = {self.host(name).index for name in names}
        if len(cut) == len(self.state.hosts):
            raise LabError("partition: leave at least one host on the other side")
        fabric.set_partition(self.names, len(self.state.hosts), cut)
        self.state.partitioned = sorted(cut)
        save(self.state, self.names.state_dir)

    def heal(self) -> None:
        fabric.set_partition(self.names, len(self.state.hosts), set())
        self.state.partitioned = []
        save(self.state, self.names.state_dir)

    # entering hosts -------------------------------------------------------------------------
    def exec_argv(self, name: str, argv: list[str]) -> tuple[list[str], dict[str, str]]:
        host = self.host(name)
        pid = host.holder_pid
        if pid is None or not processes.alive(pid):
            raise LabError(f"{name}: its namespaces are gone (run `formation lab down`)")
        return (processes.enter_argv(pid, argv),
                processes.host_env(self.config_path(name)))

    def exec(self, name: str, argv: list[str], **kwargs: Any) -> subprocess.CompletedProcess:
        full, env = self.exec_argv(name, argv)
        return subprocess.run(full, env=env, check=False, **kwargs)

    def socket_path(self, name: str) -> Path:
        host = self.host(name)
        assert host.holder_pid is not None
        return processes.socket_path(host.holder_pid)

    def client(self, name: str, timeout_s: float = 10.0):
        from formation.api.client import NodeClient

        return NodeClient.unix(self.socket_path(name), timeout_s=timeout_s)

    def status(self) -> dict[str, Any]:
        hosts = []
        for host in self.state.hosts:
            running = processes.alive(host.node_pid)
            hosts.append({
                "name": host.name, "address": host.address, "netns": host.netns,
                "node_pid": host.node_pid if running else None, "running": running,
                "healthy": running and processes.node_healthy(host.holder_pid or 0),
                "partitioned": host.index in self.state.partitioned,
                "api": f"{host.address}:{API_PORT}",
            })
        return {"lab": self.lab_id, "state_dir": str(self.names.state_dir), "hosts": hosts}


def _tail(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return lines[-1][:300] if lines else ""


def destroy(lab_id: str, state_root: Path = STATE_ROOT) -> dict[str, list]:
    """Finds the lab's things by its prefix as well as by its state file, so a lab whose
    process crashed half-way is still removed whole."""
    names = LabNames(lab_id, state_root)
    state = load(names.state_dir)
    pids = set(processes.processes_in_namespaces(
        [NETNS_DIR / ns for ns in fabric.lab_namespaces(names)]))
    pids.update(processes.processes_with_mount(names.netns_prefix))
    if state is not None:
        for host in state.hosts:
            pids.update(p for p in (host.node_pid, host.holder_pid)
                        if p is not None and processes.alive(p))
    pids.discard(os.getpid())
    for pid in sorted(pids):
        processes.kill(pid)
    removed = fabric.remove_namespaces(names)
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(names.state_dir)
    return {"processes": sorted(pids), "namespaces": removed}


def leftovers(lab_id: str, state_root: Path = STATE_ROOT) -> dict[str, list]:
    """What of this lab still exists anywhere on the machine; all empty after `down`."""
    names = LabNames(lab_id, state_root)
    namespaces = fabric.lab_namespaces(names)
    mounts = [line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
              if names.netns_prefix in line or str(names.state_dir) in line]
    links = [p.name for p in Path("/sys/class/net").iterdir()
             if p.name.startswith(f"fl{lab_id}")]
    holders = processes.processes_with_mount(names.netns_prefix)
    state_dir = [str(names.state_dir)] if names.state_dir.exists() else []
    return {"namespaces": namespaces, "mounts": mounts, "links": links,
            "processes": holders, "state_dir": state_dir}
