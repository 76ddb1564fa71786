/**
 * How workloads' nodes pull images from the backup registry, which is almost always private. A
 * change that moves a workload onto an image its kubelet cannot pull is an outage at the next
 * restart, so the operator says how pulls work and the controller proves what it can before it
 * proposes anything:
 * - `anonymous`: the backup registry serves pulls without credentials; the copier proves it for
 *   each backup with an anonymous manifest HEAD (the default: nothing unpullable is proposed).
 * - `node`: the nodes hold credentials (a kubelet credential provider, a node's config.json); taken
 *   on the operator's word and said so in the pull request.
 * - `secret:NAME`: workloads pull with a dockerconfigjson Secret NAME that the platform team provides
 *   in each namespace. The copier sees whether the pod template or its service account lists it
 *   (it cannot read Secrets); where neither does, the change adds it to the pod template.
 * Pure: parsing and the words a reviewer reads.
 */
import { ConfigError } from '../errors.ts';

/** The operator's setting. */
export type BackupPull = { readonly via: 'anonymous' } | { readonly via: 'node' } | { readonly via: 'secret'; readonly secret: string };

/** What a handoff record says of one workload: the setting, and for a Secret who lists it ('none': the change must add it). */
export type RecordedPull =
  | { readonly via: 'anonymous' }
  | { readonly via: 'node' }
  | { readonly via: 'secret'; readonly secret: string; readonly listedBy: 'pod' | 'service-account' | 'none' };

export const DEFAULT_BACKUP_PULL: BackupPull = { via: 'anonymous' };

/** A Secret's name: a DNS-1123 subdomain. */
const SECRET_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A Secret's name as Kubernetes names one (a DNS subdomain). */
export function isSecretName(name: string): boolean {
  return name.length <= 253 && SECRET_NAME.test(name);
}

export function parseBackupPull(text: string): BackupPull {
  if (text === 'anonymous' || text === 'node') return { via: text };
  if (text.startsWith('secret:')) {
    const secret = text.slice('secret:'.length);
    if (!isSecretName(secret))
      throw new ConfigError(`--backup-pull secret:NAME needs a Secret name (lower-case letters, digits, '-' and '.'), got ${JSON.stringify(secret)}`);
    return { via: 'secret', secret };
  }
  throw new ConfigError(
    `--backup-pull must be anonymous (the backup registry serves pulls without credentials; checked), node (the nodes hold credentials for it) or secret:NAME (workloads pull with the Secret NAME), got ${JSON.stringify(text)}`,
  );
}

/** One cell of the pull request's table: how the kubelet will pull the new image. */
export function pullCell(pull: RecordedPull | undefined): string {
  if (pull === undefined) return 'not recorded';
  if (pull.via === 'anonymous') return 'anonymously (checked)';
  if (pull.via === 'node') return 'node credentials (not checked)';
  const who =
    pull.listedBy === 'pod'
      ? 'the pod template lists it'
      : pull.listedBy === 'service-account'
        ? 'its service account lists it'
        : 'this change adds it to the pod template';
  return `Secret \`${pull.secret}\` (${who})`;
}

/** What was checked for each way nodes pull, for the "why this is safe" paragraph, in the order it is said. */
const PULL_STATEMENTS: ReadonlyArray<readonly [RecordedPull['via'] | 'unrecorded', string]> = [
  [
    'anonymous',
    'Where the table says "anonymously", an anonymous pull of the new image\'s manifest from the backup registry succeeded before this change was proposed: the nodes need no credentials for it.',
  ],
  [
    'node',
    'Where it says "node credentials", the operator set the controller to trust that the nodes hold credentials for the backup registry (`--backup-pull node`); the controller did not check this.',
  ],
  [
    'secret',
    "Where it names a Secret, the kubelet pulls with that Secret: the controller saw the pod template or its service account list it, or this change adds it to the pod template. The controller has no access to Secrets, so whether the Secret exists in the workload's namespace and holds credentials for the backup registry was not checked: the platform team provides it.",
  ],
  [
    'unrecorded',
    'Where it says "not recorded", the backup was made before the controller recorded how nodes pull it: check that the nodes can pull from the backup registry before merging.',
  ],
];

/** What was checked, for the "why this is safe" paragraph; only what is true of these rows. */
export function pullStatement(pulls: ReadonlyArray<RecordedPull | undefined>): string {
  const vias = new Set(pulls.map((p) => p?.via ?? 'unrecorded'));
  return PULL_STATEMENTS.filter(([via]) => vias.has(via))
    .map(([, statement]) => statement)
    .join(' ');
}
