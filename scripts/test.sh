#!/usr/bin/env bash
# The whole test suite: installs what is missing, builds the container image from ./Dockerfile (as
# root: buildah; scripts/build-image.sh), then type-checks, lints (Biome) and runs the unit, integration and
# end-to-end tests, among them test/image/ (the image running the Pod that kustomize/ renders).
set -euo pipefail
cd "$(dirname "$0")/.."
NEED_CLUSTER=1 bash scripts/prerequisites.sh
if [ "$(id -u)" -eq 0 ]; then
  IMAGE_CLONE_IMAGE="$(bash scripts/build-image.sh)"
  export IMAGE_CLONE_IMAGE
else
  echo "==> not root: the container image is not built here, and test/image/ is skipped (CI runs it)" >&2
fi
exec npm test
