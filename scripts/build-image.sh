#!/usr/bin/env bash
# Builds the container image from ./Dockerfile without a Docker daemon: buildah as root, chroot
# isolation, vfs storage kept under the cache ($CACHE/containers), so it never meets a storage
# configuration of the machine's own.
#
# Docker Hub cannot be reached from the development machines, so the three bases the Dockerfile names
# are made here and tagged under those very names: debian:bookworm-slim is a Debian bookworm minbase
# root filesystem made by mmdebstrap from Debian's own packages (man pages, docs and locales left
# out, as Debian's slim images do); node:24-bookworm-slim is that plus the Node 24 binary pinned by
# the npm package `node` and npm 11, as the official image has them; golang:1.26-bookworm is that
# plus this machine's Go 1.26 toolchain (GOPATH /go, as the official image). Only these local bases
# trust the machine's CA bundle (npm's registry and the Go module proxy are reached through it
# here); the Dockerfile users build never does. Bases are made once and cached; the build itself reuses layers (`--layers`).
#
# Usage: scripts/build-image.sh [TAG]    (default localhost/image-clone-controller:dev)
# Prints build time, image size and layer count on stderr, and the image's name on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/go-env.sh
source scripts/image-env.sh
TAG="${1:-localhost/image-clone-controller:dev}"
say() { echo ">> $*" >&2; }

NEED_IMAGE=1 bash scripts/prerequisites.sh >&2
[ "$(id -u)" -eq 0 ] || { echo "building the image needs root (buildah with chroot isolation)" >&2; exit 1; }

DEBIAN_BASE=docker.io/library/debian:bookworm-slim
NODE_BASE=docker.io/library/node:24-bookworm-slim
GO_BASE=docker.io/library/golang:1.26-bookworm
has_image() { buildah images --quiet "$1" >/dev/null 2>&1; }

if ! has_image "$DEBIAN_BASE"; then
  ROOTFS_TAR="$IMAGES/debian-bookworm-minbase.tar"
  if [ ! -s "$ROOTFS_TAR" ]; then
    say "making a Debian bookworm minbase root filesystem with mmdebstrap (about a minute, cached)"
    mmdebstrap --quiet --variant=minbase --format=tar \
      --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      bookworm "$ROOTFS_TAR.partial" \
      "deb http://deb.debian.org/debian bookworm main" \
      "deb http://deb.debian.org/debian bookworm-updates main" \
      "deb http://deb.debian.org/debian-security bookworm-security main"
    mv "$ROOTFS_TAR.partial" "$ROOTFS_TAR"
  fi
  say "importing it as $DEBIAN_BASE"
  ctr=$(buildah from --quiet scratch)
  tar -C "$(buildah mount "$ctr")" -xf "$ROOTFS_TAR"
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd bash "$ctr"
  buildah commit --quiet --rm "$ctr" "$DEBIAN_BASE" >/dev/null
fi

if ! has_image "$NODE_BASE"; then
  node_bin="$(readlink -f node_modules/.bin/node 2>/dev/null || true)"
  [ -x "$node_bin" ] || { echo "node_modules/.bin/node is missing: run npm ci first (scripts/prerequisites.sh does)" >&2; exit 1; }
  NPM_TGZ="$IMAGES/npm-11.tgz"
  if [ ! -s "$NPM_TGZ" ]; then
    say "fetching npm 11 from the npm registry (cached)"
    packed=$(cd "$IMAGES" && npm pack --silent npm@11)
    mv "$IMAGES/$packed" "$NPM_TGZ"
  fi
  say "making $NODE_BASE: the Debian base, Node $("$node_bin" --version) and npm 11"
  ctr=$(buildah from --quiet --pull=never "$DEBIAN_BASE")
  mnt=$(buildah mount "$ctr")
  install -m 0755 "$node_bin" "$mnt/usr/local/bin/node"
  mkdir -p "$mnt/usr/local/lib/node_modules/npm" "$mnt/etc/ssl/certs"
  tar -C "$mnt/usr/local/lib/node_modules/npm" --strip-components=1 -xzf "$NPM_TGZ"
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$mnt/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$mnt/usr/local/bin/npx"
  # This machine's trust, for npm inside the build; in the local base only.
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$mnt/etc/ssl/certs/ca-certificates.crt"
  buildah config --env NODE_VERSION="$("$node_bin" --version)" --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd node "$ctr"
  buildah commit --quiet --rm "$ctr" "$NODE_BASE" >/dev/null
fi

if ! has_image "$GO_BASE"; then
  goroot="$(go env GOROOT)"
  say "making $GO_BASE: the Debian base and this machine's $(go env GOVERSION) (from $goroot)"
  case "$(go env GOVERSION)" in go1.26*) ;; *) echo "the Dockerfile's tools stage wants Go 1.26; this machine has $(go env GOVERSION)" >&2; exit 1 ;; esac
  ctr=$(buildah from --quiet --pull=never "$DEBIAN_BASE")
  mnt=$(buildah mount "$ctr")
  mkdir -p "$mnt/usr/local/go" "$mnt/go/bin" "$mnt/etc/ssl/certs"
  tar -C "$goroot" --exclude=./pkg/obj --exclude=./test -cf - . | tar -C "$mnt/usr/local/go" -xf -
  # This machine's trust, for the Go module proxy inside the build; in the local base only.
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$mnt/etc/ssl/certs/ca-certificates.crt"
  buildah config --env GOPATH=/go --env GOLANG_VERSION="$(go env GOVERSION)" --env GOPROXY="$(go env GOPROXY)" --env GOSUMDB="$(go env GOSUMDB)" \
    --env PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --workingdir /go --cmd bash "$ctr"
  buildah commit --quiet --rm "$ctr" "$GO_BASE" >/dev/null
fi

say "building $TAG from Dockerfile (buildah bud, layers cached)"
start=$(date +%s%N)
log="$IMAGES/build.log"
if ! buildah bud --layers --pull=never --isolation=chroot --format=oci -f Dockerfile -t "$TAG" . >"$log" 2>&1; then
  tail -40 "$log" >&2
  echo "building the image failed (whole log: $log)" >&2
  exit 1
fi
# vfs keeps whole copies: drop the cached steps of earlier builds that this one did not reuse.
used=$(grep -oE -- '--> (Using cache )?[0-9a-f]{11,64}' "$log" | grep -oE '[0-9a-f]{11,64}$' | cut -c1-11 | sort -u)
for id in $(buildah images --quiet --filter dangling=true 2>/dev/null | cut -c1-11 | sort -u); do
  grep -qx "$id" <<<"$used" || buildah rmi "$id" >/dev/null 2>&1 || true
done
took=$(( ($(date +%s%N) - start) / 1000000 ))
size=$(buildah images --format '{{.Size}}' "$TAG" | head -1)
layers=$(buildah inspect --type image --format '{{len .OCIv1.RootFS.DiffIDs}}' "$TAG")
say "built $TAG in $((took / 1000)).$(printf %03d $((took % 1000)))s: $size, $layers layers"
echo "$TAG"
