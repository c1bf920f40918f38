"""`formation ssh-setup` writes a drop-in sshd accepts; bad input is one clear line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

FORMATION = str(Path(sys.executable).parent / "formation")


@pytest.mark.skipif(not shutil.which("sshd") and not Path("/usr/sbin/sshd").exists(),
                    reason="needs sshd for sshd -t")
def test_dropin_is_accepted_by_sshd(tmp_path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "host_key")], check=True)
    dropin = tmp_path / "formation.conf"
    sshd_config = tmp_path / "sshd_config"
    sshd_config.write_text(f"HostKey {tmp_path / 'host_key'}\nInclude {dropin}\n")
    (tmp_path / "node.yaml").write_text(f"api:\n  socket: {tmp_path / 'node.sock'}\n")
    result = subprocess.run(
        [FORMATION, "--config", str(tmp_path / "node.yaml"), "ssh-setup", "--user", "nobody",
         "--no-create-user", "--dropin", str(dropin), "--check-with", str(sshd_config)],
        capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    text = dropin.read_text()
    assert "Match User nobody" in text
    assert (f"ForceCommand {FORMATION} --config {tmp_path / 'node.yaml'} console --no-embedded"
            f" --socket {tmp_path / 'node.sock'}") in text
    assert f"ssh-keys --socket {tmp_path / 'node.sock'} --console-user nobody %u" in text


def test_unwritable_dropin_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = subprocess.run(
        [FORMATION, "ssh-setup", "--no-create-user", "--no-check",
         "--dropin", str(blocker / "sub" / "formation.conf")],
        capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
