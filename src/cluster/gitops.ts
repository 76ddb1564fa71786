/**
 * Who applies a workload from Git, found from the marks GitOps tools leave on what they apply:
 *  - Argo CD: the `argocd.argoproj.io/tracking-id` annotation (`<app>:<group>/<kind>:<ns>/<name>`,
 *    `<app>` being `<namespace>_<name>` for apps outside Argo CD's namespace), else the
 *    `app.kubernetes.io/instance` label → the Application → its source(s).
 *  - Flux: `kustomize.toolkit.fluxcd.io/name`/`namespace` labels → the Kustomization → its path and
 *    GitRepository; `helm.toolkit.fluxcd.io/name`/`namespace` → the HelmRelease → its chart: in a
 *    GitRepository, the chart directory; in a Helm or OCI repository, the HelmRelease's own marks
 *    (the same lookup one level up) → the Kustomization that applies it → the file declaring it.
 * Where the chain ends outside Git (an OCIRepository or Bucket source, a chart Application, an
 * object applied by hand) the owner says why in `unsupported`, so the record is not proposed.
 *
 * Marks are written by whoever can write the object, so they are a claim, not a proof: an owner is
 * trusted only when the owner itself lists the object (Argo CD: a tracking-id naming this very
 * object and the Application's `status.resources`; Flux: the Kustomization's
 * `status.inventory.entries`; a HelmRelease, which keeps no inventory: the object in the release's
 * target namespace, and the release itself verified one level up). Every level of a chain is
 * verified. A claim that fails says why in `notVerified` (and `unsupported`): the workload is then
 * treated as managed by nobody we can trust, neither changed in Git nor by the unmanaged fallback.
 * Lookups are cached briefly, so a thousand workloads of one application cost one request.
 */
import { ApiException, type CustomObjectsApi } from '@kubernetes/client-node';
import type { ChartLocation, DeclaredObject, GitOpsOwner, GitSource } from '../handoff/schema.ts';
import { ExpiringCache } from '../util/expiring-cache.ts';

/**
 * A chart owner (`owner`, `what` for a reader) refused for what declares it (`parent`, the object
 * one level up): a parent that no file in Git moves, or one itself rendered from a chart (nested
 * charts are not followed). Undefined when the parent can carry the change.
 */
function refusedThrough(
  owner: Pick<GitOpsOwner, 'tool' | 'kind' | 'namespace' | 'name'>,
  chain: readonly string[],
  parent: GitOpsOwner,
  what: string,
): GitOpsOwner | undefined {
  if (parent.unsupported)
    return { ...owner, sources: [], chain, unsupported: parent.unsupported, ...(parent.notVerified ? { notVerified: parent.notVerified } : {}) };
  if (parent.declares)
    return {
      ...owner,
      sources: [],
      chain,
      unsupported: `${what} is itself rendered from a chart (${parent.kind} ${parent.namespace}/${parent.name}); nested charts are not followed`,
    };
  return undefined;
}

/** The object whose owner is looked up: its identity (to be found in the owner's own lists) and its marks. */
export interface OwnedObject {
  /** API group, empty for the core group. */
  readonly group: string;
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  readonly metadata: Metadata;
}

export interface OwnerLookupOptions {
  /** Where Argo CD's Applications live by default. */
  readonly argocdNamespace?: string;
  /**
   * Where Argo CD runs, when not in this cluster (`--argocd-kubeconfig`): its Applications are read
   * there. Flux's objects are always read here, where Flux applies them.
   */
  readonly argocdApi?: CustomObjectsApi;
  /**
   * What Argo CD calls this cluster (`--argocd-destination`, a cluster name or API server URL): an
   * Application whose destination is another cluster owns nothing here. Default: Argo CD's own
   * cluster (`in-cluster`, `https://kubernetes.default.svc`).
   */
  readonly argocdDestinations?: readonly string[];
}

/** How Argo CD names the cluster it runs in. */
export const ARGOCD_IN_CLUSTER = ['in-cluster', 'https://kubernetes.default.svc'] as const;

/** How long an owner object read from the API is reused (many workloads share one Application). */
const OWNER_CACHE_MS = 30_000;
/** How far up an ownership chain is followed (an app of apps of apps). */
const MAX_CHAIN = 4;

export const ARGOCD_TRACKING_ANNOTATION = 'argocd.argoproj.io/tracking-id';
export const ARGOCD_INSTANCE_LABEL = 'app.kubernetes.io/instance';
const FLUX_KUSTOMIZE = 'kustomize.toolkit.fluxcd.io';
const FLUX_HELM = 'helm.toolkit.fluxcd.io';

interface Metadata {
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
  readonly ownerReferences?: ReadonlyArray<{ readonly kind?: string; readonly name?: string }>;
}

type Obj = Record<string, unknown> & { spec?: Record<string, unknown>; metadata?: Metadata };
type SourceRef = { kind?: string; name?: string; namespace?: string } | undefined;

export class GitOpsOwners {
  readonly #api: CustomObjectsApi;
  readonly #argocdApi: CustomObjectsApi;
  readonly #argocdNamespace: string;
  readonly #destinations: readonly string[];
  readonly #cache = new ExpiringCache<Obj | undefined>({ ttlMs: () => OWNER_CACHE_MS });

  constructor(api: CustomObjectsApi, options: OwnerLookupOptions = {}) {
    this.#api = api;
    this.#argocdApi = options.argocdApi ?? api;
    this.#argocdNamespace = options.argocdNamespace ?? 'argocd';
    this.#destinations = options.argocdDestinations?.length ? options.argocdDestinations : ARGOCD_IN_CLUSTER;
  }

  /**
   * The owner of a workload (or of an owner: the same marks, one level up), or undefined when no
   * GitOps tool manages it. An owner whose chain cannot be followed to a file in Git says why in
   * `unsupported`.
   */
  async ownerOf(object: OwnedObject, depth = 0): Promise<GitOpsOwner | undefined> {
    const { metadata } = object;
    const labels = metadata.labels ?? {};
    const argoApp = trackingApplication(metadata, this.#argocdNamespace);
    if (argoApp) {
      const { namespace, name } = argoApp;
      // Argo CD's Application has no status subresource: whoever may create one writes its status too. Only
      // Applications in the namespace the operator named (Argo CD's own, which tenants do not write) are trusted.
      if (namespace !== this.#argocdNamespace)
        return notVerified(
          { tool: 'argocd', kind: 'Application', namespace, name },
          `Application ${namespace}/${name} is outside the Argo CD namespace the controller trusts (${this.#argocdNamespace})`,
        );
      const app = await this.#get('argoproj.io', 'v1alpha1', namespace, 'applications', name, this.#argocdApi);
      if (app) {
        // What Argo CD applies here (a workload, a HelmRelease) comes from an Application deploying to this cluster; an
        // Application comes from its parent, deploying to Argo CD's own cluster (where Applications live).
        const here = object.group === 'argoproj.io' && object.kind === 'Application' ? ARGOCD_IN_CLUSTER : this.#destinations;
        const refused = destinationRefused(app, namespace, name, here) ?? argoClaimRefused(object, metadata, app, namespace, name);
        if (refused) return notVerified({ tool: 'argocd', kind: 'Application', namespace, name }, refused);
        return this.#applicationOwner(app, namespace, name, depth);
      }
    }

    const ksName = labels[`${FLUX_KUSTOMIZE}/name`];
    const ksNamespace = labels[`${FLUX_KUSTOMIZE}/namespace`];
    if (ksName && ksNamespace) {
      const ks = await this.#get(FLUX_KUSTOMIZE, 'v1', ksNamespace, 'kustomizations', ksName);
      if (ks) {
        const owner = { tool: 'flux', kind: 'Kustomization', namespace: ksNamespace, name: ksName } as const;
        const id = `${object.namespace}_${object.name}_${object.group}_${object.kind}`;
        const entries = ((ks as { status?: { inventory?: { entries?: unknown } } }).status?.inventory?.entries ?? []) as Array<{ id?: unknown }>;
        if (!Array.isArray(entries) || !entries.some((e) => e?.id === id))
          return notVerified(owner, `Kustomization ${ksNamespace}/${ksName} does not list ${describeObject(object)} in its status.inventory`);
        const path = typeof ks.spec?.path === 'string' ? normalisePath(ks.spec.path) : undefined;
        const sourceRef = ks.spec?.sourceRef as SourceRef;
        // A source in another namespace is another team's repository: not where this Kustomization's workloads are changed.
        if (sourceRef?.namespace !== undefined && sourceRef.namespace !== ksNamespace)
          return notVerified(owner, `Kustomization ${ksNamespace}/${ksName} takes its manifests from namespace ${sourceRef.namespace}, not its own`);
        const source = await this.#fluxGitSource(sourceRef, ksNamespace);
        const chain = [`Kustomization ${ksNamespace}/${ksName} (${source.describe}, path ${path ?? '/'})`];
        if ('unsupported' in source) return { ...owner, sources: [], chain, unsupported: `Kustomization ${ksNamespace}/${ksName} ${source.unsupported}` };
        return { ...owner, sources: [{ ...source.repo, path }], chain };
      }
    }

    const hrName = labels[`${FLUX_HELM}/name`];
    const hrNamespace = labels[`${FLUX_HELM}/namespace`];
    if (hrName && hrNamespace) {
      const hr = await this.#get(FLUX_HELM, 'v2', hrNamespace, 'helmreleases', hrName);
      if (hr) {
        // helm-controller keeps no inventory: what it installs goes to the release's target namespace, and nowhere else.
        const target = typeof hr.spec?.targetNamespace === 'string' && hr.spec.targetNamespace !== '' ? hr.spec.targetNamespace : hrNamespace;
        if (object.namespace !== target)
          return notVerified(
            { tool: 'flux', kind: 'HelmRelease', namespace: hrNamespace, name: hrName },
            `HelmRelease ${hrNamespace}/${hrName} installs into namespace ${target}, not ${object.namespace} where ${describeObject(object)} is`,
          );
        return this.#helmReleaseOwner(hr, hrNamespace, hrName, depth);
      }
    }
    return undefined;
  }

  /**
   * A HelmRelease's chart in Git: the chart directory is what to edit (its values). A chart from a
   * Helm or OCI repository: the HelmRelease itself is in Git, applied by a Kustomization (or an
   * Argo CD Application), and its values or post-renderers are what to edit.
   */
  async #helmReleaseOwner(hr: Obj, namespace: string, name: string, depth: number): Promise<GitOpsOwner> {
    const owner = { tool: 'flux', kind: 'HelmRelease', namespace, name } as const;
    const chartSpec = ((hr.spec?.chart as Obj | undefined)?.spec ?? {}) as Record<string, unknown>;
    const chartRef = hr.spec?.chartRef as SourceRef;
    const sourceRef = (chartRef ?? chartSpec.sourceRef) as SourceRef;
    const chart = typeof chartSpec.chart === 'string' ? chartSpec.chart : undefined;
    const self = `HelmRelease ${namespace}/${name} (chart ${chart ? `${chart} ` : ''}from ${sourceRef?.kind ?? '?'} ${sourceRef?.namespace ?? namespace}/${sourceRef?.name ?? '?'})`;
    if (sourceRef?.kind === 'GitRepository') {
      // The release itself must be one its applier lists (verified one level up), and its chart's
      // repository in its own namespace or its applier's: else a tenant's release could name another team's.
      const gitApplier =
        depth < MAX_CHAIN ? await this.ownerOf({ group: FLUX_HELM, kind: 'HelmRelease', namespace, name, metadata: hr.metadata ?? {} }, depth + 1) : undefined;
      if (!gitApplier || gitApplier.notVerified)
        return notVerified(
          owner,
          gitApplier?.notVerified ??
            `HelmRelease ${namespace}/${name} takes its chart from Git but was not applied by a Kustomization or Application that lists it`,
        );
      const sourceNamespace = sourceRef.namespace ?? namespace;
      if (sourceNamespace !== namespace && sourceNamespace !== gitApplier.namespace)
        return notVerified(owner, `HelmRelease ${namespace}/${name} takes its chart from namespace ${sourceNamespace}, neither its own nor its applier's`);
      const source = await this.#fluxGitSource(sourceRef, namespace);
      if ('unsupported' in source)
        return { ...owner, sources: [], chain: [self], unsupported: `HelmRelease ${namespace}/${name}: its chart's ${source.unsupported}` };
      return {
        ...owner,
        sources: [{ ...source.repo, path: chart === undefined ? undefined : normalisePath(chart), ...(chart ? { chart } : {}) }],
        chain: [self],
      };
    }
    const applier =
      depth < MAX_CHAIN ? await this.ownerOf({ group: FLUX_HELM, kind: 'HelmRelease', namespace, name, metadata: hr.metadata ?? {} }, depth + 1) : undefined;
    if (!applier) {
      return {
        ...owner,
        sources: [],
        chain: [self],
        unsupported: `HelmRelease ${namespace}/${name} takes its chart from a ${sourceRef?.kind ?? 'source'} and was not applied from Git (it has no Flux Kustomization labels and no Argo CD tracking), so no file in Git decides its values`,
      };
    }
    const chain = [self, ...(applier.chain ?? [])];
    const refused = refusedThrough(owner, chain, applier, `HelmRelease ${namespace}/${name}`);
    if (refused) return refused;
    const targetNamespace = await this.#targetNamespace(applier);
    const location = await this.#chartLocation(hr, sourceRef, chart, namespace, name);
    return {
      ...owner,
      sources: applier.sources,
      chain,
      declares: { kind: 'HelmRelease', namespace, name, ...(targetNamespace ? { targetNamespace } : {}), ...(location ? { chart: location } : {}) },
    };
  }

  /** Where a HelmRelease's chart is served: a HelmRepository (HTTP or OCI) or an OCIRepository. */
  async #chartLocation(hr: Obj, sourceRef: SourceRef, chart: string | undefined, namespace: string, name: string): Promise<ChartLocation | undefined> {
    if (!sourceRef?.name) return undefined;
    const sourceNamespace = sourceRef.namespace ?? namespace;
    const status = (hr as { status?: { history?: Array<{ chartVersion?: unknown }>; lastAttemptedRevision?: unknown } }).status;
    const deployed = [status?.history?.[0]?.chartVersion, status?.lastAttemptedRevision].find((v): v is string => typeof v === 'string' && v !== '');
    const chartSpec = ((hr.spec?.chart as Obj | undefined)?.spec ?? {}) as Record<string, unknown>;
    const releaseName =
      typeof hr.spec?.releaseName === 'string'
        ? hr.spec.releaseName
        : typeof hr.spec?.targetNamespace === 'string'
          ? `${hr.spec.targetNamespace}-${name}`
          : name;
    const common = { releaseName, ...(deployed ? { version: deployed.split('@')[0]! } : {}) };
    if (sourceRef.kind === 'HelmRepository' && chart) {
      const repo = await this.#get('source.toolkit.fluxcd.io', 'v1', sourceNamespace, 'helmrepositories', sourceRef.name);
      const url = repo?.spec?.url;
      if (typeof url !== 'string') return undefined;
      const asked = typeof chartSpec.version === 'string' && chartSpec.version !== '*' ? { version: chartSpec.version } : {};
      return { repoURL: url.replace(/\/+$/, ''), name: chart, ...asked, ...common, ...(repo?.spec?.insecure === true ? { insecure: true } : {}) };
    }
    if (sourceRef.kind === 'OCIRepository') {
      const repo =
        (await this.#get('source.toolkit.fluxcd.io', 'v1', sourceNamespace, 'ocirepositories', sourceRef.name)) ??
        (await this.#get('source.toolkit.fluxcd.io', 'v1beta2', sourceNamespace, 'ocirepositories', sourceRef.name));
      const url = repo?.spec?.url;
      if (typeof url !== 'string' || !url.startsWith('oci://')) return undefined;
      const ref = (repo?.spec?.ref ?? {}) as Record<string, unknown>;
      const trimmed = url.replace(/\/+$/, '');
      const slash = trimmed.lastIndexOf('/');
      const asked = [ref.tag, ref.semver].find((v): v is string => typeof v === 'string');
      return {
        repoURL: trimmed.slice(0, slash),
        name: trimmed.slice(slash + 1),
        ...(asked ? { version: asked } : {}),
        ...common,
        ...(repo?.spec?.insecure === true ? { insecure: true } : {}),
      };
    }
    return undefined;
  }

  /**
   * An Application's owner. Its Git sources (a path in a repository) hold the workload's manifests.
   * A single source that is a chart from a chart repository holds nothing we can edit: the
   * Application itself is what decides the chart's values, so the file to edit is the one that
   * declares it, found through the Application's own marks (its parent in an app of apps).
   */
  async #applicationOwner(app: Obj, namespace: string, name: string, depth: number): Promise<GitOpsOwner> {
    const sources = argoSources(app);
    const git = sources.filter((s) => s.chart === undefined);
    const owner = { tool: 'argocd', kind: 'Application', namespace, name } as const;
    const describe = sources.map((s) => (s.chart ? `chart ${s.chart} from ${s.repoURL}` : `${s.repoURL}, path ${s.path ?? '/'}`)).join('; ');
    const self = `Application ${namespace}/${name} (${describe || 'no source'})`;
    const valuesRef = this.#valuesReference(app, namespace, name);
    if (valuesRef) return { ...owner, chain: [self], ...valuesRef };
    if (git.length > 0) return { ...owner, sources, chain: [self] };
    const unsupported = (why: string): GitOpsOwner => ({ ...owner, sources, chain: [self], unsupported: why });
    if (sources.length === 0) return unsupported(`Application ${namespace}/${name} has no source`);
    const generator = app.metadata?.ownerReferences?.find((r) => r.kind === 'ApplicationSet');
    if (generator)
      return unsupported(
        `Application ${namespace}/${name} deploys ${describe} and is generated by ApplicationSet ${generator.name ?? '?'}; the image must be set in the ApplicationSet's template`,
      );
    if (sources.length > 1) return unsupported(`Application ${namespace}/${name} deploys ${describe} from several sources; only one chart source is followed`);
    const parent =
      depth < MAX_CHAIN
        ? await this.ownerOf({ group: 'argoproj.io', kind: 'Application', namespace, name, metadata: app.metadata ?? {} }, depth + 1)
        : undefined;
    if (!parent)
      return unsupported(
        `Application ${namespace}/${name} deploys ${describe} and is not declared in Git by a parent Application (no Argo CD tracking on it), so no file in Git decides its values`,
      );
    const chain = [self, ...(parent.chain ?? [])];
    const refused = refusedThrough(owner, chain, parent, `Application ${namespace}/${name}`);
    if (refused) return refused;
    const chartSource = (app.spec?.source ?? (app.spec?.sources as unknown[] | undefined)?.[0]) as Record<string, unknown>;
    return { ...owner, sources: parent.sources, chain, declares: declaredApplication(app, namespace, name, chartSource) };
  }

  /**
   * A multi-source Application whose chart takes its values from files in a Git source
   * (`valueFiles: [$values/…]` and a source with `ref: values`): those files decide the chart's
   * values, so the change edits the last of them (the one that wins), in that source's repository.
   */
  #valuesReference(app: Obj, namespace: string, name: string): Pick<GitOpsOwner, 'sources' | 'declares' | 'unsupported'> | undefined {
    const raw = Array.isArray(app.spec?.sources) ? (app.spec.sources as Array<Record<string, unknown>>) : [];
    const charts = raw.filter((s) => typeof s.chart === 'string' && typeof s.repoURL === 'string');
    const refs = new Map(raw.filter((s) => typeof s.ref === 'string' && typeof s.repoURL === 'string').map((s) => [s.ref as string, s]));
    if (charts.length !== 1 || refs.size === 0) return undefined;
    const chartSource = charts[0]!;
    const helm = (chartSource.helm ?? {}) as Record<string, unknown>;
    const valueFiles = Array.isArray(helm.valueFiles) ? helm.valueFiles.filter((f): f is string => typeof f === 'string') : [];
    const referenced = valueFiles.filter((f) => f.startsWith('$'));
    if (referenced.length === 0) return undefined;
    const where = `Application ${namespace}/${name}`;
    const unsupported = (why: string) => ({ sources: [], unsupported: `${where}: ${why}` });
    const split = referenced.map((f) => ({ ref: f.slice(1, f.indexOf('/') < 0 ? undefined : f.indexOf('/')), path: f.slice(f.indexOf('/') + 1) }));
    if (referenced.length !== valueFiles.length)
      return unsupported('its chart reads value files from the chart itself beside $-referenced ones; those are not read yet');
    if (new Set(split.map((f) => f.ref)).size !== 1 || !refs.has(split[0]!.ref))
      return unsupported(`its value files ${referenced.join(', ')} do not all come from one ref source`);
    if (helm.values !== undefined || helm.valuesObject !== undefined || (Array.isArray(helm.parameters) && helm.parameters.length > 0))
      return unsupported('it sets values inline beside its $-referenced value files; that mix is not followed yet');
    const refSource = refs.get(split[0]!.ref)!;
    return {
      sources: [
        { repoURL: String(refSource.repoURL), path: undefined, revision: typeof refSource.targetRevision === 'string' ? refSource.targetRevision : undefined },
      ],
      declares: { ...declaredApplication(app, namespace, name, chartSource), valueFiles: split.map((f) => f.path) },
    };
  }

  /** The namespace an applier forces on what it applies (Flux targetNamespace, Argo CD destination). */
  async #targetNamespace(applier: GitOpsOwner): Promise<string | undefined> {
    if (applier.tool !== 'flux' || applier.kind !== 'Kustomization') return undefined;
    const ks = await this.#get(FLUX_KUSTOMIZE, 'v1', applier.namespace, 'kustomizations', applier.name);
    const target = ks?.spec?.targetNamespace;
    return typeof target === 'string' && target !== '' ? target : undefined;
  }

  async #fluxGitSource(
    sourceRef: SourceRef,
    defaultNamespace: string,
  ): Promise<{ repo: Omit<GitSource, 'path'>; describe: string } | { unsupported: string; describe: string }> {
    const namespace = sourceRef?.namespace ?? defaultNamespace;
    const describe = `${sourceRef?.kind ?? 'no source'} ${namespace}/${sourceRef?.name ?? '?'}`;
    if (sourceRef?.kind !== 'GitRepository' || !sourceRef.name)
      return { describe, unsupported: `takes its manifests from ${describe}, not from a Git repository` };
    const repo = await this.#get('source.toolkit.fluxcd.io', 'v1', namespace, 'gitrepositories', sourceRef.name);
    const url = repo?.spec?.url;
    if (typeof url !== 'string') return { describe, unsupported: `names ${describe}, which does not exist (or has no url)` };
    const gitRef = (repo?.spec?.ref ?? {}) as Record<string, unknown>;
    const revision = [gitRef.branch, gitRef.tag, gitRef.semver, gitRef.commit, gitRef.name].find((v): v is string => typeof v === 'string');
    return { describe, repo: { repoURL: url, revision } };
  }

  /** A custom object (from `api`, by default this cluster's), or undefined when it (or its CRD) does not exist. */
  #get(group: string, version: string, namespace: string, plural: string, name: string, api = this.#api): Promise<Obj | undefined> {
    return this.#cache.get(`${group}/${version}/${plural}/${namespace}/${name}`, () =>
      api.getNamespacedCustomObject({ group, version, namespace, plural, name }).then(
        (o) => o as Obj,
        (error: unknown) => {
          if (error instanceof ApiException && error.code === 404) return undefined;
          throw error;
        },
      ),
    );
  }
}

/** An owner the object's marks claim but that does not list it: trusted for nothing. */
function notVerified(owner: Pick<GitOpsOwner, 'tool' | 'kind' | 'namespace' | 'name'>, why: string): GitOpsOwner {
  const reason = `the owner its marks name is not verified: ${why}`;
  return { ...owner, sources: [], chain: [`${owner.kind} ${owner.namespace}/${owner.name} (claimed, not verified)`], unsupported: reason, notVerified: why };
}

function describeObject(o: Pick<OwnedObject, 'group' | 'kind' | 'namespace' | 'name'>): string {
  return `${o.group ? `${o.group}/` : ''}${o.kind} ${o.namespace}/${o.name}`;
}

/**
 * Why an Application does not deploy to the cluster `here` names, or undefined. As Argo CD reads a
 * destination: its `name` is a cluster's name, its `server` a cluster's API server URL, so each is
 * compared with the names, or the URLs, among `here` alone (an Application with `server: east` deploys
 * nowhere, whatever a cluster named east). The refusal names neither the cluster the Application does
 * deploy to nor this one's names: it reaches the workload's Events, which the tenant who wrote the
 * claim reads.
 */
export function destinationRefused(app: Obj, namespace: string, name: string, here: readonly string[]): string | undefined {
  const destination = (app.spec?.destination ?? {}) as Record<string, unknown>;
  const named = (['name', 'server'] as const).filter((field) => typeof destination[field] === 'string' && destination[field] !== '');
  // As Argo CD: exactly one of the two (it refuses an Application with both or neither).
  if (named.length !== 1) return `Application ${namespace}/${name} names ${named.length === 0 ? 'no' : 'both a name and a server for its'} destination cluster`;
  const field = named[0]!;
  const its = destination[field] as string;
  const normal = (v: string) => v.replace(/\/+$/, '');
  const isServer = (v: string) => /^https?:\/\//i.test(v);
  if (here.some((h) => isServer(h) === (field === 'server') && normal(h) === normal(its))) return undefined;
  return `Application ${namespace}/${name} deploys to another cluster than this one (its destination ${field} is not one of this cluster's: see --argocd-destination, or the cluster Secret)`;
}

/**
 * Why an Application's claim on an object is not to be trusted, or undefined: a tracking-id must
 * name this very object (as Argo CD itself checks), and the Application must list it in
 * `status.resources` (the instance label alone is never enough).
 */
function argoClaimRefused(object: OwnedObject, metadata: Metadata, app: Obj, namespace: string, name: string): string | undefined {
  const tracking = metadata.annotations?.[ARGOCD_TRACKING_ANNOTATION];
  if (tracking !== undefined) {
    const named = trackedObject(tracking);
    if (!named || named.group !== object.group || named.kind !== object.kind || named.namespace !== object.namespace || named.name !== object.name)
      return `its tracking-id names ${named ? describeObject(named) : 'something unreadable'}, not ${describeObject(object)}`;
  }
  const resources = (app as { status?: { resources?: unknown } }).status?.resources;
  const listed =
    Array.isArray(resources) &&
    resources.some((r: Record<string, unknown> | null) => {
      if (!r || typeof r !== 'object') return false;
      return (r.group ?? '') === object.group && r.kind === object.kind && (r.namespace ?? '') === object.namespace && r.name === object.name;
    });
  return listed ? undefined : `Application ${namespace}/${name} does not list ${describeObject(object)} in its status.resources`;
}

/** The object a tracking-id names: `<app>:<group>/<kind>:<namespace>/<name>` (group empty for core kinds). */
export function trackedObject(tracking: string): Pick<OwnedObject, 'group' | 'kind' | 'namespace' | 'name'> | undefined {
  const match = /^[^:]+:([^/:]*)\/([^:]+):([^/]*)\/(.+)$/.exec(tracking);
  if (!match) return undefined;
  return { group: match[1]!, kind: match[2]!, namespace: match[3]!, name: match[4]! };
}

/** A chart Application as the object to edit: where its chart is served, its release name and destination. */
function declaredApplication(app: Obj, namespace: string, name: string, chartSource: Record<string, unknown>): DeclaredObject {
  const helm = (chartSource.helm ?? {}) as Record<string, unknown>;
  const destination = (app.spec?.destination ?? {}) as Record<string, unknown>;
  // Argo CD names an OCI chart repository without a scheme (`registry/path`), or with oci://.
  const repoURL = String(chartSource.repoURL);
  const chart: ChartLocation = {
    repoURL: (/^[a-z]+:\/\//.test(repoURL) ? repoURL : `oci://${repoURL}`).replace(/\/+$/, ''),
    name: String(chartSource.chart),
    ...(typeof chartSource.targetRevision === 'string' ? { version: chartSource.targetRevision } : {}),
    releaseName: typeof helm.releaseName === 'string' && helm.releaseName !== '' ? helm.releaseName : name,
  };
  const targetNamespace = typeof destination.namespace === 'string' && destination.namespace !== '' ? destination.namespace : undefined;
  return { kind: 'Application', namespace, name, chart, ...(targetNamespace ? { targetNamespace } : {}) };
}

/**
 * The Argo CD Application that tracks an object: the tracking-id annotation's `<app>` part (before
 * the first `:`), else the instance label; `<namespace>_<name>` for an Application outside Argo CD's
 * own namespace. Undefined when neither mark is there.
 */
export function trackingApplication(metadata: Metadata, argocdNamespace: string): { namespace: string; name: string } | undefined {
  const tracking = metadata.annotations?.[ARGOCD_TRACKING_ANNOTATION];
  const app = tracking !== undefined ? tracking.split(':')[0] : metadata.labels?.[ARGOCD_INSTANCE_LABEL];
  if (!app) return undefined;
  const separator = app.indexOf('_');
  return separator < 0 ? { namespace: argocdNamespace, name: app } : { namespace: app.slice(0, separator), name: app.slice(separator + 1) };
}

/** An Application's sources (`spec.sources`, else `spec.source`), each with its path normalised; a source without repoURL is skipped. */
export function argoSources(app: Obj): GitSource[] {
  const spec = app.spec ?? {};
  const list = Array.isArray(spec.sources) ? (spec.sources as Obj[]) : spec.source ? [spec.source as Obj] : [];
  return list.flatMap((s) => {
    const source = s as Record<string, unknown>;
    if (typeof source.repoURL !== 'string') return [];
    return [
      {
        repoURL: source.repoURL,
        path: typeof source.path === 'string' ? normalisePath(source.path) : undefined,
        revision: typeof source.targetRevision === 'string' ? source.targetRevision : undefined,
        ...(typeof source.chart === 'string' ? { chart: source.chart } : {}),
      },
    ];
  });
}

/** `./apps/web/` → `apps/web`; `.` or `./` → undefined (the repository root). */
function normalisePath(path: string): string | undefined {
  const trimmed = path.replace(/^\.\/?/, '').replace(/\/+$/, '');
  return trimmed === '' ? undefined : trimmed;
}
