# syntax=docker/dockerfile:1
# image-clone-controller: one image for both containers of the Pod (copier and rewriter).
# Build: docker build -t image-clone-controller .   (or: buildah bud -t image-clone-controller .)
# CI builds this very file with buildah and runs the Pod from it (scripts/test-image.sh).

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the npm package "node" (a dev dependency that pins Node 24 for npm scripts)
# would download a second Node; the base image already is Node 24.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
# Production dependencies only, without their type declarations and source maps (never loaded at
# run time; a third of client-node's size).
RUN node node_modules/typescript/bin/tsc -p tsconfig.build.json \
 && npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && find node_modules -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

# Helm and kustomize, which the rewriter runs to prove each HelmRelease edit by rendering the chart
# before and after it. Built from their pinned sources as static binaries, stripped.
FROM golang:1.26-bookworm AS tools
ENV CGO_ENABLED=0 GOFLAGS=-trimpath
# Helm's ldflags as its Makefile sets them (scripts/build-helm.sh says why): its version, and the
# Kubernetes version it assumes when the proof has none from the cluster (1.37, its client-go's).
RUN go install -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v3.22.0 \
      -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37 \
      -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37" \
      helm.sh/helm/v3/cmd/helm@v3.22.0 \
 && go install -ldflags "-s -w" sigs.k8s.io/kustomize/kustomize/v5@v5.7.1 \
 && rm -rf /root/.cache /go/pkg

# The runtime: Debian's slim base with what the rewriter runs (git for every change, ssh for ssh://
# remotes, CA certificates for git over HTTPS and chart repositories, helm and kustomize for the
# render proofs) and the Node binary alone, without npm, yarn or
# corepack. The passwd entry matters: ssh refuses to run for a uid with none ("No user exists").
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/cache/debconf/*-old /var/lib/dpkg/*-old /var/log/* \
 && echo 'nonroot:x:65532:65532:nonroot:/home/nonroot:/usr/sbin/nologin' >>/etc/passwd \
 && echo 'nonroot:x:65532:' >>/etc/group \
 && mkdir -p /home/nonroot && chown 65532:65532 /home/nonroot
COPY --from=build /usr/local/bin/node /usr/local/bin/node
COPY --from=tools /go/bin/helm /go/bin/kustomize /usr/local/bin/
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Non-root (the distroless "nonroot" uid). The root filesystem may be read-only: git and ssh only
# read $HOME (/home/nonroot); the rewriter's clones live on its --cache-dir volume.
USER 65532:65532
EXPOSE 8080 8081
# A 4 MiB young generation makes V8 collect short-lived garbage (list pages of 500 workloads, 64 KiB
# blob chunks) often enough that memory stays flat: the copier's peak RSS over 10,000 Deployments
# was 302 MiB with Node's defaults (see bench/copier.bench.ts for today's figures). --expose-gc lets
# the copier collect the garbage of its first lists once, before its first pass (20-30 MiB less at
# the peak). The benchmarks read these flags from this line, so they run the controller exactly as
# the container does.
ENTRYPOINT ["node", "--max-semi-space-size=4", "--expose-gc", "dist/cli.js"]
CMD ["help"]
