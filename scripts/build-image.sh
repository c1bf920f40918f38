#!/usr/bin/env bash
# Builds the appliance image (image/mkosi.conf) and prints the path of the raw disk.
#
# The project goes in from a wheelhouse made here on the host (pip inside the image build has no
# certificates to trust), installed into a tree that mkosi lays over the image. The build is
# skipped when nothing that goes into it changed since the last one (a hash of the inputs), so
# the tests and the benchmark share one build per CI run.
#
# Usage: scripts/build-image.sh [--force] [--config DIR] [--name NAME]
#   --config DIR   another mkosi configuration (the benchmark's minimal image); no project payload
#   FORMATION_IMAGE_CACHE  tools, wheelhouse, mkosi cache and outputs (default .cache/image)
#   FORMATION_MIRROR       Debian mirror, used as mkosi's local mirror (default deb.debian.org)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${FORMATION_IMAGE_CACHE:-$repo/.cache/image}
mirror=${FORMATION_MIRROR:-http://deb.debian.org/debian}
force=no
config=$repo/image
name=formation
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=yes ;;
    --config) config=$(cd "$2" && pwd); shift ;;
    --name) name=$2; shift ;;
    *) echo "build-image: unknown option $1" >&2; exit 64 ;;
  esac
  shift
done

mkosi=$(bash "$repo/scripts/image-tools.sh")
out=$cache/output/$name
mkdir -p "$out" "$cache/mkosi-cache"
python=$repo/.venv/bin/python
[ -x "$python" ] || python=python3

payload_args=()
# Paths relative to the checkout: a clone elsewhere with the same files has the same hash.
inputs=("${config#"$repo"/}" image)  # image/ holds what both images share (kernel.conf, repart)
if [ "$config" = "$repo/image" ]; then
  inputs+=(formation pyproject.toml)
fi
hash=$(cd "$repo" && (cat scripts/build-image.sh; find "${inputs[@]}" -type f ! -name '*.pyc' \
  -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)
if [ "$force" = no ] && [ -f "$out/$name.raw" ] && [ "$(cat "$out/.inputs" 2>/dev/null)" = "$hash" ]
then
  echo "build-image: $name is up to date" >&2
  echo "$out/$name.raw"; exit 0
fi

started=$SECONDS
if [ "$config" = "$repo/image" ]; then
  echo "build-image: wheelhouse of the project and its dependencies" >&2
  wheels=$cache/wheelhouse payload=$cache/payload
  rm -rf "$payload" "$wheels"/formation-*.whl
  pip=("$python" -m pip -q --disable-pip-version-check)
  "${pip[@]}" wheel --no-deps -w "$wheels" "$repo" >&2
  install=(install --no-index --find-links "$wheels" --no-compile
    --target "$payload/usr/lib/formation/site" formation)
  # The dependencies' wheels stay in the wheelhouse; the index is asked only when one is missing.
  if ! "${pip[@]}" "${install[@]}" >/dev/null 2>&1; then
    "${pip[@]}" wheel --find-links "$wheels" -w "$wheels" "$repo" >&2
    rm -rf "$payload"
    "${pip[@]}" "${install[@]}" >&2
  fi
  rm -rf "$payload/usr/lib/formation/site/bin"
  payload_args=(--extra-tree="$payload")
fi

echo "build-image: mkosi build of $name (mirror $mirror)" >&2
rm -f "$out/.inputs"
# Incremental: mkosi keeps the tree as it was after the packages were installed and reuses it
# while the package list is the same, so a change to the project or the overlay skips apt. The
# cache is keyed by everything that goes into that tree (the configs and the skeleton: mkosi's own
# key leaves the skeleton out); another key gets a fresh directory and old ones are dropped.
base=$(cd "$repo" && find "${config#"$repo"/}" image/kernel.conf image/skeleton -type f \
  \( -name '*.conf' -o -path '*/skeleton/*' \) -print0 | sort -z | xargs -0 sha256sum \
  | sha256sum | cut -c1-16)
mkosi_cache=$cache/mkosi-cache/$name-$base
find "$cache/mkosi-cache" -mindepth 1 -maxdepth 1 -name "$name-*" ! -name "$name-$base" \
  -exec rm -rf {} +
mkdir -p "$mkosi_cache"
# --local-mirror with no key check: mkosi 24 otherwise adds Debian's debug archive, which mirrors
# refuse; it also leaves out the updates and security suites, so the image is bookworm as released
# plus what the mirror carries. Kept here, not in mkosi.conf, as a property of this build host.
"$mkosi" -C "$config" --force --image-id="$name" --output-dir="$out" \
  --cache-dir="$mkosi_cache" --incremental=yes \
  --local-mirror="$mirror" --repository-key-check=no \
  "${payload_args[@]}" build >&2
echo "$hash" >"$out/.inputs"
echo $((SECONDS - started)) >"$out/.build_s"
zstd -q -f -T0 -10 "$out/$name.raw" -o "$out/$name.raw.zst"
echo "$out/$name.raw"
