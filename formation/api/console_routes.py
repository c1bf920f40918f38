"""Endpoints the console needs from a node: host metric samples for the sparklines, the recent
log records, and the operator-editable settings (written to the node's config file)."""

from __future__ import annotations

from typing import Any

from formation.api import console_models as cm
from formation.api import models as m
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint

node_metrics = Endpoint(
    "node_metrics", "GET", "/v1/node/metrics", m.Empty, cm.HostSamples,
    "Recent host samples (CPU, memory, network), one a second; live ones come as events",
    audience=A.MEMBER,
)
node_logs = Endpoint(
    "node_logs", "GET", "/v1/logs", m.Empty, cm.LogRecords,
    "The node's recent log records from a bounded in-memory ring", query=cm.LogsQuery,
    audience=A.LOCAL,
)
get_settings = Endpoint(
    "get_settings", "GET", "/v1/settings", m.Empty, cm.EditableSettings,
    "The operator-editable settings, from the config file and as running",
    audience=A.LOCAL,
)
update_settings = Endpoint(
    "update_settings", "PUT", "/v1/settings", cm.SettingsUpdate, cm.EditableSettings,
    "Validate and atomically write settings to the config file; applied at the next restart",
    audience=A.LOCAL,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (node_metrics, node_logs, get_settings, update_settings)
