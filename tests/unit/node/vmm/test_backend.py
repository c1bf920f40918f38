"""vmm.backend against what the probe proved: which driver, and the reason doctor prints."""

from __future__ import annotations

import pytest

from formation.api.models import Capabilities, Capability
from formation.config.settings import NodeSettings, VmmSettings
from formation.node.vmm.backend import select_driver
from formation.node.vmm.qemu import QemuDriver

HUNG = "/dev/kvm opens, but the test guest hung (no exit in 6 s)"


def caps(kvm: bool | None, qemu: bool, ch: bool) -> Capabilities:
    return Capabilities(items=[
        Capability(name="kvm", ok=kvm, reason="" if kvm else HUNG),
        Capability(name="qemu", ok=qemu, summary="qemu 7.2" if qemu else "",
                   reason="" if qemu else "qemu-system-x86_64 is not installed"),
        Capability(name="cloud_hypervisor", ok=ch, summary="v53.0" if ch else "",
                   reason="" if ch else "cloud-hypervisor is not installed (not on PATH)"),
    ])


def settings(backend: str) -> NodeSettings:
    return NodeSettings(vmm=VmmSettings(backend=backend))


def test_auto_without_kvm_runs_qemu_under_tcg_and_says_why() -> None:
    driver, why = select_driver(settings("auto"), caps(kvm=False, qemu=True, ch=False))
    assert isinstance(driver, QemuDriver) and driver.accel == "tcg"
    assert why.startswith("QEMU with TCG")
    assert "not installed (not on PATH)" in why and HUNG in why


def test_auto_with_kvm_but_no_cloud_hypervisor_runs_qemu_under_kvm() -> None:
    driver, why = select_driver(settings("auto"), caps(kvm=True, qemu=True, ch=False))
    assert isinstance(driver, QemuDriver) and driver.accel == "kvm"
    assert why.startswith("QEMU with KVM")


def test_cloud_hypervisor_without_kvm_is_not_chosen_by_auto() -> None:
    driver, why = select_driver(settings("auto"), caps(kvm=False, qemu=True, ch=True))
    assert isinstance(driver, QemuDriver) and driver.accel == "tcg"
    assert "no Cloud Hypervisor: it needs KVM" in why


def test_auto_prefers_cloud_hypervisor_when_it_and_kvm_work() -> None:
    driver, why = select_driver(settings("auto"), caps(kvm=True, qemu=True, ch=True))
    assert driver is not None and driver.name == "cloud-hypervisor"
    assert why == "Cloud Hypervisor (vmm.backend auto; v53.0; KVM boots guests)"


def test_cloud_hypervisor_asked_and_working_is_chosen() -> None:
    driver, _ = select_driver(settings("cloud-hypervisor"), caps(kvm=True, qemu=False, ch=True))
    assert driver is not None and driver.name == "cloud-hypervisor"


def test_qemu_forced_even_where_cloud_hypervisor_works() -> None:
    driver, why = select_driver(settings("qemu"), caps(kvm=True, qemu=True, ch=True))
    assert isinstance(driver, QemuDriver) and driver.accel == "kvm"
    assert "vmm.backend qemu" in why


@pytest.mark.parametrize("backend", ["qemu", "auto"])
def test_no_qemu_and_no_cloud_hypervisor_means_no_driver(backend: str) -> None:
    driver, why = select_driver(settings(backend), caps(kvm=False, qemu=False, ch=False))
    assert driver is None
    assert why.startswith("none") and "qemu-system-x86_64 is not installed" in why


def test_cloud_hypervisor_asked_without_kvm_is_none_with_the_reason() -> None:
    driver, why = select_driver(settings("cloud-hypervisor"), caps(kvm=False, qemu=True, ch=True))
    assert driver is None
    assert why == ("none (vmm.backend cloud-hypervisor; no Cloud Hypervisor: it needs KVM, "
                   f"and {HUNG})")


def test_unprobed_capabilities_say_so() -> None:
    driver, why = select_driver(settings("auto"), Capabilities())
    assert driver is None and "not probed yet" in why
