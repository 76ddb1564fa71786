#!/usr/bin/env bash
# Builds a real kube-apiserver from the Go module proxy into the cache (once per version), for the
# end-to-end tests and the demo. No release download is needed: a throw-away module requires
# k8s.io/kubernetes at the pinned release and replaces each k8s.io/* staging module with its
# published v0.Y.Z (without that they resolve to v0.0.0; kubernetes#79384).
#
# Usage: scripts/build-kube-apiserver.sh            prints the binary's path when done
# Env:   KUBE_VERSION (default v1.34.4), IMAGE_CLONE_CACHE (default ~/.cache/image-clone-controller)
set -euo pipefail
KUBE_VERSION="${KUBE_VERSION:-v1.34.4}"
source "$(dirname "$0")/go-env.sh"
BIN="$CACHE/bin/kube-apiserver-$KUBE_VERSION"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
require_go kube-apiserver

WORK="$CACHE/kube-build-$KUBE_VERSION"
mkdir -p "$WORK"
cd "$WORK"
export GOFLAGS=-mod=mod
echo ">> downloading k8s.io/kubernetes@$KUBE_VERSION from the Go module proxy" >&2
MODFILE="$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
STAGING_VERSION="v0.${KUBE_VERSION#v1.}"
{
  echo "module local/kube-apiserver-build"
  echo
  echo "go $(sed -n 's/^go //p' "$MODFILE")"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  echo "replace ("
  grep -E '^\s+k8s.io/\S+ => ./staging' "$MODFILE" | awk -v v="$STAGING_VERSION" '{print "\t" $1 " => " $1 " " v}'
  echo ")"
} > go.mod
cat > tools.go <<'GO'
//go:build tools

package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
GO
echo ">> resolving dependencies" >&2
go mod tidy >&2
echo ">> compiling kube-apiserver $KUBE_VERSION (several minutes on 2 cores; cached afterwards)" >&2
go build -trimpath -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(echo "$KUBE_VERSION" | cut -d. -f2)" \
  -o "$BIN.tmp" k8s.io/kubernetes/cmd/kube-apiserver
mv "$BIN.tmp" "$BIN"
echo "$BIN"
