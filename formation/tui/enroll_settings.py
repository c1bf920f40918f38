"""The first step of founding or joining from the console: this node's settings saved through
the node (PUT /v1/settings) when they differ from what it has. Returns the progress line, or
raises FormationError with the node's reason naming the field."""

from __future__ import annotations

from typing import TYPE_CHECKING

from formation.api import console_routes
from formation.api.console_models import EditableSettings
from formation.errors import FormationError
from formation.tui.enroll_plan import NodePlan

if TYPE_CHECKING:
    from formation.tui.link import NodeLink


FIELD_WORDS = {"name": "hostname (applies when the node restarts)",
               "admin_ssh_keys": "admin SSH keys", "underlay": "underlay",
               "resources": "resources"}


def refused(exc: FormationError) -> str:
    body = getattr(exc, "body", None)
    if body is None:
        return str(exc)
    fields = "; ".join(f"{f.field}: {f.message}" for f in body.fields)
    return fields or body.message


async def save_settings(link: NodeLink, plan: NodePlan,
                        saved: EditableSettings | None) -> tuple[str, EditableSettings | None]:
    """(what was done, the settings as now saved)."""
    if saved is None:
        return "settings not saved: the node runs without a config file", None
    if not plan.update.model_fields_set:
        return f"settings unchanged ({saved.config_file})", saved
    try:
        now = await link.call(console_routes.update_settings, plan.update)
    except FormationError as exc:
        raise FormationError(f"settings not saved: {refused(exc)}") from None
    done = ", ".join(FIELD_WORDS[k] for k in sorted(plan.update.model_fields_set))
    lines = [f"settings written to {now.config_file}: {done}", *now.applied]
    return "\n· ".join(lines), now
