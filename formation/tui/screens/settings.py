"""Settings the operator edits: this node's fields (hostname, underlay interface, resources
offered, admin SSH keys: the same form as enrollment) and the bootstrap list. Saved through the
node, which validates them and writes its config file atomically. Underlay and resources apply
at once; the screen says what was applied and when the node needs a restart for the rest, and
every error names its field. Nothing is sent while any field is wrong."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import Button, Input, Label, Static

from formation.api import console_routes, host_routes
from formation.api.console_models import EditableSettings, SettingsUpdate
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.enroll_plan import node_plan
from formation.tui.enroll_settings import refused
from formation.tui.screens.base import ConsoleScreen
from formation.tui.widgets.node_fields import NodeFieldsForm

FORM_TITLE = ("[b]This node[/b] · underlay and resources apply when saved; hostname, keys and "
              "bootstrap when the node restarts")


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def state_text(current: EditableSettings) -> str:
    where = current.config_file or "no config file"
    applied = "".join(f"\n· {line}" for line in current.applied)
    if not current.restart_required:
        return f"saved in {where}; the node runs with these settings{applied}"
    in_file = current.model_dump(mode="json")
    changed = [k for k, v in current.running.items() if in_file.get(k) != v]
    return (f"[b]restart the node to apply[/b] {', '.join(changed)} "
            f"(saved in {where}; the node still runs with the old values){applied}")


class SettingsScreen(ConsoleScreen):
    TITLE_TEXT = "settings"
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("ctrl+r", "reload", "Reload")]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="settings-form"):
            yield NodeFieldsForm(FORM_TITLE, id="node-form")
            with Horizontal(classes="enroll-row"):
                yield Label("bootstrap", classes="enroll-label")
                yield Input(compact=True, id="bootstrap",
                            placeholder="HOST:PORT, … e.g. 10.0.0.1:7170, edge2.lan:7170")
            yield Button("Save (ctrl+s)", id="save", variant="primary")
        yield Static("loading…", id="settings-state")

    def on_mount(self) -> None:
        super().on_mount()
        self.loaded = False
        self.saved: EditableSettings | None = None
        # opened before the console reached the node: read the settings once it answers
        self.watch(self.app, "link_status", self._link_changed, init=False)
        self.watch(self.app, "node_status", self._status_changed, init=True)
        self.action_reload()

    def _link_changed(self, status) -> None:
        if status.online and not self.loaded and self.is_current:
            self.action_reload()

    def on_screen_resume(self) -> None:
        if not self.loaded and console_app(self).link_status.online:
            self.action_reload()

    def _status_changed(self, status) -> None:
        self.query_one(NodeFieldsForm).show_totals(status.resources if status else None)

    # a read still running when the console closes or the screen goes must not end the app
    @work(exclusive=True, group="settings", exit_on_error=False)
    async def action_reload(self) -> None:
        link = console_app(self).link
        if link is None:
            self.say("connecting to the node…")
            return
        presenter = console_app(self).presenter
        try:
            current = presenter.settings(await link.call(console_routes.get_settings))
        except FormationError as exc:  # the API client's ApiError and NodeUnreachable
            self.say(f"cannot read the settings: {exc}")
            return
        form = self.query_one(NodeFieldsForm)
        try:
            form.show_interfaces(presenter.interfaces(await link.call(
                host_routes.host_interfaces)))
        except FormationError as exc:  # the saved choice still shows; only the list is missing
            self.say(f"cannot list the host's interfaces: {refused(exc)}", error=True)
        self.fill(current)

    def fill(self, current: EditableSettings) -> None:
        self.loaded = True
        self.saved = current
        form = self.query_one(NodeFieldsForm)
        form.fill(current)
        form.mark([])
        self.query_one("#bootstrap", Input).value = ", ".join(current.bootstrap)
        self.say(state_text(current))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()

    def update(self) -> SettingsUpdate | list[str]:
        """Only what differs from the saved settings, or every fault naming its field."""
        assert self.saved is not None
        status = console_app(self).node_status
        form = self.query_one(NodeFieldsForm)
        plan = node_plan(form.values(), self.saved, status.resources if status else None)
        form.mark(plan if isinstance(plan, list) else [])
        if isinstance(plan, list):
            return plan
        changed = {k: getattr(plan.update, k) for k in plan.update.model_fields_set}
        bootstrap = split_list(self.query_one("#bootstrap", Input).value)
        if bootstrap != self.saved.bootstrap:
            changed["bootstrap"] = bootstrap
        return SettingsUpdate(**changed)

    @work(exclusive=True, group="settings")
    async def action_save(self) -> None:
        link = console_app(self).link
        if link is None or self.saved is None:
            self.say("[b]not saved[/b]: the settings are not read from the node yet",
                     error=True)
            return
        if not self.saved.config_file:
            self.say("[b]not saved[/b]: the node runs without a config file", error=True)
            return
        update = self.update()
        if isinstance(update, list):
            self.say("[b]not saved[/b] (nothing written): " + (
                update[0] if len(update) == 1 else "\n".join(f"· {e}" for e in update)),
                error=True)
            return
        if not update.model_fields_set:
            self.say(f"nothing changed; {state_text(self.saved)}")
            return
        self.say("saving…")
        try:
            current = await link.call(console_routes.update_settings, update)
        except FormationError as exc:  # ApiError carries the fields the node refused
            self.say(f"[b]not saved[/b]: {refused(exc)}", error=True)
            return
        self.fill(console_app(self).presenter.settings(current))

    def say(self, text: str, error: bool = False) -> None:
        state = self.query_one("#settings-state", Static)
        state.set_class(error, "-error")
        state.update(text)
