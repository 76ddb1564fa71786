#!/usr/bin/env bash
# Builds Helm from the Go module proxy into the cache (once per version), as Helm's own Makefile
# builds it: its version, and the Kubernetes version `helm template` assumes when it is given none
# (chartutil's default; without these ldflags it is v1.20.0, and every chart that asks for
# `kubeVersion: >=1.21` refuses to render). The render proofs pass the cluster's own version; this
# default is what is left where the copier could not read it.
#
# Usage: scripts/build-helm.sh      prints the binary's path when done
set -euo pipefail
HELM_VERSION=v3.22.0
# Helm v3.22.0 builds on k8s.io/client-go v0.37: its Makefile takes Kubernetes 1.37 from that.
KUBE_MAJOR=1 KUBE_MINOR=37
source "$(dirname "$0")/go-env.sh"
BIN="$CACHE/bin/helm-$HELM_VERSION-kube$KUBE_MAJOR.$KUBE_MINOR"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
require_go helm
echo "==> building helm $HELM_VERSION from the Go module proxy (once, cached; about 2 minutes)" >&2
tmp="$(mktemp -d)"
GOBIN="$tmp" GOFLAGS=-mod=mod go install -ldflags "-X helm.sh/helm/v3/internal/version.version=$HELM_VERSION \
  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=$KUBE_MAJOR -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$KUBE_MINOR \
  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=$KUBE_MAJOR -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$KUBE_MINOR" \
  "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" >&2
mv "$tmp/helm" "$BIN" && rmdir "$tmp"
echo "$BIN"
