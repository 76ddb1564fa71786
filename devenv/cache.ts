/**
 * Where heavy test tools built from the Go module proxy are cached, outside the repository
 * (kube-apiserver, kustomize, crane, regctl): $IMAGE_CLONE_CACHE, else $XDG_CACHE_HOME or ~/.cache,
 * under image-clone-controller/. scripts/*.sh use the same rule.
 */
import { homedir } from 'node:os';
import { join } from 'node:path';

export const CACHE_DIR = process.env.IMAGE_CLONE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'image-clone-controller');
export const BIN_DIR = join(CACHE_DIR, 'bin');
/** Helm as scripts/build-helm.sh builds it (with the Kubernetes version it defaults to set, as Helm's Makefile does). */
export const HELM_BIN = join(BIN_DIR, 'helm-v3.22.0-kube1.37');
