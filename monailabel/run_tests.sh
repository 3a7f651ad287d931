#!/usr/bin/env bash
# The MONAI Label end-to-end test (tests/label/) in its own environment: creates .venv-label/ when needed
# (monailabel/setup.sh, idempotent), then runs pytest there. About 3 minutes for the test on 2 CPU cores,
# plus about 3 minutes the first time for the environment.
#
#   bash monailabel/run_tests.sh [pytest args]        # or: make label-test
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
VENV="${LABEL_VENV:-$REPO/.venv-label}"

bash "$HERE/setup.sh"
cd "$REPO"
# LIGHTMEDSEG_LABEL_E2E=1: a missing MONAI Label fails the run instead of skipping the test
LIGHTMEDSEG_LABEL_E2E=1 exec "$VENV/bin/python" -m pytest -q tests/label "$@"
