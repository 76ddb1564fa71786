/** Whether a node without credentials can pull a backup: the proof behind `--backup-pull anonymous`. */
import { RegistryError } from '../errors.ts';
import type { ImageReference } from '../image/reference.ts';
import type { RegistryStack } from './index.ts';

/**
 * Why a kubelet without credentials could not pull `backup@digest`, or undefined when it can: an
 * anonymous HEAD of the manifest by digest (the token flow allowed, as the kubelet does it). A
 * registry that answers 5xx or drops the connection throws: that is a failure to retry, not a verdict.
 */
export async function anonymousPullRefusal(registry: RegistryStack, backup: ImageReference, digest: string): Promise<string | undefined> {
  try {
    const head = await registry.anonymous.headManifest({ registry: backup.registry, repository: backup.repository }, digest);
    // We just pushed it with credentials: a 404 now is a registry hiding it from anonymous clients.
    return head === undefined ? 'an anonymous pull was answered 404 (hidden from clients without credentials)' : undefined;
  } catch (error) {
    if (error instanceof RegistryError && (error.status === 401 || error.status === 403)) return `an anonymous pull was refused: ${error.message}`;
    throw error;
  }
}
