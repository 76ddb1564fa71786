/**
 * The four manifest formats we copy: Docker v2 schema 2, Docker manifest list, OCI image manifest
 * and OCI image index. A manifest is kept as the registry's original bytes; parsing only reads
 * which blobs and child manifests it references.
 */
import { RegistryError } from '../errors.ts';

export const MediaType = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const SCHEMA1 = /application\/vnd\.docker\.distribution\.manifest\.v1\+(?:prettyjws|json)/;

/** What we send as Accept: every format we can copy, so registries never down-convert. */
export const MANIFEST_ACCEPT = [MediaType.ociIndex, MediaType.dockerManifestList, MediaType.ociManifest, MediaType.dockerManifest].join(', ');

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
  readonly platform?: Platform;
}

export interface Platform {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export type Manifest =
  | { readonly kind: 'image'; readonly mediaType: string; readonly config: Descriptor; readonly layers: readonly Descriptor[] }
  | { readonly kind: 'index'; readonly mediaType: string; readonly manifests: readonly Descriptor[] };

export function isIndexMediaType(mediaType: string): boolean {
  return mediaType === MediaType.ociIndex || mediaType === MediaType.dockerManifestList;
}

/**
 * Parses manifest bytes; `contentType` is the registry's Content-Type, used when the body has no
 * `mediaType` field (OCI makes it optional). `what` names the image in errors.
 */
export function parseManifest(bytes: Uint8Array, contentType: string | undefined, what: string): Manifest {
  let json: Record<string, unknown>;
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new RegistryError(`${what}: the manifest is not valid JSON`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new RegistryError(`${what}: the manifest is not a JSON object`);
  const declared = typeof json.mediaType === 'string' ? json.mediaType : undefined;
  const header = contentType?.split(';')[0]?.trim();
  const mediaType = declared ?? header ?? '';
  if (SCHEMA1.test(mediaType) || json.schemaVersion === 1) {
    throw new RegistryError(`${what}: Docker schema 1 manifests are deprecated and not copied (the digest could not be preserved)`);
  }
  if (Array.isArray(json.manifests) && (isIndexMediaType(mediaType) || declared === undefined)) {
    return { kind: 'index', mediaType: declared ?? MediaType.ociIndex, manifests: json.manifests.map((d, i) => descriptor(d, `${what}: manifests[${i}]`)) };
  }
  if (json.config !== undefined && Array.isArray(json.layers)) {
    return {
      kind: 'image',
      mediaType: declared ?? (header && !isIndexMediaType(header) ? header : MediaType.ociManifest),
      config: descriptor(json.config, `${what}: config`),
      layers: json.layers.map((d, i) => descriptor(d, `${what}: layers[${i}]`)),
    };
  }
  throw new RegistryError(`${what}: unsupported manifest (media type ${JSON.stringify(mediaType)})`);
}

function descriptor(value: unknown, where: string): Descriptor {
  const d = value as Record<string, unknown> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.digest !== 'string' ||
    !/^sha(256|384|512):[a-f0-9]+$/.test(d.digest) ||
    typeof d.size !== 'number' ||
    !Number.isSafeInteger(d.size) ||
    d.size < 0
  ) {
    throw new RegistryError(`${where} is not a valid descriptor (needs digest and a non-negative size)`);
  }
  const platform = d.platform as Record<string, unknown> | undefined;
  return {
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
    digest: d.digest,
    size: d.size,
    ...(platform && typeof platform.os === 'string' && typeof platform.architecture === 'string'
      ? { platform: { os: platform.os, architecture: platform.architecture, ...(typeof platform.variant === 'string' ? { variant: platform.variant } : {}) } }
      : {}),
  };
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined && p !== '').join('/');
}
