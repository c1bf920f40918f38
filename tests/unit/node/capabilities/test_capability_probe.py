"""The capability probe: KVM is judged by a real boot (slow or hung is 'no', with the reason),
and the host readers report what this machine really has."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from formation.api.models import Capability
from formation.config.settings import ProbeSettings
from formation.node.capabilities import CapabilityProber, guest, host
from formation.node.capabilities.probe import _judge_kvm

DEVICE = Capability(name="kvm", ok=True, summary="KVM API 12, VM creation works")
TCG_FAST = guest.BootResult(True, 0.26, "test guest booted in 0.26 s")


def test_kvm_much_slower_than_tcg_is_no_with_the_numbers() -> None:
    """What this very machine does: /dev/kvm opens, the guest takes 6 s instead of 0.3 s."""
    slow = guest.BootResult(True, 6.21, "test guest booted in 6.21 s")
    verdict = _judge_kvm(DEVICE, TCG_FAST, slow)
    assert verdict.ok is False
    assert "6.2 s under KVM vs 0.26 s under software emulation" in verdict.reason


def test_hung_kvm_guest_is_no() -> None:
    hung = guest.BootResult(False, 6.0, "the test guest hung (no exit in 6 s)")
    verdict = _judge_kvm(DEVICE, TCG_FAST, hung)
    assert verdict.ok is False
    assert verdict.reason == "/dev/kvm opens, but the test guest hung (no exit in 6 s)"


def test_kvm_that_boots_fine_is_yes() -> None:
    fast = guest.BootResult(True, 0.08, "test guest booted in 0.08 s")
    verdict = _judge_kvm(DEVICE, TCG_FAST, fast)
    assert verdict.ok is True and verdict.reason == ""
    assert DEVICE.summary in verdict.summary and "0.08 s" in verdict.summary


def test_kvm_under_the_floor_is_yes_even_if_slower_than_tcg() -> None:
    """Both boots are tiny; a 0.5 s KVM boot is fine even if TCG took 0.1 s."""
    tcg = guest.BootResult(True, 0.1, "test guest booted in 0.10 s")
    kvm = guest.BootResult(True, 0.5, "test guest booted in 0.50 s")
    assert _judge_kvm(DEVICE, tcg, kvm).ok is True


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed")
async def test_real_qemu_killed_at_its_deadline_is_reported_hung() -> None:
    result = await guest.boot_test("qemu-system-x86_64", "tcg", 0.01)
    assert result.ok is False and "hung" in result.detail


async def test_missing_qemu_binary_cannot_run(tmp_path: Path) -> None:
    result = await guest.boot_test(str(tmp_path / "no-qemu"), "tcg", 5)
    assert result.ok is False and "cannot run" in result.detail


async def test_prober_without_qemu_says_why(tmp_path: Path) -> None:
    settings = ProbeSettings(qemu_binary="no-such-qemu", cloud_hypervisor_binary="no-such-ch")
    caps = await CapabilityProber(settings, tmp_path).probe()
    qemu, ch, kvm = caps.get("qemu"), caps.get("cloud_hypervisor"), caps.get("kvm")
    assert qemu.ok is False and "no-such-qemu is not installed" in qemu.reason
    assert ch.ok is False and "no-such-ch is not installed" in ch.reason
    assert kvm.ok is False or "ioctl check only" in kvm.summary
    assert caps.vmm_backend == "none"
    assert caps.probed_at is not None


@pytest.mark.skipif(shutil.which("qemu-system-x86_64") is None, reason="QEMU is not installed")
async def test_prober_with_boot_test_off_never_calls_kvm_proven(tmp_path: Path) -> None:
    caps = await CapabilityProber(ProbeSettings(boot_test=False), tmp_path).probe()
    kvm = caps.get("kvm")
    assert kvm.ok is False and kvm.reason
    assert caps.vmm_backend == "qemu-tcg"


def test_wireguard_reader_matches_this_host() -> None:
    capability, backend = host.wireguard()
    if Path("/sys/module/wireguard").exists():
        assert backend == "kernel" and capability.ok
    elif shutil.which("wireguard-go"):
        assert backend in ("kernel", "wireguard-go") and capability.ok
        if backend == "wireguard-go":
            assert shutil.which("wireguard-go") in capability.summary
    else:
        assert backend in ("kernel", "none")


def test_wireguard_reader_without_any_backend(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    capability, backend = host.wireguard()
    if backend == "kernel":
        pytest.skip("this kernel has WireGuard")
    monkeypatch.setenv("PATH", str(tmp_path))
    capability, backend = host.wireguard()
    assert backend == "none" and capability.ok is False
    assert "no WireGuard module" in capability.reason and "wireguard-go" in capability.reason


IP_FORWARD_IN_NEW_NETNS = """
from pathlib import Path
from formation.node.capabilities.host import ip_forwarding
knob = Path("/proc/sys/net/ipv4/ip_forward")
knob.write_text("0")
off = ip_forwarding()
knob.write_text("1")
on = ip_forwarding()
print(off.model_dump_json()); print(on.model_dump_json())
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None, reason="needs root")
def test_ip_forwarding_reader_in_a_private_network_namespace() -> None:
    """ip_forward is per network namespace: flip it in a throwaway one, never on the host."""
    done = subprocess.run(["unshare", "--net", sys.executable, "-c", IP_FORWARD_IN_NEW_NETNS],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    off, on = (Capability.model_validate_json(line) for line in done.stdout.splitlines())
    assert off.ok is False and "net.ipv4.ip_forward=0" in off.reason
    assert on.ok is True and on.summary == "net.ipv4.ip_forward=1"


def test_ip_forwarding_reader_matches_the_host_value() -> None:
    value = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
    assert host.ip_forwarding().ok is (value == "1")


def test_sized_threshold() -> None:
    assert host.sized("disk", 5, "GB free", 1.0).ok is True
    low = host.sized("disk", 0.5, "GB free", 1.0)
    assert low.ok is False and "below the minimum of 1 GB free" in low.reason


def test_resources_are_plausible(tmp_path: Path) -> None:
    res = host.resources(tmp_path)
    assert res.cpus == os.cpu_count()
    assert 0 < res.memory_available_mb <= res.memory_total_mb
    assert 0 < res.disk_free_gb <= res.disk_total_gb


async def test_probe_only_cheap_facts_skips_the_vmm_probe(tmp_path: Path) -> None:
    """Cloud Hypervisor is not installable here; a stand-in counts how often it is asked."""
    calls = tmp_path / "calls"
    stand_in = tmp_path / "cloud-hypervisor"
    stand_in.write_text(f"#!/bin/sh\necho x >> {calls}\necho 'cloud-hypervisor v40.0'\n")
    stand_in.chmod(0o755)
    settings = ProbeSettings(boot_test=False, cloud_hypervisor_binary=str(stand_in))
    prober = CapabilityProber(settings, tmp_path)
    first = await prober.probe(only=["disk"])  # nothing earlier to reuse: a full probe
    assert calls.read_text().count("x") == 1
    again = await prober.probe(only=["disk", "ip_forwarding"])
    assert calls.read_text().count("x") == 1
    assert again.get("cloud_hypervisor") == first.get("cloud_hypervisor")
    assert again.probed_at > first.probed_at
    await prober.probe(only=["cloud_hypervisor"])
    assert calls.read_text().count("x") == 2
    await prober.probe()
    assert calls.read_text().count("x") == 3
    summary = prober.current.get("cloud_hypervisor").summary
    assert summary.count("unusable without KVM") <= 1
