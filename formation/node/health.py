"""What GET /v1/health tells a caller it does not know.

The route is public on TCP so that a load balancer or a monitor can poll it without a key. Such a
caller needs the overall status and which part is failing, nothing more; the details the parts
write for the console (the data directory's path, the network id, mesh and DNS addresses, op and
member counts, interface names) would tell an anonymous prober where and what this node is. So a
caller other than the local socket gets every check's name and ok flag, and a detail only when it
is one of a few fixed words; any other detail (including one a new part adds later) is left out."""

from __future__ import annotations

from formation.api import models as m

PUBLIC_DETAILS = frozenset({"serving", "starting", "probing", "probed", "not open",
                            "not started", "not created", "not serving"})


def for_anyone(health: m.Health) -> m.Health:
    """`health` with only non-identifying details: same status, same checks, same ok flags."""
    return m.Health(status=health.status, checks=[
        m.HealthCheck(name=c.name, ok=c.ok, detail=c.detail if c.detail in PUBLIC_DETAILS else "")
        for c in health.checks])
