"""Start, stop, restart and delete: the same keys and the same requests on the instance list
and on an instance's detail view. Each is a change of desired state the node accepts at once;
the state itself follows (events) from the node the instance is placed on. Delete asks first."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.binding import Binding

from formation.api import vm_routes
from formation.api.vm_models import Instance, VmStop
from formation.errors import FormationError
from formation.tui.console_app import console_app
from formation.tui.join_flow import reason
from formation.tui.screens.base import ConsoleScreen

if TYPE_CHECKING:
    from formation.api.endpoint import Endpoint

VERBS: dict[str, tuple[Endpoint[Any, Any], str]] = {
    "start": (vm_routes.vm_start, "start asked: it boots on its node"),
    "stop": (vm_routes.vm_stop, "stop asked: the guest is asked to power off"),
    "restart": (vm_routes.vm_restart, "restart asked: a new boot on its node"),
}


ACTION_BINDINGS = [
    Binding("b", "lifecycle('start')", "Start"),
    Binding("h", "lifecycle('stop')", "Stop"),
    Binding("t", "lifecycle('restart')", "Restart"),
    Binding("x", "delete", "Delete"),
    Binding("delete", "delete", "Delete", show=False),
]


class InstanceActions(ConsoleScreen):
    """The base of a screen that has `selected()` (the instance the keys act on) and `acted()`
    (shows an outcome: a line, red when `error`). Its BINDINGS include ACTION_BINDINGS."""

    _reading = False
    _stale = False

    def selected(self) -> Instance | None:
        raise NotImplementedError

    async def _read_once(self) -> None:
        """One read of what the screen shows from the node."""
        raise NotImplementedError

    def reload(self) -> None:
        """Reads again; while a read runs, one more follows it (never more): a burst of events
        costs two reads."""
        if self._reading:
            self._stale = True
            return
        self._reading = True
        self._read()

    @work(group="instance-read", exit_on_error=False)
    async def _read(self) -> None:
        try:
            while True:
                self._stale = False
                await self._read_once()
                if not self._stale:
                    return
        finally:
            self._reading = False

    def acted(self, text: str, error: bool = False) -> None:
        raise NotImplementedError

    @work(group="instance-action", exclusive=True, exit_on_error=False)
    async def action_lifecycle(self, verb: str) -> None:
        chosen = self.selected()
        if chosen is None:
            self.acted("no instance selected: ↑↓ to choose one", error=True)
            return
        endpoint, done = VERBS[verb]
        link = console_app(self).link
        if link is None:
            self.acted("not connected to a node yet", error=True)
            return
        body = VmStop() if verb == "stop" else None
        try:
            await link.call(endpoint, body, instance=chosen.id)
        except FormationError as exc:
            self.acted(f"{verb} {chosen.name}: {reason(exc)}", error=True)
            return
        self.acted(f"{chosen.name}: {done}")

    def action_delete(self) -> None:
        chosen = self.selected()
        if chosen is None:
            self.acted("no instance selected: ↑↓ to choose one", error=True)
            return
        from formation.tui.screens.instance_delete import InstanceDeleteScreen

        self.app.push_screen(InstanceDeleteScreen(chosen), self._deleted)

    def _deleted(self, name: str | None) -> None:
        if name:
            self.acted(f"{name}: deleted; its node ends it and removes its disk")
