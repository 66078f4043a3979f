#!/usr/bin/env bash
# Runs pytest on the given paths. Exit code 5 (no tests collected) is a failure here
# only when tests were expected: an empty selection must not pass silently as green.
set -uo pipefail
cd "$(dirname "$0")/.."
# The dashboard's end-to-end test drives Debian's chromium (headless): install it when
# the run goes beyond the unit tests and the machine lacks it.
if [[ "$*" != "tests/unit" ]] && ! command -v chromium >/dev/null; then
  echo "run_tests: installing chromium (Debian package) for the dashboard test"
  sudo=""; [[ $(id -u) -eq 0 ]] || sudo=sudo
  $sudo apt-get update -q >/dev/null && $sudo apt-get install -y -q chromium >/dev/null || {
    echo "run_tests: could not install chromium (apt-get install chromium)" >&2; exit 1; }
fi
.venv/bin/python -m pytest --durations=20 "$@"
rc=$?
if [[ $rc -eq 5 ]]; then
  echo "run_tests: pytest collected no tests in $*" >&2
  exit 1
fi
exit $rc
