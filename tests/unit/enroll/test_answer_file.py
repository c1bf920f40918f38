"""The answer file validator: every fault is found, named by line and key, and nothing invalid
gets through; real SSH keys come from ssh-keygen."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from formation.discovery import token as tokens
from formation.enroll.answer_file import AnswerFileError, load_answer_file, parse_answer_file
from formation.enroll.ssh_keys import check_ssh_public_key

HERE = Path("enroll.yaml")

TOKEN = tokens.new_token(["192.0.2.1:7170"], bytes(32), 1_800_000_000, bytes(16)).encode()


@pytest.fixture(scope="module")
def ssh_key(tmp_path_factory) -> str:
    if not shutil.which("ssh-keygen"):
        pytest.skip("ssh-keygen (openssh-client) is not installed")
    key = tmp_path_factory.mktemp("key") / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop",
                    "-f", str(key)], check=True)
    return key.with_suffix(".pub").read_text().strip()


def problems(text: str) -> list[str]:
    with pytest.raises(AnswerFileError) as info:
        parse_answer_file(text, HERE)
    return info.value.problems


def test_a_founding_answer_file_is_valid(ssh_key: str) -> None:
    answer = parse_answer_file(
        "version: 1\nhostname: edge-01\nnetwork:\n  found:\n    name: lab\n"
        f"admin_keys:\n  - {ssh_key}\nresources:\n  cpus: 2\n  memory_mb: 2048\n", HERE)
    assert answer.network.found is not None and answer.network.found.name == "lab"
    assert answer.admin_keys == [ssh_key]
    assert answer.resources.cpus == 2
    assert answer.summary() == ("edge-01 will found network 'lab' with 1 admin key(s); "
                                "offering cpus 2, memory_mb 2048")


def test_an_underlay_is_read_and_summarised(ssh_key: str) -> None:
    answer = parse_answer_file(
        "version: 1\nnetwork:\n  found:\n    name: lab\n"
        f"admin_keys:\n  - {ssh_key}\nunderlay:\n  interface: eth0\n  mode: static\n"
        "  address: 10.0.0.5/24\n  gateway: 10.0.0.1\n  dns: [10.0.0.53]\n", HERE)
    assert answer.underlay.interface == "eth0" and answer.underlay.dns == ["10.0.0.53"]
    assert answer.summary().endswith("; underlay eth0 (10.0.0.5/24)")


@pytest.mark.parametrize(
    ("underlay", "expected"),
    [
        ("  interface: eth0\n  mode: static\n",  # no address: the section's line
         "line 5: underlay.address: a static underlay needs address/prefix"),
        ("  interface: eth0\n  mode: static\n  address: 10.0.0.5/24\n  gateway: 10.1.0.1\n",
         "line 9: underlay.gateway: 10.1.0.1 is outside 10.0.0.0/24"),
        ("  interface: eth0\n  address: 10.0.0.5/24\n",
         "line 7: underlay.address: only for mode static"),
        ("  mode: static\n  address: 10.0.0.5/24\n",
         "line 5: underlay.interface: expected the interface"),
        ("  interface: eth0\n  mode: static\n  address: 10.0.0.5\n",
         "line 8: underlay.address: expected an address with prefix"),
        ("  interface: eth0\n  mode: manual\n", "line 7: underlay.mode: Input should be"),
        ("  interface: eth0\n  dns: [resolver]\n", "line 7: underlay.dns.0: expected an IP"),
    ],
)
def test_underlay_faults_name_their_line_and_field(underlay: str, expected: str) -> None:
    text = (f"version: 1\nnetwork:\n  join: {{invite: {TOKEN}}}\nhostname: edge\nunderlay:\n"
            + underlay)
    found = problems(text)
    assert len(found) == 1 and expected in found[0], found


def test_joining_by_bootstrap_peers_is_valid() -> None:
    answer = parse_answer_file(
        "version: 1\nnetwork:\n  join:\n    bootstrap: ['192.0.2.1:7170', 'edge-2:7170']\n", HERE)
    assert answer.network.join is not None
    assert answer.network.join.bootstrap == ["192.0.2.1:7170", "edge-2:7170"]
    assert "2 bootstrap peer(s)" in answer.summary()


def test_each_fault_names_its_line_and_key() -> None:
    text = (
        "version: 1\n"                      # 1
        "hostname: Edge_01\n"               # 2
        "network:\n"                        # 3
        "  join:\n"                         # 4
        "    bootstrap: [nope]\n"           # 5
        "admin_keys:\n"                     # 6
        "  - ssh-ed25519 AAAAnotbase64!\n"  # 7
        "resources:\n"                      # 8
        "  cpus: 0\n"                       # 9
        "  colour: red\n"                   # 10
    )
    found = problems(text)
    assert found[0].startswith("enroll.yaml: line 2: hostname: expected a hostname")
    assert any(p.startswith("enroll.yaml: line 5: network.join.bootstrap.0: expected HOST:PORT")
               for p in found)
    assert any(p.startswith("enroll.yaml: line 7: admin_keys.0:") and "base64" in p
               for p in found)
    assert any(p.startswith("enroll.yaml: line 9: resources.cpus:") for p in found)
    assert any(p.startswith("enroll.yaml: line 10: resources.colour: unknown key") for p in found)
    assert len(found) == 5


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("network:\n  found: {name: lab}\n", "line 1: version: required key is missing"),
        ("version: 2\nnetwork:\n  found: {name: lab}\n", "line 1: version: expected version: 1"),
        (f"version: 1\nnetwork:\n  found: {{name: lab}}\n  join: {{invite: {TOKEN}}}\n",
         "line 2: network: expected exactly one of 'found'"),
        ("version: 1\nnetwork: {}\n", "line 2: network: expected exactly one of 'found'"),
        ("version: 1\nnetwork:\n  join: {}\n", "line 3: network.join: joining needs 'invite'"),
        ("version: 1\nnetwork:\n  found: {name: lab}\n",
         "line 1: (top level): founding a network headless needs at least one entry"),
        ("version: 1\nnetwork:\n  found: {name: Lab!}\n",
         "line 3: network.found.name: expected a network name"),
        ("version: 1\nnetwork:\n  join: {invite: 'two words'}\n",
         "line 3: network.join.invite: expected it to start with FMN2"),
        (f"version: 1\nnetwork:\n  join: {{invite: {TOKEN[:-1]}}}\n",
         "line 3: network.join.invite: wrong length"),
        ("version: 1\nnetwork: [\n", "line 3, column 1: invalid YAML"),
        ("- a list\n", "line 1: expected a mapping"),
        ("", "line 1: expected a mapping (version:, network:, ...), got nothing"),
    ],
)
def test_faults_are_explained(text: str, expected: str) -> None:
    found = problems(text)
    assert expected in found[0], found


def test_ssh_key_whose_data_names_another_type_is_refused(ssh_key: str) -> None:
    blob = ssh_key.split()[1]
    with pytest.raises(ValueError, match=r"does not hold a ssh-rsa key"):
        check_ssh_public_key(f"ssh-rsa {blob}")
    with pytest.raises(ValueError, match=r"unknown SSH key type"):
        check_ssh_public_key(f"ssh-dss {blob}")
    with pytest.raises(ValueError, match=r"truncated|does not hold"):
        check_ssh_public_key(f"ssh-ed25519 {blob[:8]}")
    assert check_ssh_public_key(f"  {ssh_key}  ") == ssh_key


def test_unreadable_file_is_one_clear_problem(tmp_path: Path) -> None:
    with pytest.raises(AnswerFileError, match=r"cannot read: No such file"):
        load_answer_file(tmp_path / "missing.yaml")
