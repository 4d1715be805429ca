#!/usr/bin/env bash
# Run the test suite: set up .venv if needed (scripts/setup.sh), then pytest.
# Extra arguments go to pytest. "No tests collected" (pytest exit 5) is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || exit $?
.venv/bin/python -m pytest "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating this as a failure" >&2
  exit 1
fi
exit "$rc"
