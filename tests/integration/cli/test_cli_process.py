"""The `formation` command as a user runs it: JSON where data is printed, one line on stderr and
a non-zero exit for every error, never a traceback."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.integration.conftest import clean_env, formation, write_config


def assert_one_line_error(done, exit_code: int) -> str:
    assert done.returncode == exit_code, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr + done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def test_doctor_local_without_a_node(short_tmp: Path) -> None:
    config = write_config(short_tmp)
    done = formation("--config", str(config), "doctor", "--local", "--json")
    assert done.returncode == 0, done.stderr
    caps = json.loads(done.stdout)
    items = {item["name"]: item for item in caps["items"]}
    assert set(items) >= {"kvm", "qemu", "cloud_hypervisor", "wireguard", "wg_tools",
                          "ip_forwarding", "cpus", "memory", "disk"}
    for item in items.values():
        assert item["ok"] or item["reason"], f"{item['name']}: a 'no' without a reason"
    if items["qemu"]["ok"] and items["kvm"]["ok"] is False:
        assert "boot test is off" in items["kvm"]["reason"] or "/dev/kvm" in items["kvm"]["reason"]

    text = formation("--config", str(config), "doctor", "--local")
    assert text.returncode == 0, text.stderr
    assert text.stdout.startswith("capabilities of this host")
    backend = next(ln for ln in text.stdout.splitlines() if ln.startswith("VM backend: "))
    runs_vms = items["qemu"]["ok"] or (items["cloud_hypervisor"]["ok"] and items["kvm"]["ok"])
    assert backend.startswith("VM backend: none") != bool(runs_vms), backend
    for name in items:
        assert name in text.stdout


@pytest.mark.qemu
@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed")
def test_doctor_runs_the_real_boot_test(short_tmp: Path) -> None:
    """Real QEMU: the tiny guest boots under TCG; KVM gets a verdict, and a 'no' says why."""
    config = write_config(short_tmp, probe={"boot_test": True, "kvm_boot_timeout_s": 3})
    done = formation("--config", str(config), "doctor", "--local", "--json", timeout=90)
    assert done.returncode == 0, done.stderr
    caps = json.loads(done.stdout)
    items = {item["name"]: item for item in caps["items"]}
    assert items["qemu"]["ok"] is True, items["qemu"]
    assert "TCG: test guest booted in" in items["qemu"]["summary"]
    kvm = items["kvm"]
    assert kvm["ok"] in (True, False)
    if kvm["ok"]:
        assert "test guest booted" in kvm["summary"]
        assert caps["vmm_backend"] in ("qemu-kvm", "cloud-hypervisor")
    else:
        assert kvm["reason"], "KVM is 'no' without a reason"
        assert caps["vmm_backend"] == "qemu-tcg"


def test_identity_show_json(short_tmp: Path) -> None:
    config = write_config(short_tmp)
    missing = formation("--config", str(config), "identity", "show", "--json")
    line = assert_one_line_error(missing, 1)
    assert "no identity yet" in line

    from formation.identity import load_or_create_identity

    ident = load_or_create_identity(short_tmp / "data")
    done = formation("--config", str(config), "identity", "show", "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown == {"node_id": ident.node_id, "public_key": ident.public_key_hex,
                     "fingerprint": ident.fingerprint,
                     "wireguard_public_key": ident.wireguard_public_key}
    assert ident.seed.hex() not in done.stdout


@pytest.mark.parametrize("verb", [["node"], ["doctor", "--local"]])
def test_bad_config_exits_2_with_one_line(short_tmp: Path, verb: list[str]) -> None:
    config = short_tmp / "node.yaml"
    config.write_text("name: edge1\napi:\n  listen: nowhere\n")
    line = assert_one_line_error(formation("--config", str(config), *verb), 2)
    assert line.startswith("formation: error: ")
    assert f"{config}: line 3: key 'api.listen'" in line and "HOST:PORT" in line


def test_missing_config_file_exits_2(short_tmp: Path) -> None:
    line = assert_one_line_error(formation("--config", str(short_tmp / "nope.yaml"), "status"), 2)
    assert "no such config file" in line


def test_env_override_error_exits_2_naming_the_variable(short_tmp: Path) -> None:
    config = write_config(short_tmp)
    env = clean_env() | {"FORMATION_API__SOCKET_MODE": "loose"}
    line = assert_one_line_error(formation("--config", str(config), "status", env=env), 2)
    assert "environment FORMATION_API__SOCKET_MODE" in line


def test_status_without_a_node_is_one_clear_line(short_tmp: Path) -> None:
    config = write_config(short_tmp)
    line = assert_one_line_error(formation("--config", str(config), "status"), 1)
    assert "no node service answered" in line and "formation node" in line


def test_unexpected_error_prints_no_traceback(short_tmp: Path) -> None:
    """The data directory is a file: not a case the code expects, still one line, no traceback."""
    (short_tmp / "data").write_text("not a directory")
    config = write_config(short_tmp)
    done = formation("--config", str(config), "node", timeout=30)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert str(short_tmp / "data") in done.stderr.strip().splitlines()[-1]


def test_usage_errors_and_version(short_tmp: Path) -> None:
    bad = formation("frobnicate")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "frobnicate" in bad.stderr
    version = formation("version", "--json")
    assert version.returncode == 0 and "version" in json.loads(version.stdout)


def test_node_refuses_a_key_file_others_can_read(short_tmp: Path) -> None:
    from formation.identity import load_or_create_identity

    ident = load_or_create_identity(short_tmp / "data")
    key_file = short_tmp / "data" / "identity.key"
    key_file.chmod(0o644)
    done = formation("--config", str(write_config(short_tmp)), "node", timeout=30)
    line = done.stderr.strip().splitlines()[-1]
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert line == (f"formation: error: {key_file}: mode 644 is too open; "
                    f"run: chmod 600 {key_file}")
    assert ident.seed.hex() not in done.stderr
    assert not (short_tmp / "node.sock").exists(), "nothing was served"
