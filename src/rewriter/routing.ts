/**
 * Where each pending record goes, decided from the record and the settings alone (no Git, no
 * cluster): patched through the API, changed in a repository (grouped so each repository and base
 * branch gets one change), closed as not proposable, or left pending for want of a repository.
 */
import { WORKLOAD_KINDS, type WorkloadKind, type WorkloadRef } from '../cluster/workloads.ts';
import type { HandoffRecord } from '../handoff/schema.ts';
import { groupOf, type GroupBy } from './grouping.ts';

/** `never`: Git only; `unmanaged`: patch workloads no GitOps tool manages; `always`: patch every workload too. */
export type DirectPatchMode = 'never' | 'unmanaged' | 'always';

/** A repository, the branch a change builds on, and the path under it that holds the workload. */
export interface Target {
  readonly repoURL: string;
  readonly base: string;
  readonly path: string | undefined;
}

export interface RoutingSettings {
  readonly directPatch: DirectPatchMode;
  /** For workloads no GitOps tool manages: the repository, path and branch to search. */
  readonly unmanaged?: { readonly repoURL: string; readonly path?: string; readonly branch: string };
}

export interface Route {
  /**
   * `only`: the direct patch is the whole change (an unmanaged workload); `also`: a managed workload
   * is patched and still gets its Git change, so its tool does not revert it (`--direct-patch=always`).
   */
  readonly patch: 'none' | 'only' | 'also';
  readonly git:
    | { readonly kind: 'change'; readonly target: Target }
    /** No file in Git decides the images: said once and closed, never handed to the unmanaged fallback. */
    | { readonly kind: 'not-proposed'; readonly reason: string }
    /** No GitOps owner and no unmanaged repository: left pending. */
    | { readonly kind: 'no-repository' };
}

export function routeRecord(record: HandoffRecord, settings: RoutingSettings): Route {
  const managed = record.owner !== undefined;
  const fallback = settings.directPatch === 'always' || (settings.directPatch === 'unmanaged' && !managed) ? (managed ? 'also' : 'only') : 'none';
  // What a controller owns (its pod template set from another object) or is not a workload is never patched: the controller reverts it.
  const patch = patchableWorkload(record) ? fallback : 'none';
  if (record.controller)
    return {
      patch,
      git: {
        kind: 'not-proposed',
        reason: `it is controlled by ${record.controller.kind} ${record.workload.namespace}/${record.controller.name}, whose controller sets its images: move them where that ${record.controller.kind} is declared`,
      },
    };
  const unsupported = unsupportedOwner(record);
  if (unsupported !== undefined) return { patch, git: { kind: 'not-proposed', reason: unsupported } };
  const target = targetOf(record, settings.unmanaged);
  return { patch, git: target ? { kind: 'change', target } : { kind: 'no-repository' } };
}

/** The workload a direct patch may change: one of the kinds the copier watches, with no controller of its own. */
export function patchableWorkload(record: HandoffRecord): WorkloadRef | undefined {
  const kind = record.workload.kind;
  return record.controller === undefined && (WORKLOAD_KINDS as readonly string[]).includes(kind)
    ? { ...record.workload, kind: kind as WorkloadKind }
    : undefined;
}

/** Why no file in Git can move a managed workload (its chain ends outside Git), or undefined. */
function unsupportedOwner(record: HandoffRecord): string | undefined {
  const owner = record.owner;
  if (!owner) return undefined;
  if (owner.unsupported) return owner.unsupported;
  if (owner.sources.length === 0) return `${owner.kind} ${owner.namespace}/${owner.name} has no Git source`;
  // A Flux HelmRelease's chart is a path in Git; an Argo CD chart source is a chart repository, not a Git remote.
  if (owner.declares === undefined && owner.tool === 'argocd' && owner.sources.every((s) => s.chart !== undefined))
    return `Application ${owner.namespace}/${owner.name} deploys a chart from a chart repository, and no file in Git that declares it was found`;
  return undefined;
}

/** The owner's Git source (its revision, `main` for HEAD), or for an unmanaged workload the configured repository. */
function targetOf(record: HandoffRecord, unmanaged: RoutingSettings['unmanaged']): Target | undefined {
  const source = record.owner?.sources.find((s) => s.chart === undefined || record.owner?.tool === 'flux');
  if (source) return { repoURL: source.repoURL, base: source.revision && source.revision !== 'HEAD' ? source.revision : 'main', path: source.path };
  if (record.owner) return undefined;
  return unmanaged ? { repoURL: unmanaged.repoURL, base: unmanaged.branch, path: unmanaged.path } : undefined;
}

/**
 * One group per repository, base branch and `--group-by` value (none by repository), in the order
 * first seen; each record keeps its own path.
 */
export function groupByTarget(
  routed: ReadonlyArray<{ record: HandoffRecord; target: Target }>,
  groupBy: GroupBy = 'repository',
): Array<{ target: Target; group: string; records: Array<{ record: HandoffRecord; path: string | undefined }> }> {
  const groups = new Map<string, { target: Target; group: string; records: Array<{ record: HandoffRecord; path: string | undefined }> }>();
  for (const { record, target } of routed) {
    const value = groupOf(record, groupBy);
    const key = `${target.repoURL}#${target.base}#${value}`;
    const group = groups.get(key) ?? { target, group: value, records: [] };
    group.records.push({ record, path: target.path });
    groups.set(key, group);
  }
  return [...groups.values()];
}
