/**
 * The copier's verdict on one workload, from the outcome of backing up each of its images: no I/O,
 * so each way a workload can end is decided in one place and tested alone. The copier acts on it
 * (Events, retries, the handoff record).
 */
import type { ContainerImage } from '../cluster/workloads.ts';
import type { HandoffImage } from '../handoff/schema.ts';
import { formatReference, type ImageReference } from '../image/reference.ts';
import type { CopyResult } from '../registry/copy.ts';
import type { SignatureVerdict } from '../registry/signatures.ts';

/** What backing up one image came to. */
export type ImageOutcome =
  | {
      readonly kind: 'backed-up';
      readonly source: ImageReference;
      readonly backup: ImageReference;
      readonly result: CopyResult;
      /** Where --verify-signature asks for one: the signature that verified at the backup. */
      readonly signature?: Extract<SignatureVerdict, { verified: true }>;
    }
  | { readonly kind: 'not-pullable'; readonly backup: string; readonly reason: string }
  /** Backed up, but --verify-signature asks for a signature that does not verify at the backup. */
  | { readonly kind: 'not-verified'; readonly backup: string; readonly reason: string }
  /** Not copied now: its registry's pull quota is spent (registry/pull-quota.ts); tried again after `until`. */
  | { readonly kind: 'deferred'; readonly until: number; readonly reason: string }
  | { readonly kind: 'skipped'; readonly reason: string }
  | { readonly kind: 'failed'; readonly error: Error }
  /** Not copied because a bound says no (its size, the namespace's share): retried later, but not a failure of the registry. */
  | { readonly kind: 'refused'; readonly reason: RefusalReason; readonly message: string; readonly namespace?: string };

export type RefusalReason = 'image-too-large' | 'namespace-images' | 'namespace-bytes';

export type WorkloadVerdict =
  /** Some image could not be backed up: retried later, the reasons said. */
  | { readonly kind: 'failed'; readonly failed: number; readonly message: string }
  /** An image is refused by a bound (--max-image-size, the namespace's share): retried later, each reason said. */
  | { readonly kind: 'refused'; readonly reasons: readonly RefusalReason[]; readonly message: string }
  /** An image waits for its registry's pull quota: tried again after `until` (epoch ms), not a failure. */
  | { readonly kind: 'deferred'; readonly until: number; readonly message: string }
  /** Backed up, but the nodes could not pull a backup: not handed off (a change would break the workload at its next restart). */
  | { readonly kind: 'not-pullable'; readonly message: string }
  /** Backed up, but a signature the operator asks for does not verify at the backup: not handed off (admission would refuse it, or worse, not). */
  | { readonly kind: 'not-verified'; readonly message: string }
  /** Every public image is backed up: these move (none when nothing was public or everything is a backup already). */
  | { readonly kind: 'backed-up'; readonly moved: readonly HandoffImage[] };

export function reconcileWorkload(outcomes: ReadonlyArray<{ container: ContainerImage; outcome: ImageOutcome }>): WorkloadVerdict {
  const failed = outcomes.flatMap(({ container, outcome }) => (outcome.kind === 'failed' ? [`${container.container}: ${outcome.error.message}`] : []));
  if (failed.length > 0) return { kind: 'failed', failed: failed.length, message: failed.join('; ') };
  const refused = outcomes.flatMap(({ container, outcome }) => (outcome.kind === 'refused' ? [{ container: container.container, ...outcome }] : []));
  if (refused.length > 0)
    return {
      kind: 'refused',
      reasons: [...new Set(refused.map((r) => r.reason))],
      message: `not backed up now: ${refused.map((r) => `${r.container}: ${r.message}`).join('; ')}`,
    };
  const deferred = outcomes.flatMap(({ container, outcome }) => (outcome.kind === 'deferred' ? [{ container: container.container, ...outcome }] : []));
  if (deferred.length > 0)
    return {
      kind: 'deferred',
      until: Math.max(...deferred.map((d) => d.until)),
      message: `not backed up yet, and not failed: ${deferred.map((d) => `${d.container}: ${d.reason}`).join('; ')}`,
    };
  const unpullable = outcomes.flatMap(({ container, outcome }) =>
    outcome.kind === 'not-pullable' ? [`${outcome.backup} (${container.container}: ${outcome.reason})`] : [],
  );
  if (unpullable.length > 0) {
    return {
      kind: 'not-pullable',
      message: `backed up, but not proposed: its nodes could not pull ${unpullable.join('; ')}. If the nodes hold credentials for the backup registry, set --backup-pull node (BACKUP_PULL in the ConfigMap).`,
    };
  }
  const unverified = outcomes.flatMap(({ container, outcome }) =>
    outcome.kind === 'not-verified' ? [`${outcome.backup} (${container.container}: ${outcome.reason})`] : [],
  );
  if (unverified.length > 0) {
    return {
      kind: 'not-verified',
      message: `backed up, but not proposed: the signature --verify-signature asks for does not verify at the backup ${unverified.join('; ')}`,
    };
  }
  const moved = outcomes.flatMap(({ container, outcome }) =>
    outcome.kind === 'backed-up'
      ? [
          {
            container: container.container,
            init: container.init,
            source: container.image,
            backup: formatReference({ ...outcome.backup, digest: undefined }),
            digest: outcome.result.digest,
            platforms: outcome.result.platforms,
            sizeBytes: outcome.result.totalBytes,
            ...(outcome.signature
              ? {
                  signature: {
                    key: outcome.signature.key,
                    scheme: outcome.signature.scheme,
                    ...(outcome.signature.signer ? { signer: outcome.signature.signer } : {}),
                  },
                }
              : {}),
          },
        ]
      : [],
  );
  return { kind: 'backed-up', moved };
}
