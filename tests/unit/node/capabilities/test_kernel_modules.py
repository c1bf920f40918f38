"""Whether the kernel has a module, read from depmod's indexes as Debian ships them (the
appliance's kernel), and from the tree itself where no index exists."""

from __future__ import annotations

from pathlib import Path

from formation.node.capabilities.host import module_available

DEP = ("kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz "
       "kernel/lib/crypto/libcurve25519-generic.ko.xz\n"
       "kernel/drivers/net/wireguard_extra/not-wireguard.ko.xz:\n")


def test_loadable_and_builtin_modules_are_found_in_the_indexes(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_text(DEP)
    (tmp_path / "modules.builtin").write_text("kernel/drivers/net/tun.ko\n")
    assert module_available(tmp_path, "wireguard")
    assert module_available(tmp_path, "udp_tunnel") is False  # only named as a dependency
    assert module_available(tmp_path, "tun")
    assert not module_available(tmp_path, "guard")


def test_without_indexes_the_tree_is_walked(tmp_path: Path) -> None:
    (tmp_path / "kernel/drivers/net/wireguard").mkdir(parents=True)
    assert not module_available(tmp_path, "wireguard")
    (tmp_path / "kernel/drivers/net/wireguard/wireguard.ko.zst").write_bytes(b"")
    assert module_available(tmp_path, "wireguard")
    assert not module_available(tmp_path / "missing", "wireguard")
