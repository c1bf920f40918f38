#!/usr/bin/env bash
# Builds the appliance image (image/mkosi.conf) and prints the path of the raw disk.
#
# The project goes in from a wheelhouse made here on the host (pip inside the image build has no
# certificates to trust), installed into a tree that mkosi lays over the image. The build is
# skipped when nothing that goes into it changed (a hash of the inputs, by their paths in the
# checkout): the tests and the benchmark share one build, and so do every clone and worktree on
# the machine, since the cache lives outside the checkout.
#
# Usage: scripts/build-image.sh [--force] [--config DIR] [--name NAME] [--cloud-hypervisor PATH]
#   --config DIR   another mkosi configuration (the benchmark's minimal image); no project payload
#   --cloud-hypervisor PATH  a cloud-hypervisor binary (x86-64, static as its releases are) to
#                  ship as /usr/bin/cloud-hypervisor; without it the image has the QEMU backend
#                  only. Also FORMATION_CLOUD_HYPERVISOR. Its bytes are part of the build's hash.
#   FORMATION_IMAGE_CACHE  wheelhouse, mkosi's caches (incremental trees and downloaded packages)
#                          and outputs (default /var/cache/formation-image as root, else
#                          .cache/image in the checkout)
#   FORMATION_MIRROR       Debian mirror, used as mkosi's local mirror (default deb.debian.org)
#   FORMATION_IMAGE_ZSTD   zstd options for the shipped .zst (default -10 --long=27)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
if [ -n "${FORMATION_IMAGE_CACHE:-}" ]; then cache=$FORMATION_IMAGE_CACHE
elif [ "$(id -u)" -eq 0 ]; then cache=/var/cache/formation-image
else cache=$repo/.cache/image; fi
zstd_options=${FORMATION_IMAGE_ZSTD:--10 --long=27}
mirror=${FORMATION_MIRROR:-http://deb.debian.org/debian}
force=no
config=$repo/image
name=formation
cloud_hypervisor=${FORMATION_CLOUD_HYPERVISOR:-}
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=yes ;;
    --config) config=$(cd "$2" && pwd); shift ;;
    --name) name=$2; shift ;;
    --cloud-hypervisor) cloud_hypervisor=$2; shift ;;
    *) echo "build-image: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

if [ "$config" != "$repo/image" ]; then
  # The environment's binary is for the appliance; another configuration builds without it.
  cloud_hypervisor=
fi
if [ -n "$cloud_hypervisor" ]; then
  # Refused before anything is built: a missing file, or something that is not an x86-64
  # executable (ELF magic, e_machine 62 at offset 18), would only show when a VM fails to start.
  if [ ! -f "$cloud_hypervisor" ] || [ ! -x "$cloud_hypervisor" ] \
      || [ "$(head -c 4 "$cloud_hypervisor" | od -An -c | tr -d ' ')" != '177ELF' ] \
      || [ "$(od -An -tu2 -j18 -N2 "$cloud_hypervisor" | tr -d ' ')" != 62 ]; then
    echo "build-image: --cloud-hypervisor: $cloud_hypervisor is not an x86-64 executable" >&2
    exit 64
  fi
  cloud_hypervisor=$(cd "$(dirname "$cloud_hypervisor")" && pwd)/$(basename "$cloud_hypervisor")
fi

mkosi=$(bash "$repo/scripts/image-tools.sh")
mkdir -p "$cache/output" "$cache/mkosi-cache"
python=$repo/.venv/bin/python
[ -x "$python" ] || python=python3

payload_args=()
# Paths relative to the checkout: a clone elsewhere with the same files has the same hash.
inputs=("${config#"$repo"/}" image)  # image/ holds what both images share (kernel.conf, repart)
if [ "$config" = "$repo/image" ]; then
  inputs+=(formation pyproject.toml)
fi
hash=$(cd "$repo" && (cat scripts/build-image.sh; [ -z "$cloud_hypervisor" ] \
  || sha256sum <"$cloud_hypervisor"; find "${inputs[@]}" -type f ! -name '*.pyc' \
  -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -c1-16)
# One output directory per input hash, so checkouts at different commits do not rebuild over
# each other; it appears (renamed into place) only once complete.
out=$cache/output/$name-$hash
exit_if_up_to_date() {
  [ "$force" = no ] && [ -f "$out/.inputs" ] && [ -f "$out/$name.raw.zst" ] || return 0
  touch "$out"  # recently used: kept when older outputs are dropped
  echo "build-image: $name is up to date" >&2
  echo "$out/$name.raw"; exit 0
}
exit_if_up_to_date
# Builds of one image wait for each other (they share mkosi's cache and the wheelhouse); the
# second finds the first one's output.
exec {lock}>"$cache/$name.lock"
flock "$lock"
exit_if_up_to_date
work=$(mktemp -d "$cache/output/.$name-$hash.XXXXXX")
trap 'rm -rf "$work"' EXIT

started=$SECONDS
stamp() { while IFS= read -r line; do printf '[%4ds] %s\n' $((SECONDS - started)) "$line"; done; }
if [ "$config" = "$repo/image" ]; then
  echo "build-image: wheelhouse of the project and its dependencies" >&2
  wheels=$cache/wheelhouse payload=$work/payload
  rm -f "$wheels"/formation-*.whl
  pip=("$python" -m pip -q --disable-pip-version-check)
  "${pip[@]}" wheel --no-deps -w "$wheels" "$repo" >&2
  install=(install --no-index --find-links "$wheels" --no-compile
    --target "$payload/usr/lib/formation/site" formation)
  # The dependencies' wheels stay in the wheelhouse; the index is asked only when one is missing.
  if ! "${pip[@]}" "${install[@]}" >/dev/null 2>&1; then
    # From the wheel just made: building the project again would set up a second isolated
    # build environment (seconds on a cold machine) for the same wheel.
    "${pip[@]}" wheel --find-links "$wheels" -w "$wheels" "$wheels"/formation-*.whl >&2
    rm -rf "$payload"
    "${pip[@]}" "${install[@]}" >&2
  fi
  rm -rf "$payload/usr/lib/formation/site/bin"
  # Wheels' C extensions often carry their debug information (megabytes each); tracebacks and
  # the code do not need it.
  find "$payload" -name '*.so' -exec strip --strip-debug {} +
  if [ -n "$cloud_hypervisor" ]; then
    echo "build-image: with Cloud Hypervisor from $cloud_hypervisor" >&2
    install -D -m 0755 "$cloud_hypervisor" "$payload/usr/bin/cloud-hypervisor"
  fi
  payload_args=(--extra-tree="$payload")
fi

echo "build-image: mkosi build of $name (mirror $mirror)" >&2
# Incremental: mkosi keeps the tree as it was after the packages were installed and reuses it
# while the package list is the same, so a change to the project or the overlay skips apt. The
# cache is keyed by everything that goes into that tree (the configs and the skeleton: mkosi's own
# key leaves the skeleton out); another key gets a fresh directory, and only the two newest are
# kept (another checkout may be on the other one).
base=$(cd "$repo" && find "${config#"$repo"/}" image/kernel.conf image/skeleton -type f \
  \( -name '*.conf' -o -path '*/skeleton/*' \) -print0 | sort -z | xargs -0 sha256sum \
  | sha256sum | cut -c1-16)
mkosi_cache=$cache/mkosi-cache/$name-$base
mkdir -p "$mkosi_cache"
touch "$mkosi_cache"
keep_newest() {  # keep_newest COUNT DIR PATTERN: drop all but the COUNT newest matches
  find "$2" -mindepth 1 -maxdepth 1 -name "$3" -printf '%T@ %p\n' | sort -rn \
    | tail -n +"$(($1 + 1))" | cut -d' ' -f2- | xargs -r rm -rf
}
keep_newest 2 "$cache/mkosi-cache" "$name-*"
# --local-mirror with no key check: mkosi 24 otherwise adds Debian's debug archive, which mirrors
# refuse; it also leaves out the updates and security suites, so the image is bookworm as released
# plus what the mirror carries. Kept here, not in mkosi.conf, as a property of this build host.
"$mkosi" -C "$config" --force --image-id="$name" --output-dir="$work/out" \
  --cache-dir="$mkosi_cache" --incremental=yes --package-cache-dir="$cache/mkosi-packages" \
  --local-mirror="$mirror" --repository-key-check=no \
  "${payload_args[@]}" build 2>&1 | stamp >&2
echo "build-image: compressing $name.raw (zstd $zstd_options)" | stamp >&2
# --long=27: a 128 MiB window finds the repeats across the disk (8 % smaller than -10 alone, in
# half a minute here; -15 and -19 are only 1-2 % smaller and take minutes). Plain `zstd -d`
# reads it: 27 is the largest window it accepts without --long.
# shellcheck disable=SC2086  # the options are words
zstd -q -f -T0 $zstd_options "$work/out/$name.raw" -o "$work/out/$name.raw.zst"
echo "$hash" >"$work/out/.inputs"
echo $((SECONDS - started)) >"$work/out/.build_s"
echo "build-image: $name built in $((SECONDS - started)) s" | stamp >&2
rm -rf "$out"
mv "$work/out" "$out"
keep_newest 3 "$cache/output" "$name-*"
echo "$out/$name.raw"
