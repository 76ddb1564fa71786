/**
 * The Argo CD, Argo Rollouts and Flux custom resource definitions the controller reads (and the Prometheus
 * operator's Prometheus, whose image field it moves a controlled workload through), for a test API server
 * with no GitOps tool installed: the real group, version, kind and scope of each, with an open
 * schema (the controller reads spec fields the tools document; it never writes these objects).
 */
import { ApiextensionsV1Api, ApiException, CustomObjectsApi, type KubeConfig, type V1CustomResourceDefinition } from '@kubernetes/client-node';

const DEFINITIONS = [
  { group: 'argoproj.io', version: 'v1alpha1', kind: 'Application', plural: 'applications' },
  { group: 'argoproj.io', version: 'v1alpha1', kind: 'Rollout', plural: 'rollouts' },
  { group: 'kustomize.toolkit.fluxcd.io', version: 'v1', kind: 'Kustomization', plural: 'kustomizations' },
  { group: 'source.toolkit.fluxcd.io', version: 'v1', kind: 'GitRepository', plural: 'gitrepositories' },
  { group: 'helm.toolkit.fluxcd.io', version: 'v2', kind: 'HelmRelease', plural: 'helmreleases' },
  { group: 'source.toolkit.fluxcd.io', version: 'v1', kind: 'HelmRepository', plural: 'helmrepositories' },
  { group: 'source.toolkit.fluxcd.io', version: 'v1beta2', kind: 'OCIRepository', plural: 'ocirepositories' },
  // An operator's resource whose image field sets the StatefulSet it controls (src/cluster/operator-images.ts).
  { group: 'monitoring.coreos.com', version: 'v1', kind: 'Prometheus', plural: 'prometheuses' },
] as const;

export async function installGitOpsCrds(kubeConfig: KubeConfig): Promise<void> {
  const api = kubeConfig.makeApiClient(ApiextensionsV1Api);
  for (const d of DEFINITIONS) {
    const body: V1CustomResourceDefinition = {
      metadata: { name: `${d.plural}.${d.group}` },
      spec: {
        group: d.group,
        scope: 'Namespaced',
        names: { kind: d.kind, plural: d.plural, singular: d.kind.toLowerCase(), listKind: `${d.kind}List` },
        versions: [
          { name: d.version, served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', x_kubernetes_preserve_unknown_fields: true } } },
        ],
      },
    };
    try {
      await api.createCustomResourceDefinition({ body });
    } catch (error) {
      if (!(error instanceof ApiException && error.code === 409)) throw error;
    }
  }
  // Wait until every CRD is established (served by the API server).
  for (const d of DEFINITIONS) {
    for (let i = 0; i < 200; i++) {
      const crd = await api.readCustomResourceDefinition({ name: `${d.plural}.${d.group}` });
      if (crd.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True')) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Creates one of these objects as its tool would find it: `body` without apiVersion and kind, which come from the definition. */
export function createGitOpsObject(
  kubeConfig: KubeConfig,
  kind: (typeof DEFINITIONS)[number]['kind'],
  namespace: string,
  body: { metadata: Record<string, unknown>; spec?: unknown; status?: unknown },
): Promise<unknown> {
  const d = DEFINITIONS.find((x) => x.kind === kind)!;
  return kubeConfig.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
    group: d.group,
    version: d.version,
    namespace,
    plural: d.plural,
    body: { apiVersion: `${d.group}/${d.version}`, kind, ...body },
  });
}

/** An object a GitOps tool applied, as its owner lists it (group empty for core kinds). */
export interface ManagedObject {
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

/**
 * Records, as Argo CD and Flux do after a sync, that an Application or Kustomization manages these
 * objects: an Application's `status.resources`, a Kustomization's `status.inventory.entries`
 * (`<namespace>_<name>_<group>_<kind>`), added to what it already lists. The controller trusts an
 * owner only when it lists the workload.
 */
export async function recordManaged(
  kubeConfig: KubeConfig,
  kind: 'Application' | 'Kustomization',
  namespace: string,
  name: string,
  objects: readonly ManagedObject[],
): Promise<void> {
  const d = DEFINITIONS.find((x) => x.kind === kind)!;
  const api = kubeConfig.makeApiClient(CustomObjectsApi);
  for (let attempt = 0; ; attempt++) {
    const current = (await api.getNamespacedCustomObject({ group: d.group, version: d.version, namespace, plural: d.plural, name })) as {
      status?: Record<string, unknown>;
    };
    const status = { ...(current.status ?? {}) };
    if (kind === 'Application') {
      const listed = Array.isArray(status.resources) ? (status.resources as unknown[]) : [];
      status.resources = [...listed, ...objects.map((o) => ({ group: o.group, version: 'v1', kind: o.kind, namespace: o.namespace, name: o.name }))];
    } else {
      const inventory = (status.inventory ?? {}) as { entries?: unknown[] };
      status.inventory = { entries: [...(inventory.entries ?? []), ...objects.map((o) => ({ id: `${o.namespace}_${o.name}_${o.group}_${o.kind}`, v: 'v1' }))] };
    }
    try {
      await api.replaceNamespacedCustomObject({ group: d.group, version: d.version, namespace, plural: d.plural, name, body: { ...current, status } });
      return;
    } catch (error) {
      // Another writer moved it (a test that records two owners at once): read again.
      if (!(error instanceof ApiException && error.code === 409) || attempt >= 5) throw error;
    }
  }
}
