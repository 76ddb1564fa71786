#!/usr/bin/env bash
# Builds what the tests of referrers (signatures, SBOMs, attestations travelling with a backup) run,
# from the Go module proxy into the cache, once each:
#   - devenv/referrers-registry: a registry with the OCI 1.1 referrers API (go-containerregistry's,
#     with what the spec asks in front of it), named by a hash of its sources so a change rebuilds it;
#   - cosign (signs, attests, attaches SBOMs; verifies at the backup) and oras (pushes artifacts with
#     a subject, lists referrers);
#   - Sigstore's timestamp authority (vouches for when a keyless signature was made).
#
# Usage: scripts/build-referrers-tools.sh      prints the four paths when done
set -euo pipefail
COSIGN_VERSION=v3.1.3
ORAS_VERSION=v1.3.6
# v2.2.1 needs a newer Go than 1.26.
TSA_VERSION=v2.1.3
cd "$(dirname "$0")/.."
source scripts/go-env.sh
require_go "the referrers test tools"

src=devenv/referrers-registry
hash="$(cat "$src/main.go" "$src/go.mod" "$src/go.sum" | sha256sum | cut -c1-12)"
registry="$CACHE/bin/referrers-registry-$hash"
if [ ! -x "$registry" ]; then
  echo "==> building the referrers registry (devenv/referrers-registry) from the Go module proxy" >&2
  (cd "$src" && GOFLAGS=-mod=mod go build -o "$registry.tmp" . && mv "$registry.tmp" "$registry")
fi

build() { # name version module
  local bin="$CACHE/bin/$1-$2"
  if [ ! -x "$bin" ]; then
    echo "==> building $1 $2 from the Go module proxy (once, cached; $4)" >&2
    local tmp
    tmp="$(mktemp -d)"
    GOBIN="$tmp" GOFLAGS=-mod=mod go install "$3@$2" >&2
    mv "$tmp/$1" "$bin" && rm -rf "$tmp"
  fi
  echo "$bin"
}
echo "$registry"
build cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v3/cmd/cosign "a few minutes"
build oras "$ORAS_VERSION" oras.land/oras/cmd/oras "about a minute"
build timestamp-server "$TSA_VERSION" github.com/sigstore/timestamp-authority/v2/cmd/timestamp-server "about a minute"
