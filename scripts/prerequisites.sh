#!/usr/bin/env bash
# Installs what the demo, the tests and the benchmarks need, skipping what is already there:
# Debian packages (docker-registry, skopeo, etcd-server, apache2-utils for htpasswd, openssl, git,
# time, gcc for Gitea's SQLite), the npm packages (which bring Node.js 24 for the npm scripts), with
# NEED_IMAGE=1 buildah and mmdebstrap, and with NEED_CLUSTER=1 a kube-apiserver, kustomize, Gitea, Helm,
# cosign, oras and a registry with the referrers API
# built from the Go module proxy into ~/.cache/image-clone-controller (minutes the first time, then
# cached). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v docker-registry >/dev/null || need+=(docker-registry)
command -v skopeo >/dev/null || need+=(skopeo)
command -v htpasswd >/dev/null || need+=(apache2-utils)
command -v openssl >/dev/null || need+=(openssl)
command -v git >/dev/null || need+=(git)
command -v etcd >/dev/null || need+=(etcd-server)
[ -x /usr/bin/time ] || need+=(time)
command -v gcc >/dev/null || need+=(gcc libc6-dev)
command -v ssh >/dev/null || need+=(openssh-client)
# The tests also run a real SSH server for Git over SSH.
if [ "${NEED_CLUSTER:-0}" = 1 ]; then [ -x /usr/sbin/sshd ] || need+=(openssh-server); fi
# Building the container image (scripts/build-image.sh): buildah, and mmdebstrap for its bases.
if [ "${NEED_IMAGE:-0}" = 1 ]; then
  command -v buildah >/dev/null || need+=(buildah)
  command -v mmdebstrap >/dev/null || need+=(mmdebstrap)
fi
if ((${#need[@]})); then
  echo "==> installing Debian packages: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "==> installing npm packages (npm ci)"
  npm ci --no-audit --no-fund
fi

# kustomize proves every change the rewriter makes (the demo's too), and renders kustomize/.
source scripts/go-env.sh
if [ ! -x "$CACHE/bin/kustomize" ]; then
  require_go kustomize
  echo "==> building kustomize v5.7.1 from the Go module proxy (once, cached; about a minute)"
  GOBIN="$CACHE/bin" GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.7.1
fi

# The end-to-end tests need a real kube-apiserver (built once, then cached); the demo builds its own.
# So do Helm (to render charts) and Gitea (the pull-request tests).
if [ "${NEED_CLUSTER:-0}" = 1 ]; then
  bash scripts/build-kube-apiserver.sh >/dev/null
  bash scripts/build-gitea.sh >/dev/null
  # Helm renders the charts of the Helm tests (the render proof of every HelmRelease edit).
  bash scripts/build-helm.sh >/dev/null
  # The referrers tests: a registry with the OCI 1.1 referrers API, cosign and oras.
  bash scripts/build-referrers-tools.sh >/dev/null
fi
