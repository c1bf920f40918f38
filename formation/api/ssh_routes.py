"""The console over SSH: the admin keys sshd may accept for the console user."""

from __future__ import annotations

from typing import Any

from formation.api import models as m
from formation.api import ssh_models as sm
from formation.api.caller import Audience as A
from formation.api.endpoint import Endpoint

ssh_authorized_keys = Endpoint(
    "ssh_authorized_keys", "GET", "/v1/ssh/authorized-keys", m.Empty, sm.AuthorizedKeys,
    "SSH keys that get the console: the admin accounts of the replicated state and this "
    "node's admin_ssh_keys setting",
    audience=A.LOCAL,
)

ENDPOINTS: tuple[Endpoint[Any, Any], ...] = (ssh_authorized_keys,)
