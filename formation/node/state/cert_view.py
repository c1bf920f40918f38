"""The certs view: per host, the certificate the edges serve. Pure and order-free.

Of the standing `cert.set` elements of a host, only those whose author is an edge now (holds the
edge capability in the nodes view: a node whose capability was taken away, or that was removed,
publishes nothing more that counts) and whose host still has an https route; among them the
latest `not_after` wins, ties by (HLC, op id). Not served by the API (views.COLLECTIONS does not
list it): the keys are sealed, but only the edges need them."""

from __future__ import annotations

from typing import Any

Order = tuple[int, int, int, str]


def _order(element: dict[str, Any]) -> Order:
    hlc = element.get("hlc") or [0, 0]
    return (int(element.get("not_after", 0)), int(hlc[0]), int(hlc[1]), str(element.get("id")))


def fold(elements: list[dict[str, Any]], edges: set[str],
         https_hosts: set[str]) -> list[dict[str, Any]]:
    """Elements {"key": host, "id", "chain", "not_after", "keys", "author", "hlc"} -> the
    best per host, sorted by host."""
    best: dict[str, dict[str, Any]] = {}
    for element in elements:
        host = str(element.get("key"))
        if element.get("author") not in edges or host not in https_hosts:
            continue
        if host not in best or _order(element) > _order(best[host]):
            best[host] = element
    return [{k: v for k, v in best[h].items() if k != "hlc"} for h in sorted(best)]
