"""The command palette (ctrl+p): one entry per console action, searchable by title."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from formation.tui.actions import ACTIONS, ConsoleAction, key_label


class ConsoleCommands(Provider):
    async def _run(self, action: ConsoleAction) -> None:
        await self.app.run_action(action.action)

    def _help(self, action: ConsoleAction) -> str:
        return f"[{key_label(action.key)}] {action.help}"

    async def discover(self) -> Hits:
        for action in ACTIONS:
            yield DiscoveryHit(action.title, partial(self._run, action), help=self._help(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in ACTIONS:
            score = matcher.match(action.title)
            if score > 0:
                yield Hit(score, matcher.highlight(action.title), partial(self._run, action),
                          help=self._help(action))


class ScreenCommands(Provider):
    """The shown screen's own actions (its SCREEN_ACTIONS), run on that screen."""

    def _actions(self) -> tuple[ConsoleAction, ...]:
        return getattr(self.screen, "SCREEN_ACTIONS", ())

    async def _run(self, action: ConsoleAction) -> None:
        await self.screen.run_action(action.action)

    def _help(self, action: ConsoleAction) -> str:
        return f"[{key_label(action.key)}] {action.help}"

    async def discover(self) -> Hits:
        for action in self._actions():
            yield DiscoveryHit(action.title, partial(self._run, action), help=self._help(action))

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for action in self._actions():
            score = matcher.match(action.title)
            if score > 0:
                yield Hit(score, matcher.highlight(action.title), partial(self._run, action),
                          help=self._help(action))
