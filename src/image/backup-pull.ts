/**
 * How workloads' nodes pull images from the backup registry, which is almost always private. A
 * change that moves a workload onto an image its kubelet cannot pull is an outage at the next
 * restart, so the operator says how pulls work and the controller proves what it can before it
 * proposes anything:
 * - `anonymous`: the backup registry serves pulls without credentials; the copier proves it for
 *   each backup with an anonymous manifest HEAD (the default: nothing unpullable is proposed).
 * - `node`: the nodes hold credentials (a kubelet credential provider, a node's config.json); taken
 *   on the operator's word and said so in the pull request.
 * Pure: parsing and the words a reviewer reads.
 */
import { ConfigError } from '../errors.ts';

export type BackupPull = { readonly via: 'anonymous' } | { readonly via: 'node' };

export const DEFAULT_BACKUP_PULL: BackupPull = { via: 'anonymous' };

export function parseBackupPull(text: string): BackupPull {
  if (text === 'anonymous' || text === 'node') return { via: text };
  throw new ConfigError(`--backup-pull must be anonymous (the backup registry serves pulls without credentials; checked) or node (the nodes hold credentials for it), got ${JSON.stringify(text)}`);
}

/** One cell of the pull request's table: how the kubelet will pull the new image. */
export function pullCell(pull: BackupPull | undefined): string {
  if (pull === undefined) return 'not recorded';
  return pull.via === 'anonymous' ? 'anonymously (checked)' : 'node credentials (not checked)';
}

/** What was checked, for the "why this is safe" paragraph; only what is true of these rows. */
export function pullStatement(pulls: ReadonlyArray<BackupPull | undefined>): string {
  const vias = new Set(pulls.map((p) => p?.via ?? 'unrecorded'));
  const parts: string[] = [];
  if (vias.has('anonymous')) parts.push('Where the table says "anonymously", an anonymous pull of the new image\'s manifest from the backup registry succeeded before this change was proposed: the nodes need no credentials for it.');
  if (vias.has('node')) parts.push('Where it says "node credentials", the operator set the controller to trust that the nodes hold credentials for the backup registry (`--backup-pull node`); the controller did not check this.');
  if (vias.has('unrecorded')) parts.push('Where it says "not recorded", the backup was made before the controller recorded how nodes pull it: check that the nodes can pull from the backup registry before merging.');
  return parts.join(' ');
}
