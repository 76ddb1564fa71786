/**
 * What a chart sees of the cluster it is rendered for: the Kubernetes version and the API versions
 * served (`.Capabilities.KubeVersion`, `.Capabilities.APIVersions`). Flux's helm-controller and
 * Argo CD's repo server hand both to Helm; a render proof that does not renders another chart than
 * the one the cluster got (a `kubeVersion: >=1.21` constraint fails against Helm's built-in default,
 * a `.Capabilities.APIVersions.Has "policy/v1"` branch takes the other arm).
 *
 * The copier reads them (discovery is allowed to every authenticated user) and hands them to the
 * rewriter beside the records (handoff/ledger.ts), since the rewriter has no access to the cluster.
 */
import { ApisApi, CoreApi, CoreV1Api, CustomObjectsApi, VersionApi, type KubeConfig } from '@kubernetes/client-node';
import { MAX_API_VERSIONS, type ClusterCapabilities } from '../handoff/schema.ts';

export type { ClusterCapabilities };

/** One `/version` call, one `/api` and `/apis` call, and one resource list per served group version. */
export async function readClusterCapabilities(kubeConfig: KubeConfig): Promise<ClusterCapabilities> {
  const version = await kubeConfig.makeApiClient(VersionApi).getCode();
  const core = await kubeConfig.makeApiClient(CoreApi).getAPIVersions();
  const groups = await kubeConfig.makeApiClient(ApisApi).getAPIVersions();
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  const found = new Set<string>();
  const kinds = (groupVersion: string, resources: ReadonlyArray<{ name: string; kind: string }>) => {
    found.add(groupVersion);
    // Subresources (`deployments/scale`) are not kinds of their own.
    for (const r of resources) if (!r.name.includes('/')) found.add(`${groupVersion}/${r.kind}`);
  };
  for (const v of core.versions) {
    const list = v === 'v1' ? await kubeConfig.makeApiClient(CoreV1Api).getAPIResources() : { resources: [] };
    kinds(v, list.resources);
  }
  for (const group of groups.groups) {
    for (const v of group.versions) {
      const resources = await custom.getAPIResources({ group: group.name, version: v.version }).then(
        (list) => list.resources,
        // A group version whose aggregated server is down still counts as served, without its kinds.
        () => [],
      );
      kinds(v.groupVersion, resources);
    }
  }
  return { kubeVersion: kubeVersionOf(version.gitVersion), apiVersions: [...found].sort().slice(0, MAX_API_VERSIONS) };
}

/** A server's gitVersion as Helm's `--kube-version` takes it: `v1.34.4+k3s1` → `v1.34.4`, `v1.30.2-eks-1a2b` → `v1.30.2`. */
export function kubeVersionOf(gitVersion: string): string {
  const match = /^v?(\d+)\.(\d+)(?:\.(\d+))?/.exec(gitVersion.trim());
  if (!match) throw new Error(`the API server reports a version Helm cannot read: ${JSON.stringify(gitVersion.slice(0, 64))}`);
  return `v${match[1]}.${match[2]}.${match[3] ?? '0'}`;
}
