/**
 * Which records share one change (one branch, one pull request) and what that change is called:
 * `--group-by repository|application|namespace|image` (default repository: one change per
 * repository and base branch), `--branch-template` and `--title-template`. Templates are checked at
 * start-up: only the variables below, and a branch template that keeps distinct groups apart.
 *
 * Variables: `{{base}}` the base branch; `{{hash}}` 8 hex characters of the repository URL (and the
 * group, where grouped otherwise than by repository; and the base, where the template leaves it out);
 * `{{group}}` the group's value (the owner as `kind/namespace/name`, the namespace, the images;
 * `all` by repository); `{{owner}}` the GitOps owner's name with `--group-by application`, else the
 * repository's name; `{{cluster}}` the cluster the records come from; and in titles only,
 * `{{count}}` the workloads the pull request moves.
 */
import { createHash } from 'node:crypto';
import { ConfigError } from '../errors.ts';
import type { HandoffRecord } from '../handoff/schema.ts';
import { parseReference } from '../image/reference.ts';
import { assertSafeBranch } from './git/workspace.ts';

export const GROUP_BY = ['repository', 'application', 'namespace', 'image'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

export const DEFAULT_BRANCH_TEMPLATE = 'image-clone/{{base}}-{{hash}}';

const BRANCH_VARIABLES = ['base', 'hash', 'group', 'owner', 'cluster'] as const;
const TITLE_VARIABLES = [...BRANCH_VARIABLES, 'count'] as const;

export interface Naming {
  readonly groupBy: GroupBy;
  readonly branchTemplate: string;
  /** Undefined: "Move N workloads to backed-up images". */
  readonly titleTemplate?: string;
}

/** What the change of one group is called: the values its templates are filled with. */
export interface GroupNames {
  readonly base: string;
  readonly hash: string;
  readonly group: string;
  readonly owner: string;
  readonly cluster: string;
}

/** The flags as given. */
export interface NamingSettings {
  readonly groupBy?: string;
  readonly branchTemplate?: string;
  readonly titleTemplate?: string;
  readonly branchPrefix?: string;
}

/** The settings, checked: an unknown variable, or a branch template that would put two groups on one branch, is refused. */
export function parseNaming(settings: NamingSettings): Naming {
  const groupBy = (settings.groupBy ?? 'repository') as GroupBy;
  if (!GROUP_BY.includes(groupBy)) throw new ConfigError(`--group-by ${JSON.stringify(settings.groupBy)}: expected one of ${GROUP_BY.join(', ')}`);
  if (settings.branchTemplate !== undefined && settings.branchPrefix !== undefined)
    throw new ConfigError('--branch-template and --branch-prefix both given: the template names the whole branch (put the prefix in it)');
  const branchTemplate =
    settings.branchTemplate ?? (settings.branchPrefix !== undefined ? `${settings.branchPrefix}{{base}}-{{hash}}` : DEFAULT_BRANCH_TEMPLATE);
  checkVariables('--branch-template', branchTemplate, BRANCH_VARIABLES);
  // The hash is what keeps two repositories' or two groups' changes apart on a shared branch namespace.
  if (!branchTemplate.includes('{{hash}}'))
    throw new ConfigError(`--branch-template ${JSON.stringify(branchTemplate)}: it must contain {{hash}}, which keeps distinct changes on distinct branches`);
  try {
    assertSafeBranch(fill(branchTemplate, { base: 'main', hash: '0123abcd', group: 'all', owner: 'apps', cluster: 'c1' }));
  } catch {
    throw new ConfigError(
      `--branch-template ${JSON.stringify(branchTemplate)}: not a branch name git takes (letters, digits, '.', '_', '/', '-'; no '..', no trailing '/' or '.lock')`,
    );
  }
  if (settings.titleTemplate !== undefined) {
    if (settings.titleTemplate.trim() === '') throw new ConfigError('--title-template is empty');
    checkVariables('--title-template', settings.titleTemplate, TITLE_VARIABLES);
  }
  return { groupBy, branchTemplate, ...(settings.titleTemplate !== undefined ? { titleTemplate: settings.titleTemplate } : {}) };
}

function checkVariables(flag: string, template: string, known: readonly string[]): void {
  for (const [, name] of template.matchAll(/\{\{\s*([^}]*?)\s*\}\}/g))
    if (!known.includes(name!))
      throw new ConfigError(`${flag} ${JSON.stringify(template)}: unknown variable {{${name}}} (known: ${known.map((k) => `{{${k}}}`).join(', ')})`);
}

/** `template` with its variables filled. */
export function fill(template: string, values: Readonly<Record<string, string>>): string {
  return template.replace(/\{\{\s*([a-z]+)\s*\}\}/g, (_, name: string) => values[name] ?? '');
}

/** The group of a record under `groupBy`: '' by repository (the repository and base alone decide). */
export function groupOf(record: HandoffRecord, groupBy: GroupBy): string {
  switch (groupBy) {
    case 'repository':
      return '';
    case 'application':
      // `/` is in no Kubernetes name: kind, namespace and name read back one way only.
      return record.owner ? `${record.owner.kind}/${record.owner.namespace}/${record.owner.name}`.toLowerCase() : 'unmanaged';
    case 'namespace':
      return record.workload.namespace;
    case 'image':
      // A workload whose containers run several images is one change: grouped under all of them.
      return [...new Set(record.images.map((i) => repositoryOf(i.source)))].sort().join('+');
  }
}

function repositoryOf(image: string): string {
  try {
    const ref = parseReference(image);
    return `${ref.registry}/${ref.repository}`;
  } catch {
    return image;
  }
}

/**
 * The names of one group's change in `repoURL` on `base`. Each depends on the group alone, never on
 * which records it holds this pass (a name that changed would orphan the open pull request).
 */
export function groupNames(naming: Naming, repoURL: string, base: string, group: string, records: readonly HandoffRecord[]): GroupNames {
  // By repository with the base in the template, the hash is the repository URL's alone: the branches of earlier versions.
  const hashed = `${repoURL}${naming.branchTemplate.includes('{{base}}') ? '' : `#${base}`}${group ? `\n${group}` : ''}`;
  // A group's value is a tenant's to choose (a namespace, an owner, an image): 64 bits, not 32, stand between it and another's branch.
  const hash = createHash('sha256')
    .update(hashed)
    .digest('hex')
    .slice(0, group ? 16 : 8);
  // Records from before clusters were named say nothing; the rest name this installation's one cluster.
  const clusters = new Set(records.flatMap((r) => (r.cluster ? [r.cluster.name] : [])));
  const repository =
    repoURL
      .replace(/\.git$/, '')
      .split(/[/:]/)
      .filter(Boolean)
      .pop() ?? 'repository';
  return {
    base,
    hash,
    group: group || 'all',
    owner: naming.groupBy === 'application' && group !== 'unmanaged' ? group.split('/').slice(2).join('/') : repository,
    cluster: clusters.size === 1 ? [...clusters][0]! : clusters.size === 0 ? 'unnamed' : 'several',
  };
}

/** Our branch for a group: the template filled, each value made safe for a ref name first. */
export function branchFor(naming: Naming, names: GroupNames): string {
  const safe = Object.fromEntries(Object.entries(names).map(([k, v]) => [k, k === 'base' ? v : refSafe(v)]));
  const branch = fill(naming.branchTemplate, safe);
  assertSafeBranch(branch);
  return branch;
}

/** A value as a ref component: characters git refuses as '-', no '..', at most 60 characters. */
function refSafe(value: string): string {
  return (
    value
      .replace(/[^A-Za-z0-9._-]+/g, '-')
      .replace(/\.{2,}/g, '.')
      .replace(/^[.-]+|[.-]+$/g, '')
      .slice(0, 60) || 'x'
  );
}

/** The title of a group's pull request from the template, or undefined for the default. */
export function titleFor(naming: Naming, names: GroupNames, workloads: number): string | undefined {
  if (naming.titleTemplate === undefined) return undefined;
  return fill(naming.titleTemplate, { ...names, count: String(workloads) })
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 250);
}
