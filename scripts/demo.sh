#!/usr/bin/env bash
# The main job on one machine with nothing outside it: installs what is missing, builds Gitea (once,
# with progress, cached) so that the change arrives as a pull request, then runs the demo.
# Usage: scripts/demo.sh [--keep]   (--keep: the servers stay up to browse until Ctrl-C)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/prerequisites.sh
if [ "${IMAGE_CLONE_DEMO_FORGE:-}" != none ]; then
  echo "==> Gitea, where the demo's pull request opens (built once from the Go module proxy: about 8 minutes on 2 cores, then cached)" >&2
  bash scripts/build-gitea.sh >/dev/null
fi
exec npm run --silent demo -- "$@"
