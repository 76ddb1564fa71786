/**
 * Seeds synthetic images into a registry with plain HTTP calls (independent of the copy engine
 * under test): deterministic pseudo-random layers of any size, generated as a stream so a 2 GiB
 * layer never sits in memory, wrapped in a Docker v2 or OCI manifest, optionally as a
 * multi-platform index (Docker manifest list or OCI index).
 */
import { createCipheriv, createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';

export interface LayerSpec {
  /** Same seed and size → same bytes → same digest (how images share base layers). */
  readonly seed: string;
  readonly size: number;
  /** In a multi-platform image: one layer for all platforms instead of one per platform. */
  readonly shared?: boolean;
}

export interface PlatformSpec {
  readonly os: string;
  readonly architecture: string;
  readonly variant?: string;
}

export interface SeedImageSpec {
  readonly repository: string;
  readonly tag: string;
  readonly format: 'docker' | 'oci';
  readonly layers: readonly LayerSpec[];
  /** When given, an index (OCI) or manifest list (Docker) with one image per platform. */
  readonly platforms?: readonly PlatformSpec[];
}

export interface SeedTarget {
  /** `http://127.0.0.1:5000` or `https://…`. */
  readonly url: string;
  readonly authorization?: string;
  readonly dispatcher?: Dispatcher;
}

export interface SeededImage {
  readonly digest: string;
  readonly mediaType: string;
  readonly children: readonly string[];
  readonly layerDigests: readonly string[];
}

const MEDIA = {
  docker: {
    manifest: 'application/vnd.docker.distribution.manifest.v2+json',
    index: 'application/vnd.docker.distribution.manifest.list.v2+json',
    config: 'application/vnd.docker.container.image.v1+json',
    layer: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
  },
  oci: {
    manifest: 'application/vnd.oci.image.manifest.v1+json',
    index: 'application/vnd.oci.image.index.v1+json',
    config: 'application/vnd.oci.image.config.v1+json',
    layer: 'application/vnd.oci.image.layer.v1.tar+gzip',
  },
} as const;

const CHUNK = 1 << 20;

/** A stream of `size` deterministic pseudo-random bytes (AES-128-CTR keyed by the seed). */
export function layerStream(spec: LayerSpec): Readable {
  const key = createHash('sha256').update(spec.seed).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  let left = spec.size;
  return new Readable({
    read() {
      if (left === 0) {
        this.push(null);
        return;
      }
      const n = Math.min(CHUNK, left);
      left -= n;
      this.push(cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n)));
    },
  });
}

export async function layerDigest(spec: LayerSpec): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of layerStream(spec)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

const sha256 = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;

export async function seedImage(target: SeedTarget, spec: SeedImageSpec): Promise<SeededImage> {
  const media = MEDIA[spec.format];
  const digests = new Map<string, Promise<string>>();
  const pushLayer = (layer: LayerSpec) => {
    const key = `${layer.seed}|${layer.size}`;
    let done = digests.get(key);
    if (!done) {
      done = layerDigest(layer).then(async (digest) => {
        await pushBlob(target, spec.repository, digest, layer.size, () => layerStream(layer));
        return digest;
      });
      digests.set(key, done);
    }
    return done;
  };

  const buildImage = async (platform: PlatformSpec | undefined): Promise<{ bytes: Buffer; layerDigests: string[] }> => {
    const suffix = platform ? `/${platform.os}/${platform.architecture}${platform.variant ?? ''}` : '';
    const layers = spec.layers.map((l) => (l.shared || !platform ? l : { ...l, seed: l.seed + suffix }));
    const layerDigests = await Promise.all(layers.map(pushLayer));
    const config = Buffer.from(
      JSON.stringify({
        architecture: platform?.architecture ?? 'amd64',
        os: platform?.os ?? 'linux',
        ...(platform?.variant ? { variant: platform.variant } : {}),
        config: { Cmd: ['/bin/sh'], Labels: { 'org.opencontainers.image.title': spec.repository } },
        rootfs: { type: 'layers', diff_ids: layerDigests },
        history: layers.map((l) => ({ created_by: `synthetic layer ${l.seed}` })),
      }),
    );
    const configDigest = sha256(config);
    await pushBlob(target, spec.repository, configDigest, config.length, () => Readable.from([config]));
    const manifest = Buffer.from(
      JSON.stringify(
        {
          schemaVersion: 2,
          mediaType: media.manifest,
          config: { mediaType: media.config, digest: configDigest, size: config.length },
          layers: layers.map((l, i) => ({ mediaType: media.layer, digest: layerDigests[i], size: l.size })),
        },
        null,
        3,
      ),
    );
    return { bytes: manifest, layerDigests };
  };

  if (!spec.platforms) {
    const image = await buildImage(undefined);
    const digest = await putManifest(target, spec.repository, spec.tag, image.bytes, media.manifest);
    return { digest, mediaType: media.manifest, children: [], layerDigests: image.layerDigests };
  }
  const children: Array<{ digest: string; size: number; platform: PlatformSpec }> = [];
  const allLayers: string[] = [];
  for (const platform of spec.platforms) {
    const image = await buildImage(platform);
    const digest = await putManifest(target, spec.repository, sha256(image.bytes), image.bytes, media.manifest);
    children.push({ digest, size: image.bytes.length, platform });
    allLayers.push(...image.layerDigests);
  }
  const index = Buffer.from(
    JSON.stringify(
      {
        schemaVersion: 2,
        mediaType: media.index,
        manifests: children.map((c) => ({ mediaType: media.manifest, digest: c.digest, size: c.size, platform: c.platform })),
      },
      null,
      3,
    ),
  );
  const digest = await putManifest(target, spec.repository, spec.tag, index, media.index);
  return { digest, mediaType: media.index, children: children.map((c) => c.digest), layerDigests: [...new Set(allLayers)] };
}

export interface SeedArtifactSpec {
  readonly repository: string;
  /** The manifest it refers to (`subject`); none for a cosign tag, which names its subject by the tag. */
  readonly subject?: { readonly digest: string; readonly mediaType: string; readonly size: number };
  readonly artifactType: string;
  readonly content: string;
  readonly annotations?: Readonly<Record<string, string>>;
  /** Also list it under the subject's `sha256-<hex>` tag, as tools do where a registry has no referrers API. */
  readonly fallbackTag?: boolean;
  /** Push under this tag (a cosign `sha256-<hex>.sig` tag) instead of by digest alone. */
  readonly tag?: string;
}

/**
 * An OCI 1.1 artifact (what a signature, an SBOM or an attestation is in a registry): the empty
 * config, one layer holding `content`, `artifactType`, and a `subject` when given.
 */
export async function seedArtifact(target: SeedTarget, spec: SeedArtifactSpec): Promise<{ digest: string; mediaType: string; size: number }> {
  const empty = Buffer.from('{}');
  const layer = Buffer.from(spec.content);
  await pushBlob(target, spec.repository, sha256(empty), empty.length, () => Readable.from([empty]));
  await pushBlob(target, spec.repository, sha256(layer), layer.length, () => Readable.from([layer]));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MEDIA.oci.manifest,
      artifactType: spec.artifactType,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: empty.length },
      layers: [{ mediaType: spec.artifactType, digest: sha256(layer), size: layer.length }],
      ...(spec.subject ? { subject: { mediaType: spec.subject.mediaType, digest: spec.subject.digest, size: spec.subject.size } } : {}),
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    }),
  );
  const digest = await putManifest(target, spec.repository, spec.tag ?? sha256(manifest), manifest, MEDIA.oci.manifest);
  if (spec.fallbackTag && spec.subject) {
    const tag = spec.subject.digest.replace(':', '-');
    const current = await call(target, 'GET', `${target.url}/v2/${spec.repository}/manifests/${tag}`, { accept: MEDIA.oci.index });
    const listed = current.statusCode === 200 ? ((await current.body.json()) as { manifests: unknown[] }).manifests : await current.body.dump().then(() => []);
    const entry = {
      mediaType: MEDIA.oci.manifest,
      digest,
      size: manifest.length,
      artifactType: spec.artifactType,
      ...(spec.annotations ? { annotations: spec.annotations } : {}),
    };
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA.oci.index, manifests: [...listed, entry] }));
    await putManifest(target, spec.repository, tag, index, MEDIA.oci.index);
  }
  return { digest, mediaType: MEDIA.oci.manifest, size: manifest.length };
}

/** A blob pushed as it is (a test's own forged content). */
export async function seedBlob(target: SeedTarget, repository: string, bytes: Buffer): Promise<string> {
  const digest = sha256(bytes);
  await pushBlob(target, repository, digest, bytes.length, () => Readable.from([bytes]));
  return digest;
}

async function call(target: SeedTarget, method: Dispatcher.HttpMethod, url: string, headers: Record<string, string>, body?: Buffer | Readable) {
  return request(url, {
    method,
    headers: target.authorization ? { ...headers, authorization: target.authorization } : headers,
    body: body ?? null,
    ...(target.dispatcher ? { dispatcher: target.dispatcher } : {}),
  });
}

async function pushBlob(target: SeedTarget, repository: string, digest: string, size: number, open: () => Readable): Promise<void> {
  const head = await call(target, 'HEAD', `${target.url}/v2/${repository}/blobs/${digest}`, {});
  await head.body.dump();
  if (head.statusCode === 200) return;
  const start = await call(target, 'POST', `${target.url}/v2/${repository}/blobs/uploads/`, { 'content-length': '0' });
  await start.body.dump();
  if (start.statusCode !== 202) throw new Error(`seed: starting an upload to ${repository} answered ${start.statusCode}`);
  const location = new URL(String(start.headers.location), target.url);
  location.searchParams.set('digest', digest);
  const put = await call(target, 'PUT', location.toString(), { 'content-length': String(size), 'content-type': 'application/octet-stream' }, open());
  const text = await put.body.text();
  if (put.statusCode !== 201) throw new Error(`seed: uploading ${digest} to ${repository} answered ${put.statusCode}: ${text}`);
}

async function putManifest(target: SeedTarget, repository: string, reference: string, bytes: Buffer, mediaType: string): Promise<string> {
  const response = await call(target, 'PUT', `${target.url}/v2/${repository}/manifests/${reference}`, { 'content-type': mediaType }, bytes);
  const text = await response.body.text();
  if (response.statusCode !== 201) throw new Error(`seed: PUT manifest ${repository}:${reference} answered ${response.statusCode}: ${text}`);
  return sha256(bytes);
}

/** A dispatcher that trusts `caPem` (for seeding a TLS registry). */
export function seedDispatcher(caPem: string): Agent {
  return new Agent({ connect: { ca: caPem } });
}

/** The digest a registry holds under `reference`, read with a plain HEAD (for checks outside the code under test). */
export async function manifestDigestAt(target: SeedTarget, repository: string, reference: string): Promise<string | undefined> {
  const response = await call(target, 'HEAD', `${target.url}/v2/${repository}/manifests/${reference}`, {
    accept: [MEDIA.oci.index, MEDIA.docker.index, MEDIA.oci.manifest, MEDIA.docker.manifest].join(', '),
  });
  await response.body.dump();
  return response.statusCode === 200 ? String(response.headers['docker-content-digest']) : undefined;
}
