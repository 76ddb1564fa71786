#!/usr/bin/env bash
# The main job on one machine with nothing outside it: installs what is missing, then runs the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
exec npm run --silent demo
