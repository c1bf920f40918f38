"""Run inside a lab host's namespaces (`lab.exec`): pushes hand-signed op envelopes to other
hosts' state sync endpoint over signed TCP, as that host's node would, but bypassing its
replica's checks. The hostile lab test crafts the ops; this only carries them across the
network namespace boundary the test process cannot cross.

    python hostile_push.py DATA_DIR OPS_FILE HOST:PORT...

OPS_FILE holds the packed batch (formation.node.state.wire.pack). Prints one JSON line per
target: the push result or the error."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.identity.store import load_identity


async def push(data_dir: Path, packed: str, count: int, targets: list[str]) -> None:
    identity = load_identity(data_dir)
    for target in targets:
        try:
            async with NodeClient.tcp(target, identity, timeout_s=20) as client:
                result = await client.call(sr.state_sync_push, sm.OpBatch(ops=packed, count=count))
            print(json.dumps({"target": target, "result": result.model_dump()}))
        except Exception as exc:  # the test reads the reason; a refusal is a valid outcome
            print(json.dumps({"target": target, "error": f"{type(exc).__name__}: {exc}"}))


def main() -> None:
    data_dir, ops_file, *targets = sys.argv[1:]
    body = json.loads(Path(ops_file).read_text())
    asyncio.run(push(Path(data_dir), body["ops"], body["count"], targets))


if __name__ == "__main__":
    main()
