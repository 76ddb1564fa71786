/**
 * Who applies a workload from Git, found from the marks GitOps tools leave on what they apply:
 *  - Argo CD: the `argocd.argoproj.io/tracking-id` annotation (`<app>:<group>/<kind>:<ns>/<name>`,
 *    `<app>` being `<namespace>_<name>` for apps outside Argo CD's namespace), else the
 *    `app.kubernetes.io/instance` label → the Application → its source(s).
 *  - Flux: `kustomize.toolkit.fluxcd.io/name`/`namespace` labels → the Kustomization → its path and
 *    GitRepository; `helm.toolkit.fluxcd.io/name`/`namespace` → the HelmRelease and its chart source.
 * Lookups are cached briefly, so a thousand workloads of one application cost one request.
 */
import { ApiException, type CustomObjectsApi } from '@kubernetes/client-node';

export interface GitSource {
  readonly repoURL: string;
  /** Directory in the repository; undefined for the root or a chart from a Helm repository. */
  readonly path: string | undefined;
  /** Branch, tag or commit the tool follows (Argo CD targetRevision, Flux ref). */
  readonly revision: string | undefined;
  /** Helm chart name, when the source is a chart. */
  readonly chart?: string;
}

export type GitOpsOwner =
  | { readonly tool: 'argocd'; readonly kind: 'Application'; readonly namespace: string; readonly name: string; readonly sources: readonly GitSource[] }
  | { readonly tool: 'flux'; readonly kind: 'Kustomization' | 'HelmRelease'; readonly namespace: string; readonly name: string; readonly sources: readonly GitSource[] };

export interface OwnerLookupOptions {
  /** Where Argo CD's Applications live by default. */
  readonly argocdNamespace?: string;
}

/** How long an owner object read from the API is reused (many workloads share one Application). */
const OWNER_CACHE_MS = 30_000;

export const ARGOCD_TRACKING_ANNOTATION = 'argocd.argoproj.io/tracking-id';
export const ARGOCD_INSTANCE_LABEL = 'app.kubernetes.io/instance';
const FLUX_KUSTOMIZE = 'kustomize.toolkit.fluxcd.io';
const FLUX_HELM = 'helm.toolkit.fluxcd.io';

interface Metadata {
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

type Obj = Record<string, unknown> & { spec?: Record<string, unknown> };

export class GitOpsOwners {
  readonly #api: CustomObjectsApi;
  readonly #argocdNamespace: string;
  readonly #cache = new Map<string, { at: number; value: Promise<Obj | undefined> }>();

  constructor(api: CustomObjectsApi, options: OwnerLookupOptions = {}) {
    this.#api = api;
    this.#argocdNamespace = options.argocdNamespace ?? 'argocd';
  }

  /** The owner of a workload, or undefined when no GitOps tool manages it. */
  async ownerOf(metadata: Metadata): Promise<GitOpsOwner | undefined> {
    const labels = metadata.labels ?? {};
    const annotations = metadata.annotations ?? {};

    const tracking = annotations[ARGOCD_TRACKING_ANNOTATION];
    const argoApp = tracking !== undefined ? tracking.split(':')[0] : labels[ARGOCD_INSTANCE_LABEL];
    if (argoApp) {
      const [namespace, name] = argoApp.includes('_') ? (argoApp.split('_', 2) as [string, string]) : [this.#argocdNamespace, argoApp];
      const app = await this.#get('argoproj.io', 'v1alpha1', namespace, 'applications', name);
      if (app) return { tool: 'argocd', kind: 'Application', namespace, name, sources: argoSources(app) };
    }

    const ksName = labels[`${FLUX_KUSTOMIZE}/name`];
    const ksNamespace = labels[`${FLUX_KUSTOMIZE}/namespace`];
    if (ksName && ksNamespace) {
      const ks = await this.#get(FLUX_KUSTOMIZE, 'v1', ksNamespace, 'kustomizations', ksName);
      if (ks) {
        const repo = await this.#fluxSource(ks.spec?.sourceRef, ksNamespace);
        const path = typeof ks.spec?.path === 'string' ? normalisePath(ks.spec.path) : undefined;
        return { tool: 'flux', kind: 'Kustomization', namespace: ksNamespace, name: ksName, sources: repo ? [{ ...repo, path }] : [] };
      }
    }

    const hrName = labels[`${FLUX_HELM}/name`];
    const hrNamespace = labels[`${FLUX_HELM}/namespace`];
    if (hrName && hrNamespace) {
      const hr = await this.#get(FLUX_HELM, 'v2', hrNamespace, 'helmreleases', hrName);
      if (hr) {
        const chartSpec = ((hr.spec?.chart as Obj | undefined)?.spec ?? {}) as Record<string, unknown>;
        const repo = await this.#fluxSource(chartSpec.sourceRef, hrNamespace);
        const chart = typeof chartSpec.chart === 'string' ? chartSpec.chart : undefined;
        return { tool: 'flux', kind: 'HelmRelease', namespace: hrNamespace, name: hrName, sources: repo ? [{ ...repo, path: chart === undefined ? undefined : normalisePath(chart), ...(chart ? { chart } : {}) }] : [] };
      }
    }
    return undefined;
  }

  async #fluxSource(ref: unknown, defaultNamespace: string): Promise<Omit<GitSource, 'path'> | undefined> {
    const sourceRef = ref as { kind?: string; name?: string; namespace?: string } | undefined;
    if (sourceRef?.kind !== 'GitRepository' || !sourceRef.name) return undefined;
    const repo = await this.#get('source.toolkit.fluxcd.io', 'v1', sourceRef.namespace ?? defaultNamespace, 'gitrepositories', sourceRef.name);
    const url = repo?.spec?.url;
    if (typeof url !== 'string') return undefined;
    const gitRef = (repo?.spec?.ref ?? {}) as Record<string, unknown>;
    const revision = [gitRef.branch, gitRef.tag, gitRef.semver, gitRef.commit, gitRef.name].find((v): v is string => typeof v === 'string');
    return { repoURL: url, revision };
  }

  /** A custom object, or undefined when it (or its CRD) does not exist. */
  #get(group: string, version: string, namespace: string, plural: string, name: string): Promise<Obj | undefined> {
    const key = `${group}/${plural}/${namespace}/${name}`;
    const cached = this.#cache.get(key);
    if (cached && Date.now() - cached.at < OWNER_CACHE_MS) return cached.value;
    const value = this.#api.getNamespacedCustomObject({ group, version, namespace, plural, name }).then(
      (o) => o as Obj,
      (error: unknown) => {
        if (error instanceof ApiException && error.code === 404) return undefined;
        this.#cache.delete(key);
        throw error;
      },
    );
    this.#cache.set(key, { at: Date.now(), value });
    return value;
  }
}

function argoSources(app: Obj): GitSource[] {
  const spec = app.spec ?? {};
  const list = Array.isArray(spec.sources) ? (spec.sources as Obj[]) : spec.source ? [spec.source as Obj] : [];
  return list.flatMap((s) => {
    const source = s as Record<string, unknown>;
    if (typeof source.repoURL !== 'string') return [];
    return [{
      repoURL: source.repoURL,
      path: typeof source.path === 'string' ? normalisePath(source.path) : undefined,
      revision: typeof source.targetRevision === 'string' ? source.targetRevision : undefined,
      ...(typeof source.chart === 'string' ? { chart: source.chart } : {}),
    }];
  });
}

/** `./apps/web/` → `apps/web`; `.` or `./` → undefined (the repository root). */
function normalisePath(path: string): string | undefined {
  const trimmed = path.replace(/^\.\/?/, '').replace(/\/+$/, '');
  return trimmed === '' ? undefined : trimmed;
}
