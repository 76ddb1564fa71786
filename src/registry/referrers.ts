/**
 * What travels with an image: its referrers (OCI 1.1), the manifests whose `subject` is one of the
 * image's manifests: signatures, SBOMs, attestations. They are found at the source in the three
 * places tools store them:
 *
 *  - the referrers API (`GET /v2/<name>/referrers/<digest>`), where the registry has one;
 *  - else the fallback tag `sha256-<hex>`, an image index listing them (the spec's tag schema);
 *  - cosign's own tags beside the image, `sha256-<hex>.sig`, `.att` and `.sbom`, copied as tags.
 *
 * The copy engine (./copy.ts) copies each one found, digest for digest, after its subject and
 * before the image's tag, and then what refers to it in turn (a signature of an SBOM). At a
 * destination that keeps referrers itself (it answers a push with `OCI-Subject`) nothing else is
 * needed; at one that does not, the fallback tag there is kept listing them.
 */
import { digestTag } from '../image/backup.ts';
import { repoName, type RegistryClient, type Repo } from './client.ts';
import { isIndexMediaType, parseReferrers, type ReferrerDescriptor } from './manifest.ts';

/** `all`: every referrer and cosign tag; `signatures`: signatures only; `none`: the image alone (as before referrers were copied). */
export type ReferrersMode = 'all' | 'signatures' | 'none';

export interface ReferrersPolicy {
  readonly mode: ReferrersMode;
  /** Only referrers of these artifact types (`--referrer-artifact-type`); unset: every type the mode allows. */
  readonly artifactTypes?: readonly string[];
}

export const DEFAULT_REFERRERS: ReferrersPolicy = { mode: 'all' };

export const REFERRERS_MODES: readonly ReferrersMode[] = ['all', 'signatures', 'none'];

/** The artifact types of signatures: cosign's (OCI 1.1 mode), Notation's, and a Sigstore bundle that signs (not attests). */
const SIGNATURE_TYPES = new Set(['application/vnd.dev.cosign.artifact.sig.v1+json', 'application/vnd.cncf.notary.signature']);
const SIGSTORE_BUNDLE = /^application\/vnd\.dev\.sigstore\.bundle(\.v[\d.]+)?\+json/;
const BUNDLE_PREDICATE = 'dev.sigstore.bundle.predicateType';
const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** cosign's tags beside the image, and the artifact type each holds (an SBOM's varies: none to filter by). */
const COSIGN_TAGS = [
  { suffix: '.sig', artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json', signature: true },
  { suffix: '.att', artifactType: 'application/vnd.dsse.envelope.v1+json', signature: false },
  { suffix: '.sbom', artifactType: undefined, signature: false },
] as const;

/** Whether the policy copies a referrer of this kind. */
export function policyCopies(policy: ReferrersPolicy, referrer: ReferrerDescriptor): boolean {
  if (policy.mode === 'none') return false;
  const type = referrer.artifactType ?? '';
  if (policy.artifactTypes !== undefined && !policy.artifactTypes.includes(type)) return false;
  if (policy.mode === 'all') return true;
  if (SIGNATURE_TYPES.has(type)) return true;
  // cosign v3 stores signatures and attestations alike as bundles; the annotation tells them apart.
  return SIGSTORE_BUNDLE.test(type) && (referrer.annotations?.[BUNDLE_PREDICATE] ?? COSIGN_SIGN_PREDICATE) === COSIGN_SIGN_PREDICATE;
}

export interface FoundReferrers {
  /** The referrers the policy copies, as the source lists them. */
  readonly referrers: readonly ReferrerDescriptor[];
  /** Whether the source answered the referrers API (false: it has none; undefined: not asked). */
  readonly api: boolean | undefined;
  /** cosign's tags for `digest` that the source has and the policy copies. */
  readonly cosignTags: readonly string[];
}

/** What is known of a repository before its referrers are looked for: shared by every subject of one image. */
export interface RepositoryView {
  /** The registry is known to have no referrers API (learned from an earlier answer): it is not asked again. */
  readonly apiAbsent: boolean;
  /** Whether the repository holds a tag, from one listing of its tags, so an absent one costs no request. */
  readonly hasTag: (tag: string) => Promise<boolean>;
}

/**
 * The referrers of `digest` in `repo` that the policy copies: one request where the source has the
 * referrers API; the fallback tag and cosign's tags read only where the repository's tags hold them
 * (a HEAD, then a GET of the fallback index: a HEAD is not a pull where registries count pulls).
 */
export async function findReferrers(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  policy: ReferrersPolicy,
  view: RepositoryView,
  call: <T>(operation: () => Promise<T>) => Promise<T>,
): Promise<FoundReferrers> {
  if (policy.mode === 'none') return { referrers: [], api: undefined, cosignTags: [] };
  const only = policy.artifactTypes?.length === 1 ? policy.artifactTypes[0] : undefined;
  const fromApi = view.apiAbsent ? undefined : await call(() => client.listReferrers(repo, digest, only));
  const atTag = fromApi === undefined ? await readFallbackTag(client, repo, digest, call, view.hasTag) : undefined;
  const listed = fromApi ?? (atTag?.holds === 'referrers' ? atTag.listed : []);
  const cosignTags: string[] = [];
  for (const { suffix, artifactType, signature } of COSIGN_TAGS) {
    if (policy.mode === 'signatures' && !signature) continue;
    if (policy.artifactTypes !== undefined && (artifactType === undefined || !policy.artifactTypes.includes(artifactType))) continue;
    const tag = `${digestTag(digest)}${suffix}`;
    if (await view.hasTag(tag)) cosignTags.push(tag);
  }
  return { referrers: listed.filter((r) => policyCopies(policy, r)), api: view.apiAbsent ? undefined : fromApi !== undefined, cosignTags };
}

/**
 * What the fallback tag of `digest` holds: nothing, an image (a tool's own use of the name: a
 * digest-pinned backup is tagged so), or a referrers index. `hasTag` spares the HEAD where a
 * listing of the tags says it is absent.
 */
export async function readFallbackTag(
  client: RegistryClient,
  repo: Repo,
  digest: string,
  call: <T>(operation: () => Promise<T>) => Promise<T>,
  hasTag?: (tag: string) => Promise<boolean>,
): Promise<{ readonly holds: 'nothing' | 'image' } | { readonly holds: 'referrers'; readonly listed: ReferrerDescriptor[] }> {
  const tag = digestTag(digest);
  if (hasTag && !(await hasTag(tag))) return { holds: 'nothing' };
  const head = await call(() => client.headManifest(repo, tag));
  if (head === undefined) return { holds: 'nothing' };
  if (!isIndexMediaType(head.mediaType)) return { holds: 'image' };
  const index = await call(() => client.getManifest(repo, tag));
  return { holds: 'referrers', listed: parseReferrers(index.bytes, `the referrers of ${repoName(repo)}@${digest} under the tag ${tag}`) };
}

/**
 * A view of `repo` for one image's referrers: its tags listed once (`GET /tags/list`, pages
 * followed; where the registry refuses the listing, each tag is asked by HEAD instead).
 */
export function repositoryView(client: RegistryClient, repo: Repo, apiAbsent: boolean, call: <T>(operation: () => Promise<T>) => Promise<T>): RepositoryView {
  let tags: Promise<ReadonlySet<string> | undefined> | undefined;
  return {
    apiAbsent,
    hasTag: async (tag) => {
      tags ??= call(() => client.listTags(repo)).then((listed) => (listed === undefined ? undefined : new Set(listed)));
      const known = await tags;
      return known === undefined ? (await call(() => client.headManifest(repo, tag))) !== undefined : known.has(tag);
    },
  };
}
