#!/usr/bin/env bash
# Runs pytest on the given paths. Exit code 5 (no tests collected) is a failure here
# only when tests were expected: an empty selection must not pass silently as green.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/python -m pytest "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "run_tests: pytest collected no tests in $*" >&2
  exit 1
fi
exit $rc
