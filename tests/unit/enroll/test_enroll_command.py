"""`formation enroll` as a person runs it: exit codes and messages, in a real subprocess."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from waiting import until

from formation.config.settings import NodeSettings
from formation.node.service import NodeService


def run_enroll(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "formation", "enroll", *args],
                          capture_output=True, text=True, timeout=60)


@pytest.fixture
def valid_answer(tmp_path: Path) -> Path:
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")],
                   check=True)
    key = (tmp_path / "id.pub").read_text().strip()
    path = tmp_path / "enroll.yaml"
    path.write_text(f"version: 1\nhostname: edge-01\nnetwork:\n  found:\n    name: lab\n"
                    f"admin_keys:\n  - {key}\nresources:\n  cpus: 1\nunderlay:\n"
                    "  interface: eth0\n  mode: static\n  address: 192.0.2.5/24\n")
    return path


def test_check_of_a_valid_file_exits_zero(valid_answer: Path) -> None:
    done = run_enroll("--answer-file", str(valid_answer), "--check")
    assert done.returncode == 0, done.stderr
    assert "valid: edge-01 will found network 'lab' with 1 admin key(s)" in done.stdout


def test_check_json_prints_the_parsed_file(valid_answer: Path) -> None:
    done = run_enroll("--answer-file", str(valid_answer), "--check", "--json")
    assert done.returncode == 0, done.stderr
    assert '"name": "lab"' in done.stdout and '"hostname": "edge-01"' in done.stdout


@pytest.fixture
async def node_with_config(node_settings, tmp_path: Path):
    config = tmp_path / "node.yaml"
    data = node_settings.model_dump(mode="json")
    data["underlay"]["networkd_dir"] = str(tmp_path / "networkd")  # never the host's own
    config.write_text(yaml.safe_dump(data))
    service = NodeService(NodeSettings.model_validate(data), config_file=config)
    await service.start()
    yield service
    await service.stop()


async def test_enrolling_founds_the_network_once(valid_answer: Path, node_with_config) -> None:
    """A real node: the answer file founds 'lab', writes the admin key, the resources offered
    (into the node's record too) and the underlay (a networkd file), and a second run is a
    no-op (the appliance runs it on every boot until enrolled)."""
    node = node_with_config
    config = node.config_file

    async def enroll() -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "formation", "--config", str(config), "enroll",
            "--answer-file", str(valid_answer),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await enroll()
    assert code == 0, err
    assert "enrolled: founded network lab" in out
    status = await node_store_status(node)
    assert status.network is not None
    written = yaml.safe_load(config.read_text())
    assert written["admin_ssh_keys"][0].startswith("ssh-ed25519 ")
    assert written["resources"] == {"cpus": 1}
    assert written["underlay"]["interface"] == "eth0"
    assert written["underlay"]["address"] == "192.0.2.5/24"
    networkd = Path(written["underlay"]["networkd_dir"]) / "10-formation-underlay.network"
    assert "Name=eth0" in networkd.read_text() and "Address=192.0.2.5/24" in networkd.read_text()
    assert "underlay: " in out and "applies at the next boot" in out  # no networkd here
    await until(lambda: record_resources(node), 10.0)  # written within a second
    code, out, err = await enroll()
    assert code == 0, err
    assert f"already enrolled in network {status.network}; nothing changed" in out


async def record_resources(node) -> bool:
    """The node's own record offers 1 CPU (what the answer file said)."""
    from formation.api.client import NodeClient
    from formation.api.state_routes import state_view

    async with NodeClient.unix(node.settings.api.socket) as client:
        view = await client.call(state_view, collection="nodes")
    me = node.identity.public_key_hex
    return any(n["key"] == me and (n.get("resources") or {}).get("cpus") == 1
               for n in view.items)


async def node_store_status(node):
    from formation.api.client import NodeClient
    from formation.api.state_routes import state_status

    async with NodeClient.unix(node.settings.api.socket) as client:
        return await client.call(state_status)


def test_enrolling_without_a_node_fails_in_one_line(valid_answer: Path, tmp_path: Path) -> None:
    config = tmp_path / "node.yaml"
    config.write_text(f"data_dir: {tmp_path}/data\napi:\n  socket: {tmp_path}/none.sock\n")
    done = subprocess.run([sys.executable, "-c", "import formation.enroll.apply as a; "
                           "a.NODE_WAIT_S = 0; from formation.cli import main; main()",
                           "--config", str(config), "enroll", "--answer-file", str(valid_answer)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    assert "enrolment failed: no node service answered" in done.stderr
    assert "Traceback" not in done.stderr


def test_invalid_file_lists_every_problem_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "enroll.yaml"
    path.write_text("version: 1\nhostname: NOPE\nnetwork:\n  join: {}\n")
    done = run_enroll("--answer-file", str(path), "--check")
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert lines[0] == (f"error: {path}: line 2: hostname: expected a hostname: "
                        "lowercase letters, digits and '-', at most 63")
    assert lines[1].startswith(f"error: {path}: line 4: network.join: joining needs 'invite'")
    assert "Traceback" not in done.stderr
