#!/usr/bin/env bash
# Installs the Debian packages the node and its tests use, once. As non-root, only reports.
set -euo pipefail
packages=(
  qemu-system-x86 qemu-utils seabios     # VM backend on hosts without Cloud Hypervisor; KVM probe
  ovmf                                   # UEFI firmware: the image test boots the disk through it
  wireguard-go wireguard-tools           # the mesh where the kernel has no WireGuard
  iproute2 tcpdump dnsutils              # lab namespaces, capture and DNS checks in tests
  busybox-static                         # ping inside the lab's namespaces (mesh traffic tests)
  openssh-server openssh-client tmux     # the console over SSH, tested for real
  cpio e2fsprogs                         # VM tests' guest kit: initramfs and ext4 root disk
  nftables dosfstools mtools             # VM networking: isolation + egress NAT; NoCloud seed disk
  caddy pebble wrk                       # the edge's proxy engine; its ACME test CA and load generator
  haproxy                                # the edge's engine for tcp routes (Debian's caddy has no layer4)
  mmdebstrap                             # pack build: the Debian base of workload images
  eatmydata                              # pack build: disk image tools skip fsync (the store syncs its copy)
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "note: missing Debian packages (tests needing them are skipped): ${missing[*]}" >&2
  exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# the node runs its own Caddy (formation/node/edge): Debian's caddy.service would hold port 80
command -v systemctl >/dev/null && systemctl disable --now caddy.service >/dev/null 2>&1 || true
# and its own HAProxy for tcp routes: Debian's haproxy.service would run a second one
command -v systemctl >/dev/null && systemctl disable --now haproxy.service >/dev/null 2>&1 || true
