"""The Instances screen's create form with a Formfile path on the node instead of an image,
against a real node whose pack part has a FAKE builder (tests/integration/pack/fake_builder.py:
it reports steps and hands back the test guest kit, so the instance really boots, QEMU/TCG):
the build's steps and progress bar show while it runs, then the instance is created with the
Formfile's resources; a failed step is said beside the Formfile field with its line. Keys only,
as over SSH, at 80x24."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from guest_kit_skip import guest_kit_or_skip
from textual.widgets import Input, ProgressBar, Static

from formation.api import vm_routes
from formation.node.service import NodeService
from formation.tui.app import FormationApp
from formation.tui.screens.instance_create import InstanceCreateScreen
from tests.integration.pack.fake_builder import FakeBuilder
from tests.integration.pack.pack_node import pack_node, remove_instances, write_context
from tests.tui.conftest import client_factory, wait_for
from tests.tui.test_instances import open_instances, replace_text, state_of, text_of

pytestmark = pytest.mark.qemu
BOOT_S = 90.0
WEB = "NAME web\nVCPU 1\nMEM 512\nRUN echo one\nRUN echo two\nEXPOSE 8080/tcp\n"
BROKEN = "NAME broken\nRUN echo one\nRUN false\n"


@pytest.fixture
def fake() -> FakeBuilder:
    kit = guest_kit_or_skip()
    return FakeBuilder(kernel=kit.kernel, initrd=kit.initrd, cmdline=kit.cmdline)


@pytest.fixture
async def node(short_tmp: Path, fake: FakeBuilder) -> AsyncIterator[NodeService]:
    async with pack_node(short_tmp, fake.toolchain()) as service:
        try:
            yield service
        finally:
            await remove_instances(service)


async def fill_formfile(pilot, app: FormationApp, path: str, name: str) -> None:
    """The image select is first (none here), tab to the Formfile path, tab to the name."""
    await pilot.press("plus")
    await wait_for(pilot, lambda: isinstance(app.screen, InstanceCreateScreen))
    await wait_for(pilot, lambda: "No image" in text_of(app, "#create-images"),
                   what="the images read")
    await pilot.press("tab")
    assert app.screen.focused is app.screen.query_one("#f-formfile", Input)
    await replace_text(pilot, path)
    await pilot.press("tab")
    assert app.screen.focused is app.screen.query_one("#f-name", Input)
    await replace_text(pilot, name)
    await pilot.press("enter")


async def test_fake_builder_create_from_a_formfile_shows_the_build(node, fake,
                                                                    short_tmp) -> None:
    web = write_context(short_tmp / "web", WEB)
    app = FormationApp(client_factory(node), request_timeout_s=5.0, poll_s=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_instances(pilot, app)
        # a relative path is refused beside the field, nothing asked of the node
        await fill_formfile(pilot, app, "web/Formfile", "shipped")
        assert "absolute path" in text_of(app, "#err-formfile")
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, InstanceCreateScreen))

        fake.gate.clear()  # the build stops after its first step, until let go
        await fill_formfile(pilot, app, str(web), "shipped")
        form = app.screen
        await wait_for(pilot, lambda: "base debian:bookworm" in text_of(app, "#build-steps"),
                       what="the build's first step on the form")
        assert "building web" in text_of(app, "#create-state")
        bar = form.query_one("#build-bar", ProgressBar)
        assert bar.display and bar.progress == 0.0
        steps = form.query_one("#build-steps", Static)
        assert 0 < steps.region.height and steps.region.bottom <= 24  # all of it on screen
        assert form.query_one("#f-disk_gb").region.bottom <= steps.region.y
        fake.gate.set()
        await wait_for(pilot, lambda: not isinstance(app.screen, InstanceCreateScreen),
                       timeout_s=30, what="the form closed once built and created")
        await wait_for(pilot, lambda: state_of(app, "shipped") == "running", timeout_s=BOOT_S,
                       what="shipped running in the list")
        inst = (await app.link.call(vm_routes.vm_show, instance="shipped")).instance
        assert (inst.vcpus, inst.memory_mb) == (1, 512) and inst.image_name == "web"


async def test_fake_builder_a_failed_step_is_said_beside_the_formfile(node, fake,
                                                                       short_tmp) -> None:
    broken = write_context(short_tmp / "broken", BROKEN)
    bad = write_context(short_tmp / "bad", "NAME bad\nBOGUS\n")
    app = FormationApp(client_factory(node), request_timeout_s=5.0, poll_s=1.0)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_instances(pilot, app)
        await fill_formfile(pilot, app, str(broken), "")
        await wait_for(pilot, lambda: "RUN false" in text_of(app, "#err-formfile"),
                       timeout_s=30, what="the failed step beside the Formfile field")
        assert text_of(app, "#err-formfile").startswith("line 3: Formfile line 3")
        assert isinstance(app.screen, InstanceCreateScreen)
        steps = str(app.screen.query_one("#build-steps", Static).render())
        assert "line 3: RUN false" in steps
        await pilot.press("escape")
        await wait_for(pilot, lambda: not isinstance(app.screen, InstanceCreateScreen))
        await fill_formfile(pilot, app, str(bad), "")
        await wait_for(pilot, lambda: "BOGUS" in text_of(app, "#err-formfile"),
                       what="the Formfile's problem beside its field")
        assert (await app.link.call(vm_routes.vm_list)).instances == []
