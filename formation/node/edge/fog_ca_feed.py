"""The network CA from the state store into this edge's engine: whenever a `ca.set` is
applied, the `ca` view is read again; when it seals the CA key to this
node, the key is opened (formation/identity/sealing.py) and written beside the root under
run_dir (mode 0600, the directory 0700 like the engine's other secrets), and the engine is told
(`set_fog_ca`). A CA whose key this edge does not hold leaves the `.fog` hosts on Caddy's own
per-edge CA and says once in the log what an admin runs (`formation ca reseal`)."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from formation.identity.keys import NodeIdentity
from formation.identity.sealing import SealError, open_sealed
from formation.node.edge.fog_ca_caddy import FogCaFiles
from formation.node.state.ca_rules import COLLECTION, current
from formation.node.state.op import Op

if TYPE_CHECKING:
    from formation.node.state.store import StateStore

log = logging.getLogger(__name__)

WATCHED = ("ca.set",)  # who holds the key changes only with a ca.set (ca reseal)
DIR = "fog-ca"


def files_for(run_dir: Path, ca: dict[str, Any] | None,
              identity: NodeIdentity) -> tuple[FogCaFiles | None, str | None]:
    """(the CA files for the engine, or None; why not, one line, or None). Blocking: writes
    the root and the opened key under run_dir/fog-ca."""
    if ca is None:
        return None, None
    sealed = (ca.get("keys") or {}).get(identity.public_key_hex)
    if sealed is None:
        return None, ("the network CA's key is not sealed to this edge; .fog hosts get Caddy's "
                      "own CA until an admin gives this node the edge capability (if only its "
                      "edge.enabled setting makes it one) and runs `formation ca reseal`")
    try:
        key_pem = open_sealed(identity, sealed)
    except SealError as exc:
        return None, f"the network CA's key does not open here: {exc}"
    fingerprint = str(ca["fingerprint"])
    where = run_dir / DIR
    where.mkdir(parents=True, exist_ok=True)
    where.chmod(0o700)
    cert, key = where / f"{fingerprint[:16]}.crt", where / f"{fingerprint[:16]}.key"
    for path, data in ((cert, str(ca["root_pem"]).encode()), (key, key_pem)):
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        tmp.replace(path)
    for old in where.iterdir():  # a rotated root's key is no use any more
        if old not in (cert, key):
            old.unlink(missing_ok=True)
    return FogCaFiles(fingerprint, cert, key), None


class FogCaFeed:
    def __init__(self, store: StateStore, identity: NodeIdentity, run_dir: Path,
                 apply: Callable[[FogCaFiles | None], Awaitable[object]]) -> None:
        self.store, self.identity, self.run_dir, self.apply = store, identity, run_dir, apply
        self.served: FogCaFiles | None = None
        self._said: str | None = None
        self._wake = asyncio.Event()

    def _on_ops(self, ops: list[Op], origin: str | None) -> None:
        if any(op.kind.startswith(WATCHED) for op in ops):
            self._wake.set()

    async def once(self) -> None:
        ca = current(await self.store.view(COLLECTION))
        fog, why = await asyncio.to_thread(files_for, self.run_dir, ca, self.identity)
        if why is not None and why != self._said:
            log.warning("edge: %s", why)
        self._said = why
        if fog != self.served:
            await self.apply(fog)
            self.served = fog
            if fog is not None:
                log.info("edge: .fog certificates now come from the network CA",
                         extra={"fields": {"fingerprint": fog.fingerprint[:16]}})

    async def run(self) -> None:
        unsubscribe = self.store.subscribe(self._on_ops)
        self._wake.set()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                try:
                    await self.once()
                except Exception as exc:  # the next ca.set tries again; the edge keeps serving
                    log.warning("edge: the network CA not applied",
                                extra={"fields": {"error": str(exc)}})
        finally:
            unsubscribe()
