"""Create an instance: an image (from the network's images), a name, vCPUs, memory and disk;
or a Formfile path on the node instead of an image, built there first (its steps and a progress
bar show while it builds, from the node's `pack` events) and run with the Formfile's resources.
Mistakes show beside the field they are about: those the form can see at once, and those only
the node can (an unknown image, a name already taken, a size outside the limits), from the
fields its refusal names. Every request runs in a worker: typing never waits on the node.
Dismissed with the new instance's name, or None when cancelled."""

from __future__ import annotations

import asyncio
import re

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, ProgressBar, Select, Static

from formation.api import pack_routes, vm_routes
from formation.api.pack_models import PackBuild
from formation.api.vm_models import NAME, Image, VmCreate
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.instance_form import FIELDS, GENERAL, FormValues, build_request, refusal_errors
from formation.tui.instance_rows import IMPORT_HINT, truncate
from formation.tui.join_flow import reason
from formation.tui.pack_form import (
    apply_event,
    create_request,
    formfile_error,
    headline,
    start_request,
    step_lines,
)

# The create request writes and signs an op; like founding, more than the link's usual limit
# on a slow disk (a timeout would say "not created" while the node goes on and creates it).
CREATE_TIMEOUT_S = 9.5
INPUTS = (("name", "name", "default: from the image's name"), ("vcpus", "vCPUs", "1-128"),
          ("memory_mb", "memory", "MiB, 512-262144"), ("disk_gb", "disk", "GB, 5-65535"))
DEFAULTS = FormValues(image=None)
BUILD_START_TIMEOUT_S = 30.0  # the node reads and parses the Formfile before it answers
BUILD_POLL_S = 2.0  # without a `pack` event for this long, the build's state is read again
FINISHED = ("done", "failed", "cancelled")


def image_option(image: Image) -> tuple[str, str]:
    size = f"{image.size / 1e6:.0f} MB" if image.size >= 1e6 else f"{image.size} B"
    where = "here" if image.local else "fetched when used"
    return f"{truncate(image.name, 24)} · {size} · {where}", image.digest


class InstanceCreateScreen(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "submit", "Create")]

    def __init__(self) -> None:
        super().__init__()
        self.busy = False

    def compose(self) -> ComposeResult:
        with Vertical(id="create-box", classes="dialog"):
            yield Label("[b]Create an instance[/b] · enter: create · tab: next field · "
                        "esc: cancel")
            yield Static("reading the network's images…", id="create-images")
            with Horizontal(classes="form-row"):
                yield Label("image", classes="form-label")
                yield Select([], id="f-image", prompt="no image yet", compact=True)
                yield Static("", id="err-image", classes="field-error")
            with Horizontal(classes="form-row"):
                yield Label("formfile", classes="form-label")
                yield Input("", id="f-formfile", compact=True,
                            placeholder="or a Formfile path on the node")
                yield Static("", id="err-formfile", classes="field-error")
            for field, title, hint in INPUTS:
                with Horizontal(classes="form-row"):
                    yield Label(title, classes="form-label")
                    yield Input(str(getattr(DEFAULTS, field)) if field != "name" else "",
                                id=f"f-{field}", placeholder=hint, compact=True,
                                restrict=r"[0-9]*" if field != "name" else None)
                    yield Static("", id=f"err-{field}", classes="field-error")
            yield Static("", id="create-state")
            yield ProgressBar(total=1.0, show_eta=False, id="build-bar")
            yield Static("", id="build-steps")

    def on_mount(self) -> None:
        self.load_images()

    @work(exclusive=True, group="create-images", exit_on_error=False)
    async def load_images(self) -> None:
        app = console_app(self)
        note = self.query_one("#create-images", Static)
        if app.link is None:
            note.update("not connected to a node yet")
            return
        try:
            got = await app.link.call(vm_routes.image_list)
        except FormationError as exc:
            note.update(f"cannot read the images: {reason(exc)}")
            return
        images = sorted((app.presenter.image(i) for i in got.images), key=lambda i: i.name)
        select: Select[str] = self.query_one("#f-image", Select)
        select.set_options([image_option(i) for i in images])
        if images:
            select.value = images[0].digest
            note.update(f"{len(images)} image(s) in the network")
        else:
            note.update(f"No image in the network yet: give a Formfile path on the node "
                        f"below, or import one first (`{IMPORT_HINT}`).")

    def values(self) -> FormValues:
        image = self.query_one("#f-image", Select).value
        text = {field: self.query_one(f"#f-{field}", Input).value for field, _, _ in INPUTS}
        return FormValues(image=image if isinstance(image, str) else None,
                          formfile=self.query_one("#f-formfile", Input).value, **text)

    def show_errors(self, errors: dict[str, str]) -> None:
        """Each field's error beside it (cleared where none); one that names no field of the
        form under them all. Focus goes to the first field in error."""
        for field in FIELDS:
            self.query_one(f"#err-{field}", Static).update(errors.get(field, ""))
            self.query_one(f"#f-{field}").set_class(field in errors, "-invalid")
        state = self.query_one("#create-state", Static)
        state.set_class(bool(errors), "-error")
        state.update(errors.get(GENERAL, "not created: see the fields marked" if errors else ""))
        first = next((f for f in FIELDS if f in errors), None)
        if first is not None:
            self.query_one(f"#f-{first}").focus()

    def on_input_submitted(self, _: Input.Submitted) -> None:
        self.action_submit()

    def action_submit(self) -> None:
        if self.busy:
            return
        values = self.values()
        if values.formfile.strip():
            self.submit_formfile(values)
            return
        request = build_request(values)
        if isinstance(request, dict):
            self.show_errors(request)
            return
        self.busy = True
        self.show_errors({})
        self.query_one("#create-state", Static).update(f"creating {request.name or 'it'}…")
        self.create(request)

    @work(exclusive=True, group="create", exit_on_error=False)
    async def create(self, request: VmCreate) -> None:
        link = console_app(self).link
        try:
            if link is None:
                raise FormationError("not connected to a node yet")
            made = await link.call(vm_routes.vm_create, request, timeout_s=CREATE_TIMEOUT_S)
        except FormationError as exc:
            self.show_errors(refusal_errors(exc))
            return
        finally:
            self.busy = False
        self.dismiss(made.name)

    # from a Formfile ------------------------------------------------------------------------
    def submit_formfile(self, values: FormValues) -> None:
        errors: dict[str, str] = {}
        path, name = values.formfile.strip(), values.name.strip()
        problem = formfile_error(path)
        if problem is not None:
            errors["formfile"] = problem
        if name and not re.match(NAME, name):
            errors["name"] = ("expected lowercase letters, digits and -, starting with a letter "
                              "(at most 63)")
        if errors:
            self.show_errors(errors)
            return
        self.busy = True
        self.show_errors({})
        self.query_one("#create-state", Static).update(f"asking the node to build {path}…")
        self.build_and_create(path, name)

    def show_build(self, build: PackBuild) -> None:
        bar = self.query_one("#build-bar", ProgressBar)
        bar.add_class("-shown")
        bar.update(progress=build.progress.fraction if build.progress else 0.0)
        steps = self.query_one("#build-steps", Static)
        steps.add_class("-shown")
        steps.update("\n".join(step_lines(build, max(20, self.size.width - 10))))
        self.query_one("#create-state", Static).update(headline(build))

    @work(exclusive=True, group="create", exit_on_error=False)
    async def build_and_create(self, path: str, name: str) -> None:
        link = console_app(self).link
        try:
            if link is None:
                raise FormationError("not connected to a node yet")
            with link.subscription() as events:
                try:
                    build = await link.call(pack_routes.pack_build_start, start_request(path),
                                            timeout_s=BUILD_START_TIMEOUT_S)
                except FormationError as exc:
                    self.show_errors(_on_formfile(refusal_errors(exc)))
                    return
                self.show_build(build)
                while build.state not in FINISHED:
                    try:  # not wait_for: it can lose a cancel (formation/node/tasks.py)
                        async with asyncio.timeout(BUILD_POLL_S):
                            event = await events.get()
                    except TimeoutError:
                        build = await link.call(pack_routes.pack_build_show, build=build.id)
                    else:
                        if event.topic != "pack" or event.data.get("build") != build.id:
                            continue
                        if event.kind in ("done", "failed"):
                            build = await link.call(pack_routes.pack_build_show,
                                                    build=build.id)
                        else:
                            build = apply_event(build, event.kind, event.data)
                    self.show_build(build)
            if build.state != "done":
                where = f"line {build.error_line}: " if build.error_line else ""
                self.show_errors({"formfile": f"{where}{build.error}"})
                return
            made = await link.call(vm_routes.vm_create, create_request(build, name),
                                   timeout_s=CREATE_TIMEOUT_S)
        except FormationError as exc:
            self.show_errors(refusal_errors(exc))
            return
        finally:
            self.busy = False
        self.dismiss(made.name)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _on_formfile(errors: dict[str, str]) -> dict[str, str]:
    """A refused build start is about the Formfile (its problems, the path): beside that
    field, whatever the refusal names."""
    return {"formfile": "; ".join(errors.values())}
