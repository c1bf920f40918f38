"""Two real node services on loopback (state store, image store and pack part each, trusting
each other's keys), the builder FAKE (fake_builder.py): an image built on A is added with its
Formfile and builder, every replica accepts that image.add (B's rules run on it too), B fetches
and verifies its blobs from A, and a build of the same Formfile and context asked of B reuses
A's image instead of building again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from settings_factory import make_settings
from waiting import until

from formation.api import pack_models as pm
from formation.api import pack_routes
from formation.api import state_models as sm
from formation.api import state_routes as sr
from formation.api.client import NodeClient
from formation.identity import load_or_create_identity
from formation.node.pack.component import PackComponent
from formation.node.service import NodeService
from formation.node.state.component import StateComponent
from formation.node.vmm.images.component import ImagesComponent
from tests.integration.pack.fake_builder import FakeBuilder
from tests.integration.pack.pack_node import image_add_payloads, wait_build, write_context
from tests.ports import free_port

WEB = "NAME web\nCOPY app.sh /srv/app.sh\nRUN echo built\n"


@pytest.fixture
async def nodes(short_tmp: Path) -> AsyncIterator[list[tuple[NodeService, ImagesComponent,
                                                             FakeBuilder]]]:
    ports = [free_port(), free_port()]
    keys = [load_or_create_identity(short_tmp / n / "data").public_key_hex for n in "ab"]
    built = []
    for i, name in enumerate("ab"):
        settings = make_settings(
            short_tmp / name, name=name,
            api={"socket": str(short_tmp / f"{name}.sock"), "listen": f"127.0.0.1:{ports[i]}"},
            trusted_keys=[keys[1 - i]],
            state={"peers": [f"{keys[1 - i]}@127.0.0.1:{ports[1 - i]}"],
                   "anti_entropy_interval_s": 0.2})
        fake = FakeBuilder()
        state = StateComponent()
        images = ImagesComponent(state)
        pack = PackComponent(state, images, fake.toolchain())
        built.append((NodeService(settings, components=[state, images, pack]), images, fake))
    for service, _, _ in built:
        await service.start()
    try:
        yield built
    finally:
        for service, _, _ in built:
            await service.stop()


async def test_fake_builder_built_on_a_accepted_fetched_and_reused_on_b(nodes,
                                                                        short_tmp) -> None:
    (a, _, a_fake), (b, b_images, b_fake) = nodes
    context = write_context(short_tmp / "web", WEB, {"app.sh": "echo app\n"})
    async with NodeClient.unix(a.settings.api.socket, timeout_s=30) as client:
        await client.call(sr.state_create_network, sm.CreateNetworkRequest(name="two"))
        built = await wait_build(client, (await client.call(
            pack_routes.pack_build_start, pm.PackBuildStart(context=str(context)))).id)
        assert built.state == "done"

    async def replicated() -> bool:
        return await b_images.find("web") is not None

    await until(replicated, 20, what="the build's image.add accepted by b")
    async with NodeClient.unix(b.settings.api.socket, timeout_s=30) as client:
        [payload] = await image_add_payloads(client)  # as b's replica holds it
        assert a.identity is not None
        assert payload["builder"] == a.identity.public_key_hex == payload["author"]
        assert payload["formfile"]["digest"] == built.context_digest
        paths = await b_images.ensure("web")  # fetched from a, every byte verified
        assert set(paths) == {"kernel", "initrd", "disk"}

        # the same Formfile and context asked of b: a's image, nothing built on b
        again = await wait_build(client, (await client.call(
            pack_routes.pack_build_start, pm.PackBuildStart(context=str(context)))).id)
        assert again.state == "done" and again.reused and again.image == built.image
    assert a_fake.started == ["web"] and b_fake.started == []
