/**
 * Whether a client without credentials can pull an image: the proof behind `--backup-pull anonymous`
 * for a backup, and what "public" means for a source.
 */
import { RegistryError } from '../errors.ts';
import type { ImageReference } from '../image/reference.ts';
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
