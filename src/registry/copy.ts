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
 *
 * Bounds, because a source registry may be hostile: the manifest tree is read first (at most
 * MAX_INDEX_CHILDREN children an index, MAX_INDEX_DEPTH levels, within `manifestsDeadlineMs`) and an
 * image whose declared size passes `maxImageBytes` (or the request's own budget) is refused before a
 * blob moves; each blob has a deadline from its size and the floor rate (`minBytesPerSecond`), from
 * when it gets a slot; and the image and blob slots are shared fairly between source registries.
 */
import { RegistryError, describeError } from '../errors.ts';
import { digestTag } from '../image/backup.ts';
import { effectiveTag, formatReference, type ImageReference } from '../image/reference.ts';
import { TagPolicy } from '../image/tag-policy.ts';
import { deadline } from '../util/deadline.ts';
import { FairLimit, mapLimited } from '../util/limit.ts';
import { formatBytes } from '../util/size.ts';
import { DEFAULT_RETRY_POLICY, withRetries, type RetryEvent, type RetryPolicy } from '../util/retry.ts';
import { repoName, type FetchedManifest, type RegistryClient, type Repo, type UploadSession } from './client.ts';
import { transferBlob } from './blob-transfer.ts';
import { digestOf } from './digest.ts';
import { RateLimited } from './pull-quota.ts';
import { artifactOf, formatPlatform, MediaType, parseManifest, referrersIndex, type Descriptor, type ReferrerDescriptor } from './manifest.ts';
import { DEFAULT_REFERRERS, findReferrers, policyCopies, readFallbackTag, repositoryView, type ReferrersPolicy, type RepositoryView } from './referrers.ts';
import type { Transport } from './transport.ts';

export interface CopyRequest {
  readonly source: ImageReference;
  readonly destination: ImageReference;
  /** A smaller size budget for this image than the engine's `maxImageBytes` (a namespace's share), and what sets it. */
  readonly budget?: { readonly bytes: number; readonly what: string };
  /**
   * Whom the copy is for: image and blob slots are shared fairly between these (the copier: the
   * workload's namespace, which a tenant cannot multiply as it can host names). Default: the source registry.
   */
  readonly share?: string;
}

/** Why an image is refused without being copied: it is larger than a limit allows. Not retried. */
export class CopyRefused extends RegistryError {
  override name = 'CopyRefused';
  readonly reason: 'image-too-large' | 'budget';
  constructor(message: string, reason: CopyRefused['reason']) {
    super(message);
    this.reason = reason;
  }
}

/** A real cluster's largest images (CUDA, ML runtimes) are a few GiB to ~15 GiB. */
export const DEFAULT_MAX_IMAGE_BYTES = 20 * 1024 ** 3;
/** Slower than this, a source is abandoned (and the image retried later with the workload). */
export const DEFAULT_MIN_BYTES_PER_SECOND = 1024 ** 2;
/** Time every blob gets on top of its size at the floor rate (a connection, a redirect, an upload session). */
export const DEFAULT_BLOB_GRACE_MS = 60_000;
/** The manifests of one image (an index and its children), retries included. */
const DEFAULT_MANIFESTS_DEADLINE_MS = 3 * 60_000;
/** Real indexes list tens of platforms and attestations; far more is not an image (counted over the whole tree). */
const MAX_MANIFESTS = 1024;
const MAX_INDEX_DEPTH = 3;
/** All of one image's manifests together, held until its size is known (a real one: tens of KiB). */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

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
  /** What travels with the image (./referrers.ts): referrers and cosign tags copied now, found already there, and those left behind with why. */
  readonly referrers: ReferrerStats;
}

export interface ReferrerStats {
  copied: number;
  present: number;
  readonly skipped: string[];
}

export type BatchResult = { ok: true; request: CopyRequest; result: CopyResult } | { ok: false; request: CopyRequest; error: Error };

export interface CopyEngineOptions {
  readonly tagPolicy?: TagPolicy;
  /** Images copied at once from one source registry (twice that from all). */
  readonly imageConcurrency?: number;
  /** Blob transfers at once from one source registry, twice that from all (skopeo: 6 per image; crane: 4). */
  readonly blobConcurrency?: number;
  readonly retry?: RetryPolicy;
  readonly onRetry?: (what: string, event: RetryEvent) => void;
  /** Called as each blob lands, for metrics: how, and how many bytes crossed the wire. */
  readonly onBlob?: (how: 'transferred' | 'mounted' | 'present', bytes: number) => void;
  /** Images whose manifests declare more bytes than this are refused (default 20 GiB). */
  readonly maxImageBytes?: number;
  /** The floor rate a blob must keep, in bytes per second (default 1 MiB/s). */
  readonly minBytesPerSecond?: number;
  /** Time each blob gets on top of its size at the floor rate (default 60 s). */
  readonly blobGraceMs?: number;
  /** Time to read all of one image's manifests (default 3 minutes). */
  readonly manifestsDeadlineMs?: number;
  /** What travels with each image: its signatures, SBOMs and attestations (default: all of them). */
  readonly referrers?: ReferrersPolicy;
}

/** What the operator bounds a copy by (the --max-image-size and --min-copy-rate flags). */
export type CopyBounds = Required<Pick<CopyEngineOptions, 'maxImageBytes' | 'minBytesPerSecond'>>;

/** One image's copy in progress: where from, where to, whose slots, and a signal that ends every part of it once one part fails. */
interface ImageWork {
  readonly src: Repo;
  readonly dst: Repo;
  readonly share: string;
  readonly abandoned: AbortSignal;
  readonly stats: CopyResult['blobs'];
  /** The backup's own tag: where it is the fallback tag's name (a digest-pinned backup), it stays the backup's. */
  readonly tag: string | undefined;
  readonly referrers: ReferrerStats;
  /** Referrers met so far in this image (one listed by two subjects, or a cycle, is copied once). */
  readonly referrersSeen: Set<string>;
  /** The source repository as its referrers are looked for (its tags listed once for all subjects). */
  sourceView?: RepositoryView;
  /** Declared bytes of the referrers and cosign tags copied so far. */
  referrerBytes: number;
}

/** An image's manifests as read, before anything is placed: what its size is, what to copy. */
interface ManifestTree {
  readonly fetched: FetchedManifest;
  /** An image manifest's config and layers. */
  readonly blobs: readonly Descriptor[];
  /** An index's children, each with its own tree. */
  readonly children: readonly { readonly descriptor: Descriptor; readonly tree: ManifestTree }[];
}

interface BlobLanding {
  readonly repository: string;
  readonly done: Promise<boolean>;
  readonly at: number;
}

type BlobHow = 'transferred' | 'mounted' | 'present';

/** Referrers of one image, all subjects and depths together (a real one: a signature, an SBOM, a few attestations per platform). */
const MAX_REFERRERS = 256;
/** A referrer of a referrer of … (a signature of an SBOM is depth 2). */
const MAX_REFERRER_DEPTH = 3;
/** One referrer's declared bytes (an SBOM of a large image is some MiB); a larger one is left behind, with why. */
const MAX_REFERRER_BYTES = 256 * 1024 * 1024;
/** All of one image's referrers and cosign tags together. */
const MAX_IMAGE_REFERRER_BYTES = 512 * 1024 * 1024;
/** A referrer's annotations as listed under the fallback tag (cosign's are a few hundred bytes). */
const MAX_ANNOTATION_BYTES = 8 * 1024;

/** How long a registry that has no referrers API is not asked for it again. */
const REFERRERS_API_MEMORY_MS = 10 * 60_000;

/** How long a landed blob is trusted for mounting without asking (a registry may delete it later). */
const BLOB_MEMORY_MS = 10 * 60_000;
const BLOB_MEMORY_MAX = 50_000;

export class CopyEngine {
  readonly #client: RegistryClient;
  readonly #policy: TagPolicy;
  readonly #images: FairLimit;
  readonly #transfers: FairLimit;
  readonly #retry: RetryPolicy;
  readonly #options: CopyEngineOptions;
  readonly #referrers: ReferrersPolicy;
  readonly #landed = new Map<string, BlobLanding>();
  readonly #inFlight = new Map<string, Promise<CopyResult>>();
  /** Whether a target registry keeps referrers itself (it answered a push of one with `OCI-Subject`), as learned. */
  readonly #keepsReferrers = new Map<string, Promise<boolean>>();
  /** Source registries that answered the referrers API 404, until when they are not asked again (an upgrade may bring it). */
  readonly #noReferrersApi = new Map<string, number>();

  readonly #transport: Transport;

  constructor(client: RegistryClient, transport: Transport, options: CopyEngineOptions = {}) {
    this.#client = client;
    this.#transport = transport;
    this.#options = options;
    this.#policy = options.tagPolicy ?? new TagPolicy();
    this.#images = new FairLimit(options.imageConcurrency ?? 16);
    this.#transfers = new FairLimit(options.blobConcurrency ?? 6);
    this.#retry = options.retry ?? DEFAULT_RETRY_POLICY;
    this.#referrers = options.referrers ?? DEFAULT_REFERRERS;
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
      running = this.#images.run(request.share ?? request.source.registry, () => this.#copy(request)).finally(() => this.#inFlight.delete(key));
      this.#inFlight.set(key, running);
    }
    return running;
  }

  async #copy({ source, destination, budget, share }: CopyRequest): Promise<CopyResult> {
    const src: Repo = { registry: source.registry, repository: source.repository };
    const dst: Repo = { registry: destination.registry, repository: destination.repository };
    const srcName = formatReference(source);
    const dstName = formatReference(destination);
    const dstTag = effectiveTag(destination) ?? ((destination.digest ?? source.digest) ? digestTag((destination.digest ?? source.digest)!) : undefined);
    const mutable = source.digest === undefined && this.#policy.isMutable(effectiveTag(source));
    const nothing = { transferred: 0, mounted: 0, present: 0, bytesTransferred: 0 };
    // Ends the image's other requests and transfers when one part fails (they would hold slots and bytes for nothing).
    const abandon = new AbortController();
    const work: ImageWork = {
      src,
      dst,
      share: share ?? source.registry,
      abandoned: abandon.signal,
      stats: { ...nothing },
      tag: dstTag,
      referrers: { copied: 0, present: 0, skipped: [] },
      referrersSeen: new Set(),
      referrerBytes: 0,
    };
    const copiesReferrers = this.#referrers.mode !== 'none';
    // The backup was there already: nothing copied (but referrers a re-check brought).
    const settled = (digest: string, mediaType: string, outcome: CopyOutcome): CopyResult => ({
      source: srcName,
      destination: dstName,
      digest,
      mediaType,
      outcome,
      platforms: [],
      totalBytes: 0,
      blobs: work.stats,
      referrers: work.referrers,
    });

    try {
      // One HEAD of the backup decides most cases: an immutable tag already there is trusted,
      // with no request to the source at all.
      const current = dstTag === undefined ? undefined : await this.#call(() => this.#client.headManifest(dst, dstTag));
      if (current && !mutable && source.digest === undefined) return settled(current.digest, current.mediaType, 'present');

      let tree: ManifestTree | undefined;
      let wanted = source.digest;
      if (wanted === undefined) {
        if (current) {
          // A mutable tag with a backup: a HEAD (which Docker Hub does not count as a pull) decides.
          const head = await this.#call(() => this.#client.headManifest(src, effectiveTag(source)!));
          if (head === undefined) throw new RegistryError(`${srcName} not found in ${source.registry} (HTTP 404: no such tag or repository)`, { status: 404 });
          wanted = head.digest;
        } else {
          // Nothing backed up yet: the copy is certain, so read the manifests straight away.
          tree = await this.#readTree(work, effectiveTag(source)!, srcName);
          wanted = tree.fetched.digest;
        }
      }
      if (current?.digest === wanted) {
        // A re-check of a mutable tag also brings referrers added since (a signature attached later),
        // found from the backup's own manifests: no manifest GET at the source.
        if (mutable && copiesReferrers) {
          const backup = await this.#readTree(work, wanted, dstName, dst);
          await this.#copyReferrers(work, manifestDigests(backup), srcName, 0);
        }
        return settled(wanted, current.mediaType, mutable ? 'unchanged' : 'present');
      }

      // A digest-pinned backup's tag (`sha256-<hex>`) is also the name of that digest's referrers
      // fallback tag: where it holds something else (another backup's referrers index), the image is
      // found or pushed by digest, and the tag is left as it is.
      const tagTaken = source.digest !== undefined && current !== undefined && current.digest !== wanted;
      if (tagTaken) {
        const byDigest = await this.#call(() => this.#client.headManifest(dst, wanted!));
        if (byDigest) return settled(wanted, byDigest.mediaType, 'present');
      }
      tree ??= await this.#readTree(work, wanted, srcName);
      const totalBytes = declaredBytes(tree);
      this.#refuseOversized(srcName, largestPlatformBytes(tree), totalBytes, budget);
      const platforms = await this.#copyContents(work, tree, srcName);
      const top = tree.fetched;
      // The order a reader may rely on: the image by digest, then what refers to it, then its tag
      // (unless another manifest holds that tag: then by digest only).
      if (dstTag !== undefined && (copiesReferrers || tagTaken)) await this.#call(() => this.#client.putManifest(dst, top.digest, top));
      if (copiesReferrers) await this.#copyReferrers(work, manifestDigests(tree), srcName, 0);
      if (tagTaken) leaveBehind(work, `the tag ${dstTag} holds another manifest (a referrers index); the image is pushed by digest only`);
      else await this.#call(() => this.#client.putManifest(dst, dstTag ?? top.digest, top));
      return {
        source: srcName,
        destination: dstName,
        digest: top.digest,
        mediaType: top.mediaType,
        outcome: 'copied',
        platforms,
        totalBytes,
        blobs: work.stats,
        referrers: work.referrers,
      };
    } catch (error) {
      abandon.abort(new RegistryError(`${srcName}: abandoned, another part of the image failed`));
      // A spent pull quota is not this image's failure: the caller defers it as it says.
      if (error instanceof CopyRefused || error instanceof RateLimited || (error instanceof RegistryError && error.message.includes(srcName))) throw error;
      throw new RegistryError(`copy ${srcName} → ${dstName} failed: ${describeError(error)}`, {
        ...(error instanceof RegistryError && error.status !== undefined ? { status: error.status } : {}),
        ...(error instanceof RegistryError && error.registry !== undefined ? { registry: error.registry } : {}),
        cause: error,
      });
    }
  }

  /**
   * Every manifest of the image, read before anything is placed (so its size is known first), within
   * one deadline for them all; an index's children are read a few at a time.
   */
  async #readTree(work: ImageWork, selector: string, what: string, from: Repo = work.src): Promise<ManifestTree> {
    const allowedMs = this.#options.manifestsDeadlineMs ?? DEFAULT_MANIFESTS_DEADLINE_MS;
    const limit = deadline(allowedMs, () => new RegistryError(`${what}: its manifests were not read within ${allowedMs / 1000} s; abandoned, retried later`));
    const signal = AbortSignal.any([limit.signal, work.abandoned]);
    let count = 0;
    let bytes = 0;
    // A child listed by several indexes is read once.
    const reads = new Map<string, Promise<FetchedManifest>>();
    const fetch = (selector: string): Promise<FetchedManifest> => {
      let read = reads.get(selector);
      if (read === undefined) {
        if (++count > MAX_MANIFESTS) throw new RegistryError(`${what}: more than ${MAX_MANIFESTS} manifests in one image; not copied`);
        read = this.#call(() => this.#client.getManifest(from, selector, signal, from === work.src ? work.share : undefined)).then((fetched) => {
          bytes += fetched.bytes.length;
          if (bytes > MAX_MANIFEST_BYTES)
            throw new RegistryError(`${what}: its manifests are more than ${formatBytes(MAX_MANIFEST_BYTES)} together; not copied`);
          return fetched;
        });
        reads.set(selector, read);
      }
      return read;
    };
    const read = async (fetched: FetchedManifest, what: string, depth: number): Promise<ManifestTree> => {
      const parsed = parseManifest(fetched.bytes, fetched.mediaType, what);
      if (parsed.kind === 'image') return { fetched, blobs: dedupeDescriptors([parsed.config, ...parsed.layers]), children: [] };
      if (depth >= MAX_INDEX_DEPTH) throw new RegistryError(`${what}: indexes nested more than ${MAX_INDEX_DEPTH} deep; not copied`);
      const children = dedupeDescriptors(parsed.manifests);
      if (count + children.length > MAX_MANIFESTS)
        throw new RegistryError(`${what}: the index lists ${children.length} manifests, more than the ${MAX_MANIFESTS} an image may have; not copied`);
      const trees = await mapLimited(children, this.#transfers.perKey, async (descriptor) => {
        const childWhat = `${what} (${descriptor.platform ? formatPlatform(descriptor.platform) : descriptor.digest})`;
        return { descriptor, tree: await read(await fetch(descriptor.digest), childWhat, depth + 1) };
      });
      return { fetched, blobs: [], children: trees };
    };
    try {
      return await read(await fetch(selector), what, 0);
    } finally {
      limit.clear();
    }
  }

  /**
   * `--max-image-size` is what one node pulls: the largest platform (a CUDA image of two platforms
   * is two large images, not one twice as large); the whole of every platform counts against the
   * request's budget (what the backup registry stores).
   */
  #refuseOversized(what: string, platformBytes: number, totalBytes: number, budget: CopyRequest['budget']): void {
    const max = this.#options.maxImageBytes ?? DEFAULT_MAX_IMAGE_BYTES;
    if (platformBytes > max)
      throw new CopyRefused(
        `${what}: its manifests declare ${formatBytes(platformBytes)}${platformBytes < totalBytes ? ' for one platform' : ''}, more than --max-image-size (${formatBytes(max)}); not copied`,
        'image-too-large',
      );
    if (budget !== undefined && totalBytes > budget.bytes)
      throw new CopyRefused(
        `${what}: its manifests declare ${formatBytes(totalBytes)}, more than ${budget.what} (${formatBytes(budget.bytes)}); not copied now`,
        'budget',
      );
  }

  /** Everything the tree references, placed in the target; children of an index pushed by digest. Returns the index's platforms. */
  async #copyContents(work: ImageWork, tree: ManifestTree, what: string): Promise<string[]> {
    await Promise.all(tree.blobs.map((blob) => this.#ensureBlob(work, blob)));
    await mapLimited(tree.children, this.#transfers.perKey, async ({ descriptor, tree: child }) => {
      const childWhat = `${what} (${descriptor.platform ? formatPlatform(descriptor.platform) : descriptor.digest})`;
      await this.#copyContents(work, child, childWhat);
      const there = await this.#call(() => this.#client.headManifest(work.dst, descriptor.digest));
      if (there === undefined) await this.#call(() => this.#client.putManifest(work.dst, descriptor.digest, child.fetched));
    });
    return tree.children.flatMap(({ descriptor: d }) => (d.platform && d.platform.os !== 'unknown' ? [formatPlatform(d.platform)] : []));
  }

  /**
   * What refers to each of `subjects` at the source, copied to the backup after them (./referrers.ts):
   * each referrer's blobs and manifest by digest, then what refers to it in turn; cosign's tags as
   * tags; at a target without the referrers API, its fallback tag kept listing them.
   */
  async #copyReferrers(work: ImageWork, subjects: readonly string[], what: string, depth: number): Promise<void> {
    const policy = this.#referrers;
    const call = <T>(operation: () => Promise<T>) => this.#call(operation, `referrers of ${what}`);
    await mapLimited(subjects, this.#transfers.perKey, async (subject) => {
      const absentUntil = this.#noReferrersApi.get(work.src.registry) ?? 0;
      work.sourceView ??= repositoryView(this.#client, work.src, absentUntil > Date.now(), call);
      const found = await findReferrers(this.#client, work.src, subject, policy, work.sourceView, call);
      if (found.api === false) this.#noReferrersApi.set(work.src.registry, Date.now() + REFERRERS_API_MEMORY_MS);
      /** At the backup, for its fallback tag: each referrer's manifest as copied, or its digest where it was there already. */
      const kept: Array<{ readonly digest: string; readonly manifest?: FetchedManifest }> = [];
      await mapLimited(found.referrers, this.#transfers.perKey, async (referrer) => {
        const referrerWhat = `${what} (${(referrer.artifactType ?? 'referrer').slice(0, 80)} ${referrer.digest})`;
        if (work.referrersSeen.has(referrer.digest)) return;
        if (work.referrersSeen.size >= MAX_REFERRERS) return leaveBehind(work, `more than ${MAX_REFERRERS} referrers in one image; the rest not copied`);
        work.referrersSeen.add(referrer.digest);
        if (await call(() => this.#client.headManifest(work.dst, referrer.digest))) {
          work.referrers.present++;
          kept.push({ digest: referrer.digest });
        } else {
          const tree = await this.#readTree(work, referrer.digest, referrerWhat);
          // What the source lists is a claim: the manifest itself must name this subject.
          if (artifactOf(tree.fetched.bytes).subject !== subject)
            return leaveBehind(work, `${referrerWhat}: listed as a referrer of ${subject}, but does not name it as its subject`);
          if (!policyCopies(policy, referrerDescriptor(tree.fetched)))
            return leaveBehind(work, `${referrerWhat}: listed as a kind --referrers copies, but its manifest says another`);
          if (!this.#withinReferrerBytes(work, tree, referrerWhat)) return;
          await this.#copyContents(work, tree, referrerWhat);
          const pushed = await call(() => this.#client.putManifest(work.dst, referrer.digest, tree.fetched));
          // Learned only from a manifest with a subject: the header means nothing for one without.
          if (!this.#keepsReferrers.has(work.dst.registry)) this.#keepsReferrers.set(work.dst.registry, Promise.resolve(pushed.subjectKept));
          work.referrers.copied++;
          kept.push({ digest: referrer.digest, manifest: tree.fetched });
        }
        if (depth + 1 < MAX_REFERRER_DEPTH) await this.#copyReferrers(work, [referrer.digest], referrerWhat, depth + 1);
      });
      for (const tag of found.cosignTags) await this.#copyTag(work, tag, `${what} (cosign tag ${tag})`);
      if (kept.length > 0 && !(await this.#targetKeepsReferrers(work, subject))) await this.#listUnderFallbackTag(work, subject, kept);
    });
  }

  /** Whether a referrer's declared bytes fit (one referrer, and all of the image's together); said when not. */
  #withinReferrerBytes(work: ImageWork, tree: ManifestTree, what: string): boolean {
    const bytes = declaredBytes(tree);
    if (bytes > MAX_REFERRER_BYTES) {
      leaveBehind(work, `${what}: declares ${formatBytes(bytes)}, more than the ${formatBytes(MAX_REFERRER_BYTES)} a referrer may`);
      return false;
    }
    if (work.referrerBytes + bytes > MAX_IMAGE_REFERRER_BYTES) {
      leaveBehind(work, `${what}: the image's referrers would declare more than ${formatBytes(MAX_IMAGE_REFERRER_BYTES)} together`);
      return false;
    }
    work.referrerBytes += bytes;
    return true;
  }

  /** A tag copied as it is at the source (cosign's `.sig`, which grows as signatures are added), within the referrers' bounds. */
  async #copyTag(work: ImageWork, tag: string, what: string): Promise<void> {
    const [at, there] = await Promise.all([
      this.#call(() => this.#client.headManifest(work.src, tag)),
      this.#call(() => this.#client.headManifest(work.dst, tag)),
    ]);
    if (at === undefined) return;
    if (there?.digest === at.digest) {
      work.referrers.present++;
      return;
    }
    const tree = await this.#readTree(work, at.digest, what);
    if (tree.children.length > 0) return leaveBehind(work, `${what}: an index, not a cosign signature, attestation or SBOM`);
    if (!this.#withinReferrerBytes(work, tree, what)) return;
    await this.#copyContents(work, tree, what);
    await this.#call(() => this.#client.putManifest(work.dst, tag, tree.fetched));
    work.referrers.copied++;
  }

  /** Whether the target lists referrers itself: learned from a push, else asked once per registry. */
  #targetKeepsReferrers(work: ImageWork, subject: string): Promise<boolean> {
    let known = this.#keepsReferrers.get(work.dst.registry);
    if (known === undefined) {
      known = this.#call(() => this.#client.listReferrers(work.dst, subject)).then((listed) => listed !== undefined);
      known.catch(() => this.#keepsReferrers.delete(work.dst.registry));
      this.#keepsReferrers.set(work.dst.registry, known);
    }
    return known;
  }

  /**
   * The spec's fallback at a target without the referrers API: the `sha256-<hex>` index lists them,
   * merged with what it listed, each entry made from the manifest itself at the backup (never from
   * what the source said of it), at most MAX_REFERRERS entries.
   */
  async #listUnderFallbackTag(
    work: ImageWork,
    subject: string,
    referrers: ReadonlyArray<{ readonly digest: string; readonly manifest?: FetchedManifest }>,
  ): Promise<void> {
    const tag = digestTag(subject);
    if (tag === work.tag)
      return leaveBehind(work, `the referrers of ${subject} are not listed under the tag ${tag}: that tag keeps the digest-pinned backup itself`);
    const at = await readFallbackTag(this.#client, work.dst, subject, (operation) => this.#call(operation));
    if (at.holds === 'image')
      return leaveBehind(work, `the referrers of ${subject} are not listed under the tag ${tag}: it holds an image, not a referrers index`);
    const listed = at.holds === 'referrers' ? at.listed : [];
    const missing = referrers.filter((r) => !listed.some((l) => l.digest === r.digest));
    if (missing.length === 0) return;
    const room = Math.max(0, MAX_REFERRERS - listed.length);
    if (missing.length > room) leaveBehind(work, `the fallback tag ${tag} lists ${listed.length} referrers already; ${missing.length - room} more not listed`);
    const added: ReferrerDescriptor[] = [];
    for (const r of missing.slice(0, room)) {
      const manifest = r.manifest ?? (await this.#call(() => this.#client.getManifest(work.dst, r.digest)));
      added.push(referrerDescriptor(manifest));
    }
    if (added.length === 0) return;
    const bytes = referrersIndex([...listed, ...added]);
    await this.#call(() => this.#client.putManifest(work.dst, tag, { bytes, mediaType: MediaType.ociIndex, digest: digestOf(bytes) }));
  }

  async #ensureBlob(work: ImageWork, blob: Descriptor): Promise<void> {
    const how = await this.#landBlob(work, blob);
    work.stats[how]++;
    if (how === 'transferred') work.stats.bytesTransferred += blob.size;
    this.#options.onBlob?.(how, how === 'transferred' ? blob.size : 0);
  }

  /**
   * Places one blob in `dst`, reusing a transfer of the same blob from the same source registry to
   * the same target (another source naming the same digest may be hostile and slow: never waited on).
   */
  async #landBlob(work: ImageWork, blob: Descriptor): Promise<BlobHow> {
    const { src, dst } = work;
    const key = `${dst.registry}|${src.registry}|${blob.digest}`;
    const prior = this.#landed.get(key);
    if (prior === undefined || Date.now() - prior.at > BLOB_MEMORY_MS) {
      const placing = this.#placeBlob(work, blob);
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
    return this.#placeBlob(work, blob);
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

  async #placeBlob(work: ImageWork, blob: Descriptor): Promise<BlobHow> {
    const { src, dst } = work;
    if (await this.#call(() => this.#client.hasBlob(dst, blob.digest))) return 'present';
    if (src.registry === dst.registry && (await this.#call(() => this.#client.mountBlob(dst, blob.digest, src.repository)))) return 'mounted';
    const what = `blob ${blob.digest} of ${repoName(src)}`;
    await this.#transfers.run(work.share, async () => {
      work.abandoned.throwIfAborted();
      // From when the blob has a slot: its size at the floor rate, plus a grace; retries included.
      const rate = this.#options.minBytesPerSecond ?? DEFAULT_MIN_BYTES_PER_SECOND;
      const allowedMs = (this.#options.blobGraceMs ?? DEFAULT_BLOB_GRACE_MS) + Math.ceil((blob.size / rate) * 1000);
      const limit = deadline(
        allowedMs,
        () =>
          new RegistryError(
            `${what} (${formatBytes(blob.size)}): not copied within ${Math.round(allowedMs / 1000)} s, slower than the floor of ${formatBytes(rate)}/s (--min-copy-rate); abandoned, retried later`,
          ),
      );
      try {
        await this.#call(async () => {
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
              signal: AbortSignal.any([limit.signal, work.abandoned]),
            });
          } catch (error) {
            if (session) await this.#client.cancelUpload(session).catch(() => undefined);
            throw error;
          }
        }, what);
      } finally {
        limit.clear();
      }
    });
    return 'transferred';
  }

  #call<T>(operation: () => Promise<T>, what = 'registry request'): Promise<T> {
    return withRetries(operation, this.#retry, (event) => this.#options.onRetry?.(what, event));
  }
}

/** What one platform of the image declares: an image manifest's own total, or an index's largest child's. */
function largestPlatformBytes(tree: ManifestTree): number {
  if (tree.children.length === 0) return declaredBytes(tree);
  return tree.fetched.bytes.length + Math.max(...tree.children.map((child) => largestPlatformBytes(child.tree)));
}

/** Every manifest's bytes and every distinct blob's declared size. */
function declaredBytes(tree: ManifestTree): number {
  const seen = new Set<string>();
  const walk = (node: ManifestTree): number =>
    node.fetched.bytes.length +
    node.blobs.reduce((sum, blob) => sum + (seen.has(blob.digest) || !seen.add(blob.digest) ? 0 : blob.size), 0) +
    node.children.reduce((sum, child) => sum + walk(child.tree), 0);
  return walk(tree);
}

/** At most this many reasons a referrer was left behind, per image (a hostile list could name thousands). */
const MAX_LEFT_BEHIND = 10;

/** A referrer not copied, and why: said in the result, a few at most. */
function leaveBehind(work: ImageWork, why: string): void {
  const skipped = work.referrers.skipped;
  if (skipped.length < MAX_LEFT_BEHIND) skipped.push(why.slice(0, 300));
  else if (skipped.length === MAX_LEFT_BEHIND) skipped.push('more referrers left behind; not listed');
}

/** A referrers list's entry for a manifest, made from its own bytes: its media type, digest, size, artifact type and (bounded) annotations. */
function referrerDescriptor(manifest: FetchedManifest): ReferrerDescriptor {
  const { artifactType, annotations } = artifactOf(manifest.bytes);
  const bounded = annotations && JSON.stringify(annotations).length <= MAX_ANNOTATION_BYTES ? annotations : undefined;
  return {
    mediaType: manifest.mediaType,
    digest: manifest.digest,
    size: manifest.bytes.length,
    ...(artifactType ? { artifactType: artifactType.slice(0, 255) } : {}),
    ...(bounded ? { annotations: bounded } : {}),
  };
}

/** The digest of every manifest of the image: each can have referrers (a signature of the index, an SBOM per platform). */
function manifestDigests(tree: ManifestTree): string[] {
  return [tree.fetched.digest, ...tree.children.flatMap((child) => manifestDigests(child.tree))];
}

function dedupeDescriptors(descriptors: readonly Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((d) => !seen.has(d.digest) && seen.add(d.digest) !== undefined);
}
