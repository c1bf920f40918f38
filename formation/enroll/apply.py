"""Carries out a validated answer file through the local node's API, as the console would: the
settings it names (hostname, admin SSH keys, underlay, resources) are written to the node's
config, then the node founds or joins the network. Running it again on an enrolled node
changes nothing."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from formation.api import console_models as cm
from formation.api import console_routes as cr
from formation.api import join_models as jm
from formation.api import join_routes as jr
from formation.api import routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient, NodeUnreachable
from formation.enroll.answer_file import AnswerFile
from formation.errors import FormationError

NODE_WAIT_S = 90.0


class EnrolmentFailed(FormationError):
    """The answer file is valid but the node could not found or join the network."""

    exit_code = 3


async def _wait_for_node(client: NodeClient, say: Callable[[str], None]) -> None:
    """The appliance starts the enrol unit beside the node service; give it time to come up."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + NODE_WAIT_S
    while True:
        try:
            await client.call(routes.health)
            return
        except NodeUnreachable as exc:
            if loop.time() > deadline:
                raise EnrolmentFailed(f"enrolment failed: {exc}") from None
            say("waiting for the node service...")
            await asyncio.sleep(1.0)


def settings_update(answer: AnswerFile) -> cm.SettingsUpdate:
    """The node settings the answer file names; sections it leaves out are not touched."""
    offer = answer.resources.model_dump()
    return cm.SettingsUpdate(
        name=answer.hostname, admin_ssh_keys=answer.admin_keys or None,
        underlay=cm.UnderlayChoice(**answer.underlay.model_dump())
        if answer.underlay.interface else None,
        resources=cm.ResourceChoice(**offer) if any(v is not None for v in offer.values())
        else None)


async def apply_answer_file(answer: AnswerFile, client: NodeClient,
                            say: Callable[[str], None]) -> str:
    """Returns a one-line summary of what was done."""
    await _wait_for_node(client, say)
    status = await client.call(sr.state_status)
    if status.network:
        return f"already enrolled in network {status.network}; nothing changed"
    update = settings_update(answer)
    if update.model_dump(exclude_none=True):
        saved = await client.call(cr.update_settings, update)
        say("settings written (hostname and admin keys apply from the next node start)")
        for line in saved.applied:
            say(line)
    network = answer.network
    if network.found is not None:
        say(f"founding network {network.found.name}...")
        op = await client.call(sr.state_create_network,
                               sm.CreateNetworkRequest(name=network.found.name))
        return f"enrolled: founded network {network.found.name} (genesis {op.id[:16]})"
    join = network.join
    assert join is not None
    if join.invite:
        say("joining with the invite token...")
        result = await client.call(jr.join_token, jm.JoinTokenRequest(token=join.invite))
    else:
        say(f"asking {join.bootstrap[0]} to let this node join (an admin must approve)...")
        result = await client.call(jr.join_ask, jm.JoinAskRequest(address=join.bootstrap[0]))
    return f"enrolled: joined network {result.network_name} ({result.network}) as {result.node_id}"
