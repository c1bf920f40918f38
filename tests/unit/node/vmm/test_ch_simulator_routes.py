"""The Cloud Hypervisor simulator serves exactly the spec file's paths and methods: its route
table (written out by hand) equals the file's operations, each body-taking route validates
against the schema the file names for it, and over HTTP every route answers while a path
outside the file gets the binary's 404 and a wrong method its 400 (never 405)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bench.support.ch_simulator import (
    ROUTES,
    SPEC_FILE,
    Validators,
    load_spec,
    make_app,
    new_simulator,
    spec_routes,
)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return load_spec()


def test_simulator_routes_are_exactly_the_spec_paths(spec: dict[str, Any]) -> None:
    ours = {(method, endpoint) for endpoint, (method, _) in ROUTES.items()}
    theirs = spec_routes(spec)
    assert ours - theirs == set(), "the simulator serves routes the spec does not have"
    assert theirs - ours == set(), "spec routes the simulator does not serve"
    assert len(spec["paths"]) == len(ROUTES) == 31


def test_simulator_validates_each_body_with_the_spec_schema(spec: dict[str, Any]) -> None:
    for path, item in spec["paths"].items():
        for operation in item.values():
            body = operation.get("requestBody")
            expected = None if body is None else \
                body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
            assert ROUTES[path.lstrip("/")][1] == expected, path


def test_simulator_spec_is_the_release_file() -> None:
    text = SPEC_FILE.read_text()
    assert text.startswith("openapi: 3.0.1") and "/vm.power-button:" in text


async def test_simulator_answers_every_spec_route_and_nothing_else(tmp_path) -> None:
    simulator = new_simulator(features=["kvm"], capture=tmp_path / "requests.jsonl")
    async with TestClient(TestServer(make_app(simulator))) as client:
        for endpoint, (method, schema) in sorted(ROUTES.items()):
            if endpoint == "vmm.shutdown":
                continue  # it ends the simulator; the driver tests use it
            body = {} if schema else None
            response = await client.request(method, f"/api/v1/{endpoint}", json=body)
            answer = await response.text()
            assert answer != '["Not Found"]', endpoint
            wrong = "GET" if method == "PUT" else "PUT"
            response = await client.request(wrong, f"/api/v1/{endpoint}")
            assert response.status == 400, (wrong, endpoint)
        for path in ("/api/v1/vm.start", "/api/v1/", "/vm.boot", "/api/v2/vm.boot"):
            response = await client.get(path)
            assert (response.status, await response.json()) == (404, ["Not Found"]), path
        response = await client.delete("/api/v1/vm.delete")
        assert response.status == 400 and '"error"' in await response.text()
        response = await client.get("/api/v1/vmm.ping")
        assert (await response.json())["version"] == "v53.0"


def test_simulator_applies_the_binarys_differences_from_the_file(spec: dict[str, Any]) -> None:
    """The spec README: `required` differs both ways and some integers are narrower."""
    check = Validators(spec).problem
    assert check("DiskConfig", {"path": "/d", "pci_segment": 70_000}) is not None
    assert check("VsockConfig", {"cid": 2**33, "socket": "/s"}) is not None
    assert check("NumaDistance", {"destination": 1, "distance": 300}) is not None
    assert "desired_size" in (check("VmResizeDisk", {"id": "_disk0"}) or "")
    assert check("VmRemoveDevice", {}) is not None
    assert check("CpusConfig", {"boot_vcpus": 1, "max_vcpus": 1,
                                "topology": {"packages": 1}}) is not None
    assert check("FsConfig", {"tag": "t", "socket": "/s"}) is None
    assert check("VdpaConfig", {"path": "/dev/vhost-vdpa-0"}) is None
