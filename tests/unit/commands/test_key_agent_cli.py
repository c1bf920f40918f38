"""`formation key` with an ssh-agent (a real OpenSSH one): `key create --ssh-agent` and
`key show agent:NAME` print the agent key's public half (what an admin puts in an account) and
write no file; misuse is one line and exit 1."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from ssh_agents import start_agent


@pytest.fixture
def agent(short_tmp):
    made = start_agent(short_tmp / "agent")
    yield made
    made.stop()


def formation(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "formation", *args], capture_output=True,
                          text=True, timeout=60, env=env)


def test_key_commands_print_the_agent_keys_public_half_and_write_nothing(agent,
                                                                          short_tmp) -> None:
    alice = agent.add("alice", comment="alice@laptop")
    home = {**agent.env, "HOME": str(short_tmp / "home"), "XDG_CONFIG_HOME": ""}
    made = formation("key", "create", "--ssh-agent", env=home)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == alice
    assert not (short_tmp / "home").exists()  # no key file, no directory

    ci = agent.add("ci", comment="ci-runner")
    several = formation("key", "create", "--ssh-agent", env=home)
    assert several.returncode == 1 and "name one" in several.stderr
    assert len(several.stderr.strip().splitlines()) == 1
    shown = json.loads(formation("key", "show", "agent:ci-runner", "--json", env=home).stdout)
    assert shown["public_key"] == ci and shown["comment"] == "ci-runner"
    assert shown["key"] == f"agent:{shown['agent']}" and shown["agent"].startswith("SHA256:")

    with_path = formation("key", "create", "--ssh-agent", str(short_tmp / "k"), env=home)
    assert with_path.returncode == 1 and with_path.stderr.count("\n") == 1
    assert "--ssh-agent: expected no PATH" in with_path.stderr
    bare = {k: v for k, v in home.items() if k != "SSH_AUTH_SOCK"}
    none = formation("key", "show", "agent:", env=bare)
    assert none.returncode == 1 and "SSH_AUTH_SOCK is not set" in none.stderr
    assert none.stderr.count("\n") == 1
