/**
 * The copy engine: one image, or a batch of them, from a source registry to the backup registry.
 *
 * Order of work for one image: decide by tag policy whether anything needs doing (one HEAD for an
 * immutable tag already backed up; HEADs on both sides for a mutable one), then for every platform
 * place its blobs (HEAD → mount → streamed transfer), then push each child manifest by digest, and
 * only then the top manifest under its tag. A failure at any point leaves no tag pointing at a
 * half-copied image. Manifests travel as their original bytes, so digests are preserved.
 *
 * Within an engine (one batch, or one copier process), a blob is transferred once per target
 * registry: a second image that needs it waits for the first transfer and then mounts it.
 */
import { RegistryError, describeError } from '../errors.ts';
import { digestTag } from '../image/backup.ts';
import { effectiveTag, formatReference, type ImageReference } from '../image/reference.ts';
import { TagPolicy } from '../image/tag-policy.ts';
import { Limit, mapLimited } from '../util/limit.ts';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryEvent, type RetryPolicy } from '../util/retry.ts';
import { repoName, type FetchedManifest, type RegistryClient, type Repo, type UploadSession } from './client.ts';
import { transferBlob } from './blob-transfer.ts';
import { formatPlatform, parseManifest, type Descriptor } from './manifest.ts';
import type { Transport } from './transport.ts';

export interface CopyRequest {
  readonly source: ImageReference;
  readonly destination: ImageReference;
}

/** `copied`: bytes moved; `present`: an immutable tag already backed up; `unchanged`: a mutable tag whose digest matched. */
export type CopyOutcome = 'copied' | 'present' | 'unchanged';

export interface CopyResult {
  readonly source: string;
  readonly destination: string;
  readonly digest: string;
  readonly mediaType: string;
  readonly outcome: CopyOutcome;
  /** `os/arch[/variant]` of every platform of an index; empty for a single-platform manifest or when nothing was copied. */
  readonly platforms: readonly string[];
  /** Sum of the sizes of every blob and manifest of the image (when it was read). */
  readonly totalBytes: number;
  readonly blobs: { transferred: number; mounted: number; present: number; bytesTransferred: number };
}

export type BatchResult = { ok: true; request: CopyRequest; result: CopyResult } | { ok: false; request: CopyRequest; error: Error };

export interface CopyEngineOptions {
  readonly tagPolicy?: TagPolicy;
  /** Images copied at once across the engine. */
  readonly imageConcurrency?: number;
  /** Blob transfers at once across the engine (skopeo: 6 per image; crane: 4). */
  readonly blobConcurrency?: number;
  readonly retry?: RetryPolicy;
  readonly onRetry?: (what: string, event: RetryEvent) => void;
  /** Called as each blob lands, for metrics: how, and how many bytes crossed the wire. */
  readonly onBlob?: (how: 'transferred' | 'mounted' | 'present', bytes: number) => void;
}

interface BlobLanding {
  readonly repository: string;
  readonly done: Promise<boolean>;
  readonly at: number;
}

type BlobHow = 'transferred' | 'mounted' | 'present';

/** How long a landed blob is trusted for mounting without asking (a registry may delete it later). */
const BLOB_MEMORY_MS = 10 * 60_000;
const BLOB_MEMORY_MAX = 50_000;

export class CopyEngine {
  readonly #client: RegistryClient;
  readonly #policy: TagPolicy;
  readonly #images: Limit;
  readonly #transfers: Limit;
  readonly #retry: RetryPolicy;
  readonly #options: CopyEngineOptions;
  readonly #landed = new Map<string, BlobLanding>();
  readonly #inFlight = new Map<string, Promise<CopyResult>>();

  readonly #transport: Transport;

  constructor(client: RegistryClient, transport: Transport, options: CopyEngineOptions = {}) {
    this.#client = client;
    this.#transport = transport;
    this.#options = options;
    this.#policy = options.tagPolicy ?? new TagPolicy();
    this.#images = new Limit(options.imageConcurrency ?? 16);
    this.#transfers = new Limit(options.blobConcurrency ?? 6);
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
  }

  /** Images waiting or being copied now (the copier's queue depth). */
  get pending(): number {
    return this.#images.pending;
  }

  /** Copies every request concurrently (bounded); one failure does not stop the others. */
  async copyAll(requests: readonly CopyRequest[]): Promise<BatchResult[]> {
    return Promise.all(
      requests.map(async (request): Promise<BatchResult> => {
        try {
          return { ok: true, request, result: await this.copy(request) };
        } catch (error) {
          return { ok: false, request, error: error instanceof Error ? error : new Error(String(error)) };
        }
      }),
    );
  }

  /** Copies one image; the same source→destination asked twice at once is copied once. */
  copy(request: CopyRequest): Promise<CopyResult> {
    const key = `${formatReference(request.source)} ${formatReference(request.destination)}`;
    let running = this.#inFlight.get(key);
    if (running === undefined) {
      running = this.#images.run(() => this.#copy(request)).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, running);
    }
    return running;
  }

  async #copy({ source, destination }: CopyRequest): Promise<CopyResult> {
    const src: Repo = { registry: source.registry, repository: source.repository };
    const dst: Repo = { registry: destination.registry, repository: destination.repository };
    const srcName = formatReference(source);
    const dstName = formatReference(destination);
    const dstTag = effectiveTag(destination) ?? ((destination.digest ?? source.digest) ? digestTag((destination.digest ?? source.digest)!) : undefined);
    const mutable = source.digest === undefined && this.#policy.isMutable(effectiveTag(source));
    const nothing = { transferred: 0, mounted: 0, present: 0, bytesTransferred: 0 };

    try {
      // One HEAD of the backup decides most cases: an immutable tag already there is trusted,
      // with no request to the source at all.
      const current = dstTag === undefined ? undefined : await this.#call(() => this.#client.headManifest(dst, dstTag));
      if (current && !mutable && source.digest === undefined) {
        return {
          source: srcName,
          destination: dstName,
          digest: current.digest,
          mediaType: current.mediaType,
          outcome: 'present',
          platforms: [],
          totalBytes: 0,
          blobs: nothing,
        };
      }

      let top: FetchedManifest | undefined;
      let wanted = source.digest;
      if (wanted === undefined) {
        if (current) {
          // A mutable tag with a backup: a HEAD (which Docker Hub does not count as a pull) decides.
          const head = await this.#call(() => this.#client.headManifest(src, effectiveTag(source)!));
          if (head === undefined) throw new RegistryError(`${srcName} not found in ${source.registry} (HTTP 404: no such tag or repository)`, { status: 404 });
          wanted = head.digest;
        } else {
          // Nothing backed up yet: the copy is certain, so read the manifest straight away.
          top = await this.#call(() => this.#client.getManifest(src, effectiveTag(source)!));
          wanted = top.digest;
        }
      }
      if (current?.digest === wanted) {
        return {
          source: srcName,
          destination: dstName,
          digest: wanted,
          mediaType: current.mediaType,
          outcome: mutable ? 'unchanged' : 'present',
          platforms: [],
          totalBytes: 0,
          blobs: nothing,
        };
      }

      const stats = { ...nothing };
      const digest = wanted;
      top ??= await this.#call(() => this.#client.getManifest(src, digest));
      const { platforms, totalBytes } = await this.#copyContents(src, dst, top, stats, srcName);
      await this.#call(() => this.#client.putManifest(dst, dstTag ?? top.digest, top));
      return { source: srcName, destination: dstName, digest: top.digest, mediaType: top.mediaType, outcome: 'copied', platforms, totalBytes, blobs: stats };
    } catch (error) {
      if (error instanceof RegistryError && error.message.includes(srcName)) throw error;
      throw new RegistryError(`copy ${srcName} → ${dstName} failed: ${describeError(error)}`, {
        ...(error instanceof RegistryError && error.status !== undefined ? { status: error.status } : {}),
        ...(error instanceof RegistryError && error.registry !== undefined ? { registry: error.registry } : {}),
        cause: error,
      });
    }
  }

  /** Everything a manifest references, placed in the target; children of an index pushed by digest. */
  async #copyContents(
    src: Repo,
    dst: Repo,
    manifest: FetchedManifest,
    stats: CopyResult['blobs'],
    what: string,
  ): Promise<{ platforms: string[]; totalBytes: number }> {
    const parsed = parseManifest(manifest.bytes, manifest.mediaType, what);
    if (parsed.kind === 'image') {
      const blobs = dedupeDescriptors([parsed.config, ...parsed.layers]);
      await Promise.all(blobs.map((blob) => this.#ensureBlob(src, dst, blob, stats)));
      return { platforms: [], totalBytes: manifest.bytes.length + blobs.reduce((sum, b) => sum + b.size, 0) };
    }
    let totalBytes = manifest.bytes.length;
    const children = dedupeDescriptors(parsed.manifests);
    await mapLimited(children, this.#transfers.size, async (child) => {
      const childWhat = `${what} (${child.platform ? formatPlatform(child.platform) : child.digest})`;
      const fetched = await this.#call(() => this.#client.getManifest(src, child.digest));
      const inner = await this.#copyContents(src, dst, fetched, stats, childWhat);
      totalBytes += inner.totalBytes;
      const there = await this.#call(() => this.#client.headManifest(dst, child.digest));
      if (there === undefined) await this.#call(() => this.#client.putManifest(dst, child.digest, fetched));
    });
    const platforms = parsed.manifests.flatMap((d) => (d.platform && d.platform.os !== 'unknown' ? [formatPlatform(d.platform)] : []));
    return { platforms, totalBytes };
  }

  async #ensureBlob(src: Repo, dst: Repo, blob: Descriptor, stats: CopyResult['blobs']): Promise<void> {
    const how = await this.#landBlob(src, dst, blob);
    stats[how]++;
    if (how === 'transferred') stats.bytesTransferred += blob.size;
    this.#options.onBlob?.(how, how === 'transferred' ? blob.size : 0);
  }

  /** Places one blob in `dst`, reusing a transfer of the same blob to the same registry. */
  async #landBlob(src: Repo, dst: Repo, blob: Descriptor): Promise<BlobHow> {
    const key = `${dst.registry}|${blob.digest}`;
    const prior = this.#landed.get(key);
    if (prior === undefined || Date.now() - prior.at > BLOB_MEMORY_MS) {
      const placing = this.#placeBlob(src, dst, blob);
      this.#remember(key, {
        repository: dst.repository,
        done: placing.then(
          () => true,
          () => false,
        ),
        at: Date.now(),
      });
      return placing;
    }
    if (await prior.done) {
      if (prior.repository === dst.repository) return 'present';
      if (await this.#call(() => this.#client.mountBlob(dst, blob.digest, prior.repository))) return 'mounted';
    }
    return this.#placeBlob(src, dst, blob);
  }

  #remember(key: string, landing: BlobLanding): void {
    this.#landed.delete(key);
    this.#landed.set(key, landing);
    if (this.#landed.size > BLOB_MEMORY_MAX) {
      const oldest = this.#landed.keys().next().value;
      if (oldest !== undefined) this.#landed.delete(oldest);
    }
    landing.done.then((ok) => {
      if (!ok && this.#landed.get(key) === landing) this.#landed.delete(key);
    });
  }

  async #placeBlob(src: Repo, dst: Repo, blob: Descriptor): Promise<BlobHow> {
    if (await this.#call(() => this.#client.hasBlob(dst, blob.digest))) return 'present';
    if (src.registry === dst.registry && (await this.#call(() => this.#client.mountBlob(dst, blob.digest, src.repository)))) return 'mounted';
    const what = `blob ${blob.digest} of ${repoName(src)}`;
    await this.#transfers.run(() =>
      this.#call(async () => {
        // Each attempt opens a new source stream (a consumed stream cannot be sent again), and an
        // upload session only once the source has answered.
        const source = await this.#client.blobSource(src, blob.digest);
        let session: UploadSession | undefined;
        try {
          await transferBlob(this.#transport, {
            sourceUrl: source.url,
            sourceAuthorization: source.authorization,
            startUpload: async () => (session = await this.#client.startUpload(dst, blob.digest)),
            digest: blob.digest,
            size: blob.size,
            what,
          });
        } catch (error) {
          if (session) await this.#client.cancelUpload(session).catch(() => undefined);
          throw error;
        }
      }, what),
    );
    return 'transferred';
  }

  #call<T>(operation: () => Promise<T>, what = 'registry request'): Promise<T> {
    return withRetries(operation, this.#retry, (event) => this.#options.onRetry?.(what, event));
  }
}

function dedupeDescriptors(descriptors: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((d) => !seen.has(d.digest) && seen.add(d.digest) !== undefined);
}
