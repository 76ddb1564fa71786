/**
 * Whether a client without credentials can pull an image: the proof behind `--backup-pull anonymous`
 * for a backup, and what "public" means for a source.
 */
import { RegistryError } from '../errors.ts';
import type { BackupPull } from '../image/backup-pull.ts';
import { effectiveTag, type ImageReference } from '../image/reference.ts';
import type { RegistryStack } from './index.ts';

/**
 * Why a client without credentials could not pull `image` at `reference` (a digest or tag), or
 * undefined when it can: an anonymous HEAD of the manifest (the token flow allowed, as the kubelet
 * does it). A registry that answers 5xx or drops the connection throws: that is a failure to retry,
 * not a verdict.
 */
export async function anonymousPullRefusal(registry: RegistryStack, image: ImageReference, reference: string): Promise<string | undefined> {
  try {
    const head = await registry.anonymous.headManifest({ registry: image.registry, repository: image.repository }, reference);
    // Registries hide what a client may not read behind 404 as often as behind 401.
    return head === undefined ? 'an anonymous pull was answered 404 (absent, or hidden from clients without credentials)' : undefined;
  } catch (error) {
    if (error instanceof RegistryError && (error.status === 401 || error.status === 403)) return `an anonymous pull was refused: ${error.message}`;
    throw error;
  }
}

/**
 * Why a source image is not public, or undefined when it is: "public" means an anonymous pull works,
 * asked before any credentialed read, so an image that only the operator's credentials can read
 * (another team's, on a host the auth file names) is never copied and republished where nodes pull it.
 */
export function notPublic(registry: RegistryStack, source: ImageReference): Promise<string | undefined> {
  return anonymousPullRefusal(registry, source, source.digest ?? effectiveTag(source)!);
}

/**
 * Whether a copy failed because its source refused us: "public" means an anonymous pull works, so
 * a source that answers 401 or 403 (after the anonymous check passed, to the copy's credentials)
 * is private, not broken. Another registry's refusal (the backup's) is a failure.
 */
export function refusedBySource(error: unknown, source: ImageReference): boolean {
  return error instanceof RegistryError && (error.status === 401 || error.status === 403) && error.registry === source.registry;
}

/**
 * Why the nodes could not pull a backup the way the operator says they pull (`--backup-pull`), or
 * undefined when they can or the way is not one to check: only an anonymous pull is proved here.
 */
export function backupPullRefusal(registry: RegistryStack, pull: BackupPull, backup: ImageReference, digest: string): Promise<string | undefined> {
  return pull.via === 'anonymous' ? anonymousPullRefusal(registry, backup, digest) : Promise.resolve(undefined);
}
