"""`formation node capabilities` against a real `formation node` process: the admin node sets a
member's capabilities by key prefix, shows them by name or key, and a wrong capability or an
unknown node is one line with exit 1 and nothing written."""

from __future__ import annotations

import json

from statecluster import (
    call,
    one_node,  # noqa: F401  (the `node` fixture)
)

from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.identity import NodeIdentity


async def test_an_admin_sets_and_shows_a_members_capabilities(node) -> None:
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    member = NodeIdentity.generate().public_key_hex
    await call(node, sr.state_append, sm.AppendRequest(
        kind="node.admit", payload={"node": member, "roles": ["member"]}))

    shown = node.cli_json("node", "capabilities", member)
    assert shown == {"node": member, "name": None, "capabilities": []}
    done = node.cli_json("node", "capabilities", member[:10], "--set", "edge,builder")
    assert (done["node"], done["capabilities"]) == (member, ["builder", "edge"])
    op = await call(node, sr.state_op, op_id=done["op"])
    assert (op.kind, op.payload) == ("node.capabilities",
                                     {"node": member, "capabilities": ["builder", "edge"]})
    text = node.cli("node", "capabilities", member)
    assert text.returncode == 0 and text.stdout.strip() == f"{member[:12]} ({member[:12]}): " \
        "builder, edge"

    before = (await call(node, sr.state_heads)).ops
    for args, words in ((("--set", "edge,gpu"), "'gpu' is not one"),
                        ((), "no member of the network")):
        ref = "ffffff00" if not args else member
        failed = node.cli("node", "capabilities", ref, *args)
        assert failed.returncode == 1, (failed.stdout, failed.stderr)
        assert words in failed.stderr and len(failed.stderr.strip().splitlines()) == 1
    assert (await call(node, sr.state_heads)).ops == before
    view = await call(node, sr.state_view, collection="nodes")
    assert json.dumps([n.get("capabilities") for n in view.items if n["key"] == member]) \
        == '[["builder", "edge"]]'


async def test_pack_build_on_builder_with_no_builder_is_one_line(node, short_tmp) -> None:
    """`pack build --on-builder` asks the node for the network's builders before any build: with
    none, one line saying how an admin makes one, exit 1, and no build started."""
    await call(node, sr.state_create_network, sm.CreateNetworkRequest(name="lab"))
    app = short_tmp / "app"
    app.mkdir()
    (app / "Formfile").write_text("NAME demo\n")
    failed = node.cli("pack", "build", str(app), "--on-builder")
    assert failed.returncode == 1, (failed.stdout, failed.stderr)
    assert failed.stderr.strip() == (
        "formation: error: --on-builder: no node of the network has the builder capability "
        "(an admin gives it: formation node capabilities ID --set builder)")
    clash = node.cli("pack", "build", str(app), "--on-builder", "--node", "127.0.0.1:1")
    assert clash.returncode == 1 and "not with --node" in clash.stderr
