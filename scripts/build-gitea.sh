#!/usr/bin/env bash
# Builds Gitea from the Go module proxy into the cache (once per version), for the pull-request
# tests. Gitea's go.mod has replace directives, which `go install pkg@version` refuses, so a
# throw-away module requires code.gitea.io/gitea and repeats them. SQLite needs cgo (gcc).
# Usage: scripts/build-gitea.sh    prints the binary's path when done
set -euo pipefail
GITEA_VERSION="${GITEA_VERSION:-v1.24.6}"
source "$(dirname "$0")/go-env.sh"
BIN="$CACHE/bin/gitea-$GITEA_VERSION"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
require_go gitea
WORK="$CACHE/gitea-build-$GITEA_VERSION"
mkdir -p "$WORK"
cd "$WORK"
export GOFLAGS=-mod=mod CGO_ENABLED=1
echo ">> downloading code.gitea.io/gitea@$GITEA_VERSION from the Go module proxy" >&2
MODFILE="$(go mod download -json "code.gitea.io/gitea@$GITEA_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
{
  echo "module local/gitea-build"
  echo
  echo "go $(sed -n 's/^go //p' "$MODFILE")"
  echo
  echo "require code.gitea.io/gitea $GITEA_VERSION"
  echo
  grep -E '^replace ' "$MODFILE"
} > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "code.gitea.io/gitea"\n' > tools.go
echo ">> resolving dependencies" >&2
go mod tidy >&2
echo ">> compiling gitea $GITEA_VERSION with SQLite (many minutes on 2 cores; cached afterwards)" >&2
go build -trimpath -tags 'sqlite sqlite_unlock_notify' -ldflags "-s -w -X main.Version=${GITEA_VERSION#v}" -o "$BIN.tmp" code.gitea.io/gitea
mv "$BIN.tmp" "$BIN"
echo "$BIN"
