#!/usr/bin/env bash
# The whole suite in two pytest processes at once: the appliance image's tests (tests/image:
# mostly one emulated boot of the image, which keeps one core busy for about five minutes) run
# beside the rest, which spends most of its time waiting on real processes and timers (the unit
# tests use about a third of a core). Both must pass; the image run's output follows the main
# run's. With arguments, `just test ARGS` runs plain `pytest ARGS` instead.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
image_log=$(mktemp /tmp/formation-image-tests.XXXXXX)
trap 'rm -f "$image_log"' EXIT
"$py" -m pytest tests/image -p no:cacheprovider >"$image_log" 2>&1 &
image_pid=$!
"$py" -m pytest --ignore=tests/image
main_rc=$?
wait "$image_pid"
image_rc=$?
echo "== tests/image (run beside the rest)"
cat "$image_log"
echo "== exit: rest $main_rc, tests/image $image_rc"
[ "$main_rc" -eq 0 ] && [ "$image_rc" -eq 0 ]
