#!/usr/bin/env bash
# Run the test suite: set up .venv if needed (scripts/setup.sh), then pytest.
#
# With no arguments (or only output flags: -q, -v, -x, -ra, --tb=...) it runs everything in two
# parts: every test but the testbed's on two processes (pytest-xdist), then the testbed's tests
# (real device processes and shaped links whose timing is measured: marker `testbed`) on their own,
# with nothing else computing beside them. Any other arguments go to one pytest run as they are
# (`bash scripts/test.sh -m "not slow" -n 2`, `bash scripts/test.sh tests/test_channel.py`).
# "No tests collected" (pytest exit 5) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?

run() {
  .venv/bin/python -m pytest "$@"
  local rc=$?
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: treating this as a failure" >&2
    return 1
  fi
  return "$rc"
}

whole=1
for arg in "$@"; do
  case "$arg" in
    -q|-qq|-v|-vv|-x|-ra|--tb=*) ;;
    *) whole=0 ;;
  esac
done

if [ "$whole" -eq 0 ]; then
  run "$@"
  exit $?
fi

run "$@" -n 2 -m "not testbed"
first=$?
run "$@" -m testbed
second=$?
if [ "$first" -ne 0 ]; then
  echo "the tests outside the testbed failed (exit $first)" >&2
  exit "$first"
fi
exit "$second"
