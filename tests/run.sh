#!/usr/bin/env bash
# Installs everything the test suite needs on a fresh machine, then runs the checks and the tests. `.ci/run` calls
# this script. Arguments go to pytest (e.g. `-m "not slow"` for the quick subset while working).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install --quiet --disable-pip-version-check -r requirements-test.txt
python -m pip install --quiet --disable-pip-version-check --no-deps -e .
if ! command -v chromium >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  # Debian's Chromium for the browser tests (Playwright's own browser download does not work here).
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null
fi
ruff check .
ruff format --check .
lint-imports
status=0
python -m pytest "$@" || status=$?
if [ "$status" -eq 5 ]; then status=0; fi  # pytest's "no tests collected"
exit "$status"
