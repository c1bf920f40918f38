#!/usr/bin/env bash
# Installs what building the appliance image needs, once, and prints the mkosi command to use.
#
# Bookworm's mkosi (14) cannot make a bootable disk on a host whose kernel has no vfat: it mounts
# the ESP. mkosi 24 (bookworm-backports) makes every partition with systemd-repart and mounts
# nothing, but needs systemd >= 254 tools. Installing systemd 254 over the host's would change the
# machine under everyone else, so its debs (and mkosi's) are unpacked into a private tree and
# mkosi runs from there. mkosi runs its tools in a sandbox that sees the host's /usr (and only a
# cleaned environment), so the tree lives under /usr/local and systemd 254's private library is
# placed beside the host's (a new file name, libsystemd-shared-254.so: nothing of the host's
# systemd changes). Plain helpers (bubblewrap, mtools, dosfstools, ...) come from bookworm.
#
# Usage: scripts/image-tools.sh [--check]    prints the path of the mkosi wrapper on stdout
#   FORMATION_IMAGE_TOOLS  where the tools live (default: /usr/local/lib/formation-image-tools)
#   FORMATION_MIRROR       Debian mirror (default: http://deb.debian.org/debian)
# Exit 0: ready. Exit 2: cannot be installed here (message on stderr says why).
set -euo pipefail

mirror=${FORMATION_MIRROR:-http://deb.debian.org/debian}
tools=${FORMATION_IMAGE_TOOLS:-/usr/local/lib/formation-image-tools}
private_lib=/usr/lib/x86_64-linux-gnu/systemd/libsystemd-shared-254.so
wrapper=$tools/bin/mkosi
# binutils: build-image.sh strips the wheels' C extensions; not on a fresh Debian.
host_packages=(bubblewrap dosfstools mtools e2fsprogs zstd xz-utils cpio debian-archive-keyring
  apt dpkg fdisk kmod qemu-utils ovmf binutils)
backports_packages=(mkosi systemd systemd-container systemd-boot systemd-boot-efi libsystemd0
  libsystemd-shared udev)

fail() { echo "image-tools: $*" >&2; exit 2; }

if [ -x "$wrapper" ] && [ -e "$private_lib" ] && "$wrapper" --version >/dev/null 2>&1; then
  echo "$wrapper"; exit 0
fi
[ "${1:-}" = "--check" ] && fail "not installed yet (run scripts/image-tools.sh)"
[ "$(id -u)" -eq 0 ] || fail "needs root (apt-get, and mkosi builds as root here)"
command -v apt-get >/dev/null || fail "needs apt-get (a Debian host)"

missing=()
for p in "${host_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "image-tools: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
    || fail "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >/dev/null || fail "cannot install ${missing[*]}"
fi

# A private apt state for bookworm-backports: the host's sources stay untouched.
state=$tools/apt
mkdir -p "$state/lists/partial" "$state/archives/partial" "$tools/root" "$tools/bin"
echo "deb $mirror bookworm-backports main" >"$state/sources.list"
apt_opts=(-o "Dir::Etc::sourcelist=$state/sources.list" -o "Dir::Etc::sourceparts=-"
  -o "Dir::State::Lists=$state/lists" -o "Dir::Cache::archives=$state/archives"
  -o "Dir::Cache::pkgcache=$state/pkgcache.bin" -o "Dir::Cache::srcpkgcache=$state/srcpkgcache.bin"
  -o "APT::Get::List-Cleanup=0")
echo "image-tools: fetching ${backports_packages[*]} from bookworm-backports" >&2
apt-get "${apt_opts[@]}" update -qq >/dev/null 2>&1 \
  || fail "bookworm-backports is not reachable at $mirror"
(cd "$state/archives" && apt-get "${apt_opts[@]}" download -qq \
  $(for p in "${backports_packages[@]}"; do
      echo "$p/bookworm-backports"; done) >/dev/null 2>&1) \
  || fail "cannot download ${backports_packages[*]} from bookworm-backports"
for deb in "$state"/archives/*.deb; do dpkg-deb -x "$deb" "$tools/root"; done

root=$tools/root
mkdir -p "$(dirname "$private_lib")"
# Replaced by a rename, never rewritten in place: another build may have the library mapped.
if ! cmp -s "$root$private_lib" "$private_lib"; then
  cp "$root$private_lib" "$private_lib.new.$$" && mv -f "$private_lib.new.$$" "$private_lib"
fi
cat >"$wrapper" <<EOF
#!/usr/bin/env bash
# mkosi 24 with systemd 254 tools from an unpacked tree (see scripts/image-tools.sh).
export PATH="$root/usr/bin:$root/bin:$root/usr/sbin:$root/lib/systemd:\$PATH"
export PYTHONPATH="$root/usr/lib/python3/dist-packages\${PYTHONPATH:+:\$PYTHONPATH}"
exec /usr/bin/python3 -m mkosi "\$@"
EOF
chmod +x "$wrapper"
"$wrapper" --version >&2 || fail "unpacked mkosi does not run"
echo "$wrapper"
