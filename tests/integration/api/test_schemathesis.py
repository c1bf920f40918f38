"""Schemathesis against the /openapi.json served by a real `formation node` subprocess over TCP,
every request signed with a trusted key: no input makes the node answer 5xx, or hang."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
import schemathesis
import yaml
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import (
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    positive_data_acceptance,
)

from formation.api.auth import H_NODE, sign_request
from formation.identity import NodeIdentity
from tests.integration.conftest import NodeProcess, clean_env, write_config

CALLER = NodeIdentity.generate()
# A hang is what this catches; a settings write that re-applies parts took over 10 s once on a
# machine loaded by other test runs, so the bound is generous.
TIMEOUT_S = 30
# The signature headers are added by SignedAuth after a case is generated, so checks that expect
# a request "without its X-Formation-Signature header" to be refused do not apply; unsigned and
# badly signed requests are tested directly in test_auth_tcp.py.
SIGNING_ARTIFACTS = [missing_required_header, ignored_auth, negative_data_rejection]
# Bodies carrying packed ops (base64 of compressed CBOR) are valid only if they decode, which no
# JSON schema can say: a schema-valid but undecodable batch is rightly a 400 there. The version
# vectors of range/walk constrain their keys with `propertyNames`, which the generator ignores.
# Settings are checked against the host (resources at most its totals) and across fields (a
# static underlay needs an address, a gateway inside it): a schema-valid update can rightly be a
# 400 naming the field. A build's context is a directory holding a Formfile, or a tar of one
# (base64): exactly one, and it must exist or unpack, which the schema cannot say. An upload's
# declared size is reserved against what the node has free (and at most 256 MiB): a schema-valid
# size can rightly be a 413.
BEYOND_THE_SCHEMA = {"/v1/state/sync/push", "/v1/state/sync/range", "/v1/state/sync/walk",
                 "/v1/settings", "/v1/pack/builds", "/v1/pack/uploads"}


NODE_KEYS: dict[str, str] = {}  # base URL -> the public key the node there answers with


class SignedAuth(requests.auth.AuthBase):
    """Signs the prepared request exactly as it goes on the wire: method, path and query, body,
    for the node that serves it (its key, read once from its X-Formation-Node header)."""

    def __init__(self, identity: NodeIdentity) -> None:
        self.identity = identity

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        url = urlsplit(request.url or "")
        base = f"{url.scheme}://{url.netloc}"
        if base not in NODE_KEYS:
            NODE_KEYS[base] = requests.get(base + "/v1/health", timeout=TIMEOUT_S).headers[H_NODE]
        request.headers.update(sign_request(self.identity, request.method or "GET",
                                            request.path_url, body, NODE_KEYS[base]))
        return request


@pytest.fixture(scope="module")
def node_process() -> Iterator[NodeProcess]:
    base = Path(tempfile.mkdtemp(prefix="fm-st-", dir="/tmp"))
    config = write_config(base, api={"socket": str(base / "node.sock"), "listen": "127.0.0.1:0"},
                          trusted_keys=[CALLER.public_key_hex])
    settings_doc = yaml.safe_load(config.read_text())
    stderr_path = base / "node.log"
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "formation", "--config", str(config), "node"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err, env=clean_env())
    node = NodeProcess(proc, config, Path(settings_doc["api"]["socket"]),
                       Path(settings_doc["data_dir"]), stderr_path)
    try:
        node.wait_started()
        yield node
        assert node.terminate() == 0
        assert "Traceback" not in node.stderr()
        assert "request failed" not in node.stderr(), "the node logged an internal error"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def served_schema(node_process: NodeProcess):
    base_url = f"http://{node_process.tcp_address}"
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json")


schema = schemathesis.pytest.from_fixture("served_schema")


@schema.parametrize()
@settings(max_examples=15, deadline=None, derandomize=True,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors_and_no_hangs(case) -> None:
    auth = SignedAuth(CALLER)
    if case.operation.path == "/v1/events":
        # A stream never ends by design: check the status it opens with, then hang up.
        kwargs = case.as_transport_kwargs(base_url=case.operation.base_url)
        with requests.request(**kwargs, auth=auth, timeout=TIMEOUT_S, stream=True) as response:
            assert response.status_code < 500
            assert response.status_code != 401, f"signed request refused: {response.text}"
            if response.status_code == 200:
                assert response.headers["Content-Type"].startswith("text/event-stream")
                assert next(response.iter_lines()) == b": formation event stream"
        return
    response = case.call(auth=auth, timeout=TIMEOUT_S)
    assert response.status_code < 500, response.text
    assert response.status_code != 401, f"signed request refused: {response.text}"
    excluded = list(SIGNING_ARTIFACTS)
    if case.operation.path in BEYOND_THE_SCHEMA:
        excluded.append(positive_data_acceptance)
    case.validate_response(response, excluded_checks=excluded)
