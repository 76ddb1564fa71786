/**
 * Where a source image is backed up: a pure, deterministic and collision-free mapping from a
 * source reference to a reference in the user's backup registry.
 *
 * Two layouts, because registries differ in what repository names they accept:
 *  - `nested` (distribution, Harbor, GHCR, ECR, Quay): `PREFIX/<source host>/<source path>`.
 *    The host is one path component of its own, so `docker.io/library/nginx` and `quay.io/nginx`
 *    cannot meet.
 *  - `flat` (Docker Hub: only `namespace/name`): `PREFIX/<host>_<path joined by _>`. That join is
 *    reversible when the source has no "_" and no port; otherwise a `__` and 12 hex digits of the
 *    source name's SHA-256 are appended (names without that suffix never contain `__`).
 */
import { createHash } from 'node:crypto';
import { ImageReferenceError } from '../errors.ts';
import { DEFAULT_TAG, parseReference, repositoryName, tryParseReference, type ImageReference } from './reference.ts';

export type BackupLayout = 'nested' | 'flat';

export interface BackupTarget {
  /** Backup registry host[:port]. */
  readonly registry: string;
  /** Repository path prefix inside it (may be empty for `nested`; the namespace for `flat`). */
  readonly prefix: string;
  readonly layout: BackupLayout;
}

const NAME_TOTAL_LENGTH_MAX = 255;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[_.]|__|[-]+)[a-z0-9]+)*$/;
const HASH_HEX_LENGTH = 12;

/** Parses `HOST[:PORT][/PREFIX]` as given to `--backup-registry`. */
export function parseBackupTarget(spec: string, layout: BackupLayout = 'nested'): BackupTarget {
  const trimmed = spec.replace(/\/+$/, '');
  // Reuse the reference grammar: a placeholder repository makes the host part parse like an image's.
  const slash = trimmed.indexOf('/');
  const registry = slash === -1 ? trimmed : trimmed.slice(0, slash);
  const prefix = slash === -1 ? '' : trimmed.slice(slash + 1);
  if (registry.length === 0) throw new ImageReferenceError(spec, 'the backup registry host is empty');
  try {
    parseReference(`${registry}/${prefix === '' ? 'x' : prefix}/x`);
  } catch (error) {
    if (error instanceof ImageReferenceError) {
      throw new ImageReferenceError(spec, `not a valid backup registry (HOST[:PORT]/PREFIX): ${error.message}`);
    }
    throw error;
  }
  if (!/[.:]/.test(registry) && registry !== 'localhost') {
    throw new ImageReferenceError(spec, `backup registry ${JSON.stringify(registry)} must be a host name with a "." or a port, or "localhost"`);
  }
  if (layout === 'flat' && prefix.split('/').length !== 1) {
    throw new ImageReferenceError(spec, 'the flat layout needs exactly one namespace after the host (HOST/NAMESPACE)');
  }
  return { registry: registry === 'index.docker.io' ? 'docker.io' : registry, prefix, layout };
}

/** The backup reference for `source`: same tag (explicit `latest` when none), same digest. */
export function backupReference(source: ImageReference, target: BackupTarget): ImageReference {
  const name = target.layout === 'flat' ? flatName(source) : nestedName(source);
  const repository = target.prefix === '' ? name : `${target.prefix}/${name}`;
  if (`${target.registry}/${repository}`.length > NAME_TOTAL_LENGTH_MAX) {
    throw new ImageReferenceError(
      `${source.registry}/${source.repository}`,
      `its backup name ${target.registry}/${repository} would be longer than ${NAME_TOTAL_LENGTH_MAX} characters`,
    );
  }
  const tag = source.tag ?? (source.digest === undefined ? DEFAULT_TAG : digestTag(source.digest));
  return { registry: target.registry, repository, tag, digest: source.digest };
}

/**
 * A tag that keeps a digest-pinned backup alive: registries with lifecycle policies delete
 * untagged manifests. `sha256:abc…` → `sha256-abc…` (the convention cosign and others use).
 */
export function digestTag(digest: string): string {
  return digest.replace(':', '-').slice(0, 128);
}

/** Whether `ref` already lives in the backup target (it must not be backed up again). */
export function isInBackupTarget(ref: ImageReference, target: BackupTarget): boolean {
  if (ref.registry !== target.registry) return false;
  return target.prefix === '' || ref.repository.startsWith(`${target.prefix}/`);
}

function nestedName(source: ImageReference): string {
  return `${hostComponent(source)}/${source.repository}`;
}

function hostComponent(source: ImageReference): string {
  if (source.registry.startsWith('[')) {
    throw new ImageReferenceError(
      `${source.registry}/${source.repository}`,
      'images from a registry addressed by an IPv6 literal cannot be given a backup repository name',
    );
  }
  // A host name has no "_", so "_" can stand for the port's ":" without ambiguity.
  const component = source.registry.toLowerCase().replace(':', '_');
  if (!PATH_COMPONENT.test(component)) {
    throw new ImageReferenceError(source.registry, 'the registry host cannot be used as a repository path component');
  }
  return component;
}

function flatName(source: ImageReference): string {
  const host = hostComponent(source);
  const readable = [host, ...source.repository.split('/')].join('_');
  const reversible = !source.registry.includes(':') && !source.repository.includes('_');
  if (reversible && readable.length <= 128) return readable;
  const hash = createHash('sha256').update(`${source.registry}/${source.repository}`).digest('hex').slice(0, HASH_HEX_LENGTH);
  // Trim the readable part so the whole name stays short, and never end it on a separator.
  const head = readable.slice(0, 100).replace(/[^a-z0-9]+$/, '');
  return `${head}__${hash}`;
}

/**
 * Whether `image` (as a manifest or a render writes it) runs the backup `backup` (its tag, no
 * digest) of digest `digest`: pinned to that digest, or named by the backup's tag, which was
 * copied from that digest.
 */
export function runsBackup(image: string, backup: string, digest: string): boolean {
  const ref = tryParseReference(image);
  const target = tryParseReference(backup);
  return (
    ref !== undefined &&
    target !== undefined &&
    repositoryName(ref) === repositoryName(target) &&
    (ref.digest === digest || (ref.digest === undefined && ref.tag === target.tag))
  );
}
