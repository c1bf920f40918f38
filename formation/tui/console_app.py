"""The console app as its screens and widgets see it, typed. Textual types `node.app` as any App,
so reading the app's link, listeners or snapshots through it was unchecked (and needed a
`type: ignore` on every use); `console_app(self)` gives the FormationApp it runs in."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from textual.dom import DOMNode

    from formation.tui.app import FormationApp


def console_app(node: DOMNode) -> FormationApp:
    """The FormationApp that `node` is mounted in; every screen and widget of this package runs
    in one (an AssertionError names the node where one does not)."""
    from formation.tui.app import FormationApp  # loaded already: the app is running

    app = node.app
    assert isinstance(app, FormationApp), f"{type(node).__name__} runs outside FormationApp"
    return app
