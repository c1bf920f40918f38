"""What the console knows about its connection. Apart from `link` so that the first frame can be
drawn before the HTTP client (aiohttp, a second of imports on a slow host) is loaded."""

from __future__ import annotations

from dataclasses import dataclass

REQUEST_TIMEOUT_S = 3.0
POLL_S = 2.0


@dataclass(frozen=True)
class LinkStatus:
    """In words for the banner."""

    state: str  # connecting | online | offline
    detail: str = ""
    where: str = ""

    @property
    def online(self) -> bool:
        return self.state == "online"
