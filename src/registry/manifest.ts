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
  /** Its string annotations (a cosign signature layer's signature, a referrer's kind). */
  readonly annotations?: Readonly<Record<string, string>>;
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
  const annotations = stringsOf(d.annotations);
  return {
    mediaType: typeof d.mediaType === 'string' ? d.mediaType : '',
    digest: d.digest,
    size: d.size,
    ...(platform && typeof platform.os === 'string' && typeof platform.architecture === 'string'
      ? { platform: { os: platform.os, architecture: platform.architecture, ...(typeof platform.variant === 'string' ? { variant: platform.variant } : {}) } }
      : {}),
    ...(annotations ? { annotations } : {}),
  };
}

/**
 * An entry of a referrers list (OCI 1.1: the referrers API's answer, or the index under the
 * `sha256-<hex>` fallback tag): a manifest whose `subject` is the image, with what it is.
 */
export interface ReferrerDescriptor extends Descriptor {
  /** What the artifact is: a signature, an SBOM, an attestation (`application/vnd.dev.cosign.artifact.sig.v1+json`, …). */
  readonly artifactType?: string;
}

/** The entries of a referrers list (an image index), each checked as a descriptor. */
export function parseReferrers(bytes: Uint8Array, what: string): ReferrerDescriptor[] {
  let json: { manifests?: unknown };
  try {
    json = JSON.parse(Buffer.from(bytes).toString('utf8')) as { manifests?: unknown };
  } catch {
    throw new RegistryError(`${what}: the referrers list is not valid JSON`);
  }
  if (typeof json !== 'object' || json === null || !Array.isArray(json.manifests)) throw new RegistryError(`${what}: the referrers list is not an image index`);
  return json.manifests.map((entry, i) => {
    const artifactType = (entry as Record<string, unknown>).artifactType;
    return { ...descriptor(entry, `${what}: manifests[${i}]`), ...(typeof artifactType === 'string' ? { artifactType } : {}) };
  });
}

/** An image index listing `referrers`: what the fallback tag holds where a registry has no referrers API. */
export function referrersIndex(referrers: readonly ReferrerDescriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests: referrers }));
}

/** What a manifest says of itself, for a referrers list: its `subject`'s digest, its artifact type, its annotations. */
export function artifactOf(bytes: Uint8Array): { subject?: string; artifactType?: string; annotations?: Record<string, string> } {
  try {
    const json = JSON.parse(Buffer.from(bytes).toString('utf8')) as Record<string, unknown>;
    const subject = (json.subject as { digest?: unknown } | undefined)?.digest;
    const config = (json.config as { mediaType?: unknown } | undefined)?.mediaType;
    const artifactType = typeof json.artifactType === 'string' ? json.artifactType : typeof config === 'string' ? config : undefined;
    const annotations = stringsOf(json.annotations);
    return {
      ...(typeof subject === 'string' ? { subject } : {}),
      ...(artifactType ? { artifactType } : {}),
      ...(annotations ? { annotations } : {}),
    };
  } catch {
    return {};
  }
}

/** The string entries of a JSON object (annotations), or undefined when there are none. */
function stringsOf(value: unknown): Record<string, string> | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const strings = Object.fromEntries(Object.entries(value).filter((e): e is [string, string] => typeof e[1] === 'string'));
  return Object.keys(strings).length > 0 ? strings : undefined;
}

export function formatPlatform(platform: Platform): string {
  return [platform.os, platform.architecture, platform.variant].filter((p) => p !== undefined && p !== '').join('/');
}
