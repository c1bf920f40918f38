"""Settings the operator edits: hostname, bootstrap list, admin SSH keys. Saved through the node
(which validates them and writes its config file atomically); the screen says when the node needs
a restart to apply them and shows every error next to what caused it."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Button, Input, Label, Static, TextArea

from formation.api import console_routes
from formation.api.console_models import EditableSettings, SettingsUpdate
from formation.errors import FormationError
from formation.tui.screens.base import ConsoleScreen


def split_list(text: str) -> list[str]:
    return [part.strip() for part in text.replace(",", "\n").splitlines() if part.strip()]


def state_text(current: EditableSettings) -> str:
    where = current.config_file or "no config file"
    if not current.restart_required:
        return f"saved in {where}; the node runs with these settings"
    in_file = current.model_dump(mode="json")
    changed = [k for k, v in current.running.items() if in_file.get(k) != v]
    return (f"[b]restart the node to apply[/b] {', '.join(changed)} "
            f"(saved in {where}; the node still runs with the old values)")


class SettingsScreen(ConsoleScreen):
    TITLE_TEXT = "settings"
    BINDINGS = [Binding("ctrl+s", "save", "Save"), Binding("ctrl+r", "reload", "Reload")]

    def compose_body(self) -> ComposeResult:
        with VerticalScroll(id="settings-form"):
            yield Label("hostname")
            yield Input(id="name", placeholder="lowercase letters, digits and -")
            yield Label("bootstrap nodes (HOST:PORT, comma-separated)")
            yield Input(id="bootstrap", placeholder="10.0.0.1:7170, edge2.lan:7170")
            yield Label("admin SSH public keys (one per line)")
            yield TextArea(id="admin_ssh_keys", soft_wrap=True)
            yield Button("Save (ctrl+s)", id="save", variant="primary")
        yield Static("loading…", id="settings-state")

    def on_mount(self) -> None:
        super().on_mount()
        self.loaded = False
        # opened before the console reached the node: read the settings once it answers
        self.watch(self.app, "link_status", self._link_changed, init=False)
        self.action_reload()

    def _link_changed(self, status) -> None:
        if status.online and not self.loaded:
            self.action_reload()

    @work(exclusive=True, group="settings")
    async def action_reload(self) -> None:
        if self.app.link is None:  # type: ignore[attr-defined]
            self.say("connecting to the node…")
            return
        try:
            current = await self.app.link.call(console_routes.get_settings)  # type: ignore
        except FormationError as exc:  # the API client's ApiError and NodeUnreachable
            self.say(f"cannot read the settings: {exc}")
            return
        self.fill(current)

    def fill(self, current: EditableSettings) -> None:
        self.loaded = True
        current = self.app.presenter.settings(current)  # type: ignore[attr-defined]
        self.query_one("#name", Input).value = current.name
        self.query_one("#bootstrap", Input).value = ", ".join(current.bootstrap)
        self.query_one("#admin_ssh_keys", TextArea).text = "\n".join(current.admin_ssh_keys)
        self.say(state_text(current))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()

    @work(exclusive=True, group="settings")
    async def action_save(self) -> None:
        update = SettingsUpdate(
            name=self.query_one("#name", Input).value.strip(),
            bootstrap=split_list(self.query_one("#bootstrap", Input).value),
            admin_ssh_keys=[line.strip() for line in
                            self.query_one("#admin_ssh_keys", TextArea).text.splitlines()
                            if line.strip()],
        )
        if self.app.link is None:  # type: ignore[attr-defined]
            self.say("[b]not saved[/b]: not connected to a node yet", error=True)
            return
        self.say("saving…")
        try:
            current = await self.app.link.call(  # type: ignore[attr-defined]
                console_routes.update_settings, update)
        except FormationError as exc:  # ApiError carries the fields the node refused
            body = getattr(exc, "body", None)
            fields = "; ".join(f"{f.field}: {f.message}" for f in body.fields) if body else ""
            self.say(f"[b]not saved[/b]: {fields or (body.message if body else exc)}",
                     error=True)
            return
        self.fill(current)

    def say(self, text: str, error: bool = False) -> None:
        state = self.query_one("#settings-state", Static)
        state.set_class(error, "-error")
        state.update(text)
