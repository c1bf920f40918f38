# Formation's tasks. `just run` and `just test` are the README's quick start.

set shell := ["bash", "-euo", "pipefail", "-c"]

venv := ".venv"
py := venv / "bin/python"

# Start the console on an embedded node (the first thing to try).
run *ARGS: setup
    {{venv}}/bin/formation console {{ARGS}}

# Run the whole test suite (after the linter and the type checker); with ARGS, `pytest ARGS`.
test *ARGS: setup
    {{venv}}/bin/ruff check formation tests bench
    {{venv}}/bin/mypy formation
    {{ if ARGS == "" { "bash scripts/test-all.sh" } else { py + " -m pytest " + ARGS } }}

# Run every benchmark in its quick form; each prints one JSON object.
bench *ARGS: setup
    for b in bench/*.py; do echo "== $b" >&2; {{py}} "$b" --quick {{ARGS}}; done

# Lint and type check.
lint: setup
    {{venv}}/bin/ruff check formation tests bench
    {{venv}}/bin/mypy formation

# Create .venv and install the project with its test tools; as root, the Debian packages too.
setup: system-packages
    @test -x {{py}} || python3 -m venv {{venv}}
    @{{py}} -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
    @{{py}} -c 'import formation, textual, aiohttp, nacl' 

# Debian packages the node and the tests use (only as root; otherwise say what is missing).
system-packages:
    @bash scripts/system-packages.sh

# MIRROR: the Debian mirror to build from (a local one where only a package mirror is reachable).
# The build tools (mkosi 24, systemd 254 from bookworm-backports) come from scripts/image-tools.sh.
# Build the appliance image (image/mkosi.conf); prints the raw disk's path (as root under
# /var/cache/formation-image, shared by every checkout on the machine; FORMATION_IMAGE_CACHE moves it).
# ARGS: scripts/build-image.sh's options, e.g. `--cloud-hypervisor PATH` to ship that binary
# (also FORMATION_CLOUD_HYPERVISOR); paths are taken from where just was called.
image MIRROR="http://deb.debian.org/debian" *ARGS: setup
    cd "{{invocation_directory()}}" && FORMATION_MIRROR="{{MIRROR}}" \
        bash "{{justfile_directory()}}/scripts/build-image.sh" {{ARGS}}
