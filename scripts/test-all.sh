#!/usr/bin/env bash
# The whole suite in two pytest streams at once, because most of it waits rather than computes
# (a serial run of the unit tests took 382 s for 125 s of CPU):
#   - beside: tests/image (one emulated boot of the appliance keeps a core busy for about five
#     minutes; more when the image must be built first), then tests/unit;
#   - here: everything else (integration and console tests, the longest part).
# Both must pass; the side stream's output follows this one's. With arguments, `just test ARGS`
# runs plain `pytest ARGS` instead.
set -uo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
side_log=$(mktemp /tmp/formation-side-tests.XXXXXX)
trap 'rm -f "$side_log"' EXIT
(
  "$py" -m pytest tests/image -p no:cacheprovider; image_rc=$?
  "$py" -m pytest tests/unit -p no:cacheprovider; unit_rc=$?
  [ "$image_rc" -eq 0 ] && [ "$unit_rc" -eq 0 ]
) >"$side_log" 2>&1 &
side_pid=$!
"$py" -m pytest --ignore=tests/image --ignore=tests/unit
main_rc=$?
wait "$side_pid"
side_rc=$?
echo "== tests/image, then tests/unit (run beside the rest)"
cat "$side_log"
echo "== exit: integration and console $main_rc, image and unit $side_rc"
[ "$main_rc" -eq 0 ] && [ "$side_rc" -eq 0 ]
