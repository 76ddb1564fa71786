/**
 * The handoff record's schema, checked when a record is read: the copier and the rewriter may run
 * different versions of the image during a rollout, and a volume may hold records written long ago.
 * A record is taken whole or refused with the field that is wrong, never half-read. Version 1 is
 * the only version so far; `pull` and the owner's `declares`, `chain` and `unsupported` were added to
 * it as optional fields (absent in older records), and so was `controller`.
 */
import type { WorkloadRef } from '../cluster/workloads.ts';
import type { RecordedPull } from '../image/backup-pull.ts';

export const RECORD_VERSION = 1;

export interface HandoffImage {
  readonly container: string;
  readonly init: boolean;
  /** The image as the workload names it today. */
  readonly source: string;
  /** The backup reference, with tag, without digest. */
  readonly backup: string;
  readonly digest: string;
  readonly platforms: readonly string[];
  readonly sizeBytes: number;
  /**
   * The signature that verified at the backup, where --verify-signature asks for one: the key file (or
   * the keyless identity and issuer asked for), how cosign stored it, and keyless, who the certificate names.
   */
  readonly signature?: { readonly key: string; readonly scheme: string; readonly signer?: string };
}

/** The image a container runs after the change: the backup, pinned by digest. */
export const pinnedBackup = (image: Pick<HandoffImage, 'backup' | 'digest'>): string => `${image.backup}@${image.digest}`;

/**
 * The object a record moves: a workload the copier watches, an operator's resource whose image
 * fields set a workload's images (cluster/operator-images.ts), or (sync-repo) any kind the planner edits.
 */
export interface RecordedWorkload extends Omit<WorkloadRef, 'kind'> {
  readonly kind: string;
}

export interface HandoffRecord {
  readonly version: typeof RECORD_VERSION;
  readonly id: string;
  readonly createdAt: string;
  readonly workload: RecordedWorkload;
  /**
   * The controller that owns the workload (its controller owner reference), when no Git change of the
   * workload can move it: its controller sets its pod template, and would revert a patch at once.
   */
  readonly controller?: { readonly kind: string; readonly name: string };
  readonly images: readonly HandoffImage[];
  /** Who applies this workload from Git; undefined when unmanaged. */
  readonly owner: GitOpsOwner | undefined;
  /** How the workload's nodes will pull the backups, as the copier checked it (absent in older records). */
  readonly pull?: RecordedPull;
  /** The cluster the workload runs in (absent in older records). */
  readonly cluster?: ClusterIdentity;
}

/** A cluster's name is a DNS label: it goes into branch names, commit messages and tables as it is. */
export const CLUSTER_NAME = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A cluster: its name (--cluster-name, or its uid's first characters) and the kube-system namespace's uid. */
export interface ClusterIdentity {
  readonly name: string;
  readonly uid: string;
}

/** Who applies a workload from Git, as the copier found it (cluster/gitops.ts) and the rewriter follows it. */
export interface GitSource {
  readonly repoURL: string;
  /** Directory in the repository; undefined for the root or a chart from a Helm repository. */
  readonly path: string | undefined;
  /** Branch, tag or commit the tool follows (Argo CD targetRevision, Flux ref). */
  readonly revision: string | undefined;
  /** Helm chart name, when the source is a chart. */
  readonly chart?: string;
}

/**
 * The object in Git that decides the workload's images when the workload itself is not in Git: a
 * HelmRelease or an Argo CD Application whose chart comes from a chart repository is declared in a
 * file under its applier's path (a Kustomization's, a parent Application's), and its values (or a
 * HelmRelease's post-renderers) are what can move the images.
 */
export interface DeclaredObject {
  readonly kind: 'HelmRelease' | 'Application';
  readonly namespace: string;
  readonly name: string;
  /**
   * HelmRelease: the applier's `targetNamespace`, which overrides whatever namespace the file
   * states. Application: its destination namespace, where the chart's objects go.
   */
  readonly targetNamespace?: string;
  /** Where its chart comes from, so the edit can be proved by rendering it (absent: not known). */
  readonly chart?: ChartLocation;
  /**
   * A multi-source Application's value files in its Git source (paths in that repository, in the
   * order Helm reads them): the last one is edited, not the Application.
   */
  readonly valueFiles?: readonly string[];
}

/** A chart in a chart repository (`https://…` with an index.yaml) or an OCI registry (`oci://host/path`, the chart at path/name). */
export interface ChartLocation {
  readonly repoURL: string;
  readonly name: string;
  /** The version deployed (from the release's status), else the version or range asked for; absent: the newest. */
  readonly version?: string;
  /** An OCI registry spoken to over plain HTTP (Flux `spec.insecure`). */
  readonly insecure?: boolean;
  /** The releases's name as Helm knows it (`spec.releaseName`, else Flux's default). */
  readonly releaseName?: string;
}

export type GitOpsOwner = {
  readonly tool: 'argocd' | 'flux';
  readonly kind: 'Application' | 'Kustomization' | 'HelmRelease';
  readonly namespace: string;
  readonly name: string;
  /** Where the file to edit lives; empty when the chain ends outside Git. */
  readonly sources: readonly GitSource[];
  /** Set when the file to edit declares this object rather than the workload. */
  readonly declares?: DeclaredObject;
  /** The ownership chain, workload's owner first, for reviewers ("HelmRelease apps/redis (chart …)"). */
  readonly chain?: readonly string[];
  /** Why no file in Git can move this workload's images: the record is not proposed. */
  readonly unsupported?: string;
  /** Set when the marks name an owner that does not list the object: why (also in `unsupported`). */
  readonly notVerified?: string;
};

/** What a chart sees of the cluster it is rendered for (read by cluster/capabilities.ts in the copier). */
export interface ClusterCapabilities {
  /** `v1.34.4` (the server's gitVersion, build metadata dropped). */
  readonly kubeVersion: string;
  /** Every served `group/version` (`v1` for the core group) and `group/version/Kind`, sorted. */
  readonly apiVersions: readonly string[];
}

/** At most this many API versions are kept: far more than any real cluster serves. */
export const MAX_API_VERSIONS = 5_000;

type Check = (value: unknown, path: string) => void;

class SchemaError extends Error {
  override name = 'SchemaError';
}

const fail = (path: string, what: string): never => {
  throw new SchemaError(`${path} ${what}`);
};
const string: Check = (v, p) => void (typeof v === 'string' && v !== '' ? v : fail(p, 'is not a non-empty string'));
const anyString: Check = (v, p) => void (typeof v === 'string' ? v : fail(p, 'is not a string'));
const boolean: Check = (v, p) => void (typeof v === 'boolean' ? v : fail(p, 'is not true or false'));
const count: Check = (v, p) => void (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : fail(p, 'is not a count'));
const digest: Check = (v, p) => void (typeof v === 'string' && /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/.test(v) ? v : fail(p, 'is not a digest'));
const matching =
  (pattern: RegExp, what: string): Check =>
  (v, p) =>
    void (typeof v === 'string' && pattern.test(v) ? v : fail(p, `is not ${what}`));
const oneOf =
  (...values: string[]): Check =>
  (v, p) =>
    void (typeof v === 'string' && values.includes(v) ? v : fail(p, `is not one of ${values.join(', ')}`));
const optional =
  (check: Check): Check =>
  (v, p) =>
    void (v === undefined ? v : check(v, p));
const list =
  (check: Check, nonEmpty = false): Check =>
  (v, p) => {
    if (!Array.isArray(v)) fail(p, 'is not a list');
    if (nonEmpty && (v as unknown[]).length === 0) fail(p, 'is empty');
    for (const [i, item] of (v as unknown[]).entries()) check(item, `${p}[${i}]`);
  };
const object =
  (fields: Record<string, Check>): Check =>
  (v, p) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(p, 'is not an object');
    for (const [key, check] of Object.entries(fields)) check((v as Record<string, unknown>)[key], `${p}.${key}`);
  };
/** A union told apart by one field's value. */
const tagged =
  (tag: string, variants: Record<string, Record<string, Check>>): Check =>
  (v, p) => {
    const value = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[tag] : undefined;
    const fields = typeof value === 'string' ? variants[value] : undefined;
    if (!fields) fail(`${p}.${tag}`, `is not one of ${Object.keys(variants).join(', ')}`);
    object({ [tag]: string, ...fields })(v, p);
  };

const gitSource = object({ repoURL: string, path: optional(anyString), revision: optional(anyString), chart: optional(anyString) });
const chart = object({ repoURL: string, name: string, version: optional(string), insecure: optional(boolean), releaseName: optional(string) });
const declared = object({
  kind: oneOf('HelmRelease', 'Application'),
  namespace: string,
  name: string,
  targetNamespace: optional(string),
  chart: optional(chart),
  valueFiles: optional(list(string, true)),
});
const owner = object({
  tool: oneOf('argocd', 'flux'),
  kind: oneOf('Application', 'Kustomization', 'HelmRelease'),
  namespace: string,
  name: string,
  sources: list(gitSource),
  declares: optional(declared),
  chain: optional(list(string)),
  unsupported: optional(string),
  notVerified: optional(string),
});

const record = object({
  version: count,
  id: string,
  createdAt: string,
  // A kind the copier watches, or (sync-repo) any kind the manifest planner edits.
  workload: object({ kind: string, namespace: anyString, name: string, uid: string }),
  images: list(
    object({
      container: string,
      init: boolean,
      source: string,
      backup: string,
      digest,
      platforms: list(string),
      sizeBytes: count,
      signature: optional(object({ key: string, scheme: string, signer: optional(string) })),
    }),
    true,
  ),
  owner: optional(owner),
  controller: optional(object({ kind: string, name: string })),
  pull: optional(tagged('via', { anonymous: {}, node: {}, secret: { secret: string, listedBy: oneOf('pod', 'service-account', 'none') } })),
  cluster: optional(object({ name: matching(CLUSTER_NAME, 'a DNS label'), uid: string })),
});

/** The record in `text`, named `id`; throws with the reason when it is not one this version reads. */
export function parseRecord(text: string, id: string): HandoffRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`handoff record ${id} is not JSON (${(error as Error).message})`);
  }
  const version = (value as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > RECORD_VERSION) {
    throw new Error(
      `handoff record ${id} has version ${version}, written by a newer copier; this rewriter reads version ${RECORD_VERSION} (upgrade both containers to the same image)`,
    );
  }
  try {
    record(value, 'record');
  } catch (error) {
    if (error instanceof SchemaError) throw new Error(`handoff record ${id} is malformed: ${error.message}`);
    throw error;
  }
  const parsed = value as HandoffRecord;
  if (parsed.version !== RECORD_VERSION) throw new Error(`handoff record ${id} has version ${parsed.version}; this rewriter reads version ${RECORD_VERSION}`);
  if (parsed.id !== id) throw new Error(`handoff record ${id} names itself ${parsed.id}`);
  return parsed;
}

const capabilities = object({
  kubeVersion: (v, p) => void (typeof v === 'string' && /^v\d+\.\d+\.\d+$/.test(v) ? v : fail(p, 'is not a Kubernetes version (vX.Y.Z)')),
  apiVersions: list((v, p) => void (typeof v === 'string' && /^[\w.-]+(\/[\w.-]+){0,2}$/.test(v) && v.length <= 253 ? v : fail(p, 'is not an API version'))),
});

/** What the copier saw of the cluster (`cluster-capabilities` in the handoff directory); throws with the field that is wrong. */
export function parseCapabilities(text: string): ClusterCapabilities {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`cluster-capabilities is not JSON (${(error as Error).message})`);
  }
  try {
    capabilities(value, 'cluster-capabilities');
  } catch (error) {
    if (error instanceof SchemaError) throw new Error(`cluster-capabilities is malformed: ${error.message}`);
    throw error;
  }
  const parsed = value as ClusterCapabilities;
  if (parsed.apiVersions.length > MAX_API_VERSIONS) throw new Error(`cluster-capabilities lists more than ${MAX_API_VERSIONS} API versions`);
  return parsed;
}
