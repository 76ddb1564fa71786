#!/usr/bin/env bash
# The whole test suite: installs what is missing, type-checks, then runs unit and integration tests.
set -euo pipefail
cd "$(dirname "$0")/.."
NEED_CLUSTER=1 bash scripts/prerequisites.sh
exec npm test
