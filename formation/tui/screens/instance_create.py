"""Create an instance: an image (from the network's images), a name, vCPUs, memory and disk.
Mistakes show beside the field they are about: those the form can see at once, and those only
the node can (an unknown image, a name already taken, a size outside the limits), from the
fields its refusal names. Every request runs in a worker: typing never waits on the node.
Dismissed with the new instance's name, or None when cancelled."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from formation.api import vm_routes
from formation.api.vm_models import Image, VmCreate
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.instance_form import FIELDS, GENERAL, FormValues, build_request, refusal_errors
from formation.tui.instance_rows import IMPORT_HINT, truncate
from formation.tui.join_flow import reason

# The create request writes and signs an op; like founding, more than the link's usual limit
# on a slow disk (a timeout would say "not created" while the node goes on and creates it).
CREATE_TIMEOUT_S = 9.5
INPUTS = (("name", "name", "default: from the image's name"), ("vcpus", "vCPUs", "1-128"),
          ("memory_mb", "memory", "MiB, 512-262144"), ("disk_gb", "disk", "GB, 5-65535"))
DEFAULTS = FormValues(image=None)


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
            for field, title, hint in INPUTS:
                with Horizontal(classes="form-row"):
                    yield Label(title, classes="form-label")
                    yield Input(str(getattr(DEFAULTS, field)) if field != "name" else "",
                                id=f"f-{field}", placeholder=hint, compact=True,
                                restrict=r"[0-9]*" if field != "name" else None)
                    yield Static("", id=f"err-{field}", classes="field-error")
            yield Static("", id="create-state")

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
            note.update(f"No image in the network yet: import one on a node first "
                        f"(`{IMPORT_HINT}`).")

    def values(self) -> FormValues:
        image = self.query_one("#f-image", Select).value
        text = {field: self.query_one(f"#f-{field}", Input).value for field, _, _ in INPUTS}
        return FormValues(image=image if isinstance(image, str) else None, **text)

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
        request = build_request(self.values())
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

    def action_cancel(self) -> None:
        self.dismiss(None)
