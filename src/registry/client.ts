/**
 * The OCI Distribution API calls the copy engine needs, each one authenticated and mapped to a
 * clear RegistryError: manifests (HEAD, GET, PUT), blobs (HEAD, streamed GET, cross-repository
 * mount, upload sessions). The bytes of a blob move in ./blob-transfer.ts.
 */
import type { Readable } from 'node:stream';
import { RegistryError } from '../errors.ts';
import { parseRetryAfter } from '../util/retry.ts';
import { repositoryScope, type Authenticator } from './auth.ts';
import { digestOf } from './digest.ts';
import type { PullQuotas, QuotaAnswer } from './pull-quota.ts';
import { MANIFEST_ACCEPT, MediaType, parseReferrers, type ReferrerDescriptor } from './manifest.ts';
import { redactUrl, type Headers, type SendResponse, type Transport } from './transport.ts';
import { readBounded } from '../util/bounded-body.ts';

export interface Repo {
  readonly registry: string;
  readonly repository: string;
}

export interface ManifestHead {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

/** A URL and the Authorization header that goes with it. */
export interface BlobEndpoint {
  readonly url: string;
  readonly authorization: string | undefined;
}

export interface UploadSession extends BlobEndpoint {
  readonly repo: Repo;
  /** The session's Location, for DELETE. */
  readonly cancelUrl: string;
}

export interface FetchedManifest {
  readonly bytes: Buffer;
  readonly mediaType: string;
  readonly digest: string;
}

const PULL = ['pull'] as const;
const PULL_PUSH = ['pull', 'push'] as const;
const ERROR_BODY_LIMIT = 4096;
const MiB = 1024 * 1024;
/** Distribution's limit for a manifest (and the OCI spec's minimum a registry should accept). */
const MANIFEST_MAX_BYTES = 4 * MiB;
/** Tags read from one repository's listing; past that, tags are asked one by one instead (a registry may hold a tag per build). */
const MAX_LISTED_TAGS = 20_000;
const TAG_PAGES = 50;
const TAG_LIST_BYTES = 4 * MiB;
const TAG = /^[\w][\w.-]{0,127}$/;
/** Pages of one referrers list (a real image has a handful of referrers: one page). */
const REFERRER_PAGES = 8;

export function repoName(repo: Repo): string {
  return `${repo.registry}/${repo.repository}`;
}

export class RegistryClient {
  readonly #transport: Transport;
  readonly #auth: Authenticator;
  /** Registries' pull quotas (./pull-quota.ts): a manifest GET takes a pull first; every manifest answer says what is left. */
  readonly #quotas: PullQuotas | undefined;

  constructor(transport: Transport, auth: Authenticator, quotas?: PullQuotas) {
    this.#transport = transport;
    this.#auth = auth;
    this.#quotas = quotas;
  }

  /** Digest and media type of a manifest, or undefined when the registry does not have it. */
  async headManifest(repo: Repo, selector: string): Promise<ManifestHead | undefined> {
    const what = `HEAD manifest ${at(repo, selector)}`;
    const response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL)], {
      method: 'HEAD',
      path: `/manifests/${selector}`,
      headers: { accept: MANIFEST_ACCEPT },
      what,
    });
    await response.body.dump().catch(() => undefined);
    this.#quotas?.observe(repo.registry, quotaAnswer(response));
    if (response.status === 404) return undefined;
    if (response.status !== 200) throw await failure(response, what);
    const digest = response.headers['docker-content-digest'];
    const mediaType = contentType(response);
    // Some registries omit the digest on HEAD; the bytes are the only truth then.
    if (digest === undefined || mediaType === undefined) {
      const fetched = await this.getManifest(repo, selector);
      return { digest: fetched.digest, mediaType: fetched.mediaType, size: fetched.bytes.length };
    }
    return { digest, mediaType, size: Number(response.headers['content-length'] ?? 0) };
  }

  /** The manifest's original bytes, checked against the digest asked for or announced. */
  /** `share`: whom a pull is for, where a registry's quota is split among namespaces (./pull-quota.ts). */
  async getManifest(repo: Repo, selector: string, signal?: AbortSignal, share?: string): Promise<FetchedManifest> {
    const what = `GET manifest ${at(repo, selector)}`;
    // One pull taken from the registry's quota first; its answer says what is left.
    const answered = await this.#quotas?.admit(repo.registry, signal, share);
    let response: SendResponse;
    try {
      response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL)], {
        method: 'GET',
        path: `/manifests/${selector}`,
        headers: { accept: MANIFEST_ACCEPT },
        what,
        ...(signal ? { signal } : {}),
      });
    } catch (error) {
      answered?.();
      throw error;
    }
    answered?.(quotaAnswer(response));
    // Past a quota for longer than a wait in place: deferred with when to try again, not retried at
    // once (each try would count). A short Retry-After is a failure the retry policy waits out.
    const deferred = response.status === 429 ? this.#quotas?.deferral(repo.registry) : undefined;
    if (deferred) {
      await response.body.dump().catch(() => undefined);
      throw deferred;
    }
    if (response.status === 404) {
      const detail = await errorDetail(response);
      throw new RegistryError(`${at(repo, selector)} not found (HTTP 404${detail})`, { status: 404 });
    }
    if (response.status !== 200) throw await failure(response, what);
    const bytes = await readBounded(response.body, MANIFEST_MAX_BYTES);
    if (bytes === undefined)
      throw new RegistryError(
        `${what}: the manifest is larger than ${MANIFEST_MAX_BYTES / MiB} MiB, the most registries accept (a broken or hostile registry?)`,
      );
    const mediaType = contentType(response) ?? '';
    const expected = selector.includes(':') ? selector : response.headers['docker-content-digest'];
    const digest = digestOf(bytes, expected ?? 'sha256:');
    if (expected !== undefined && digest !== expected) {
      throw new RegistryError(`${what}: the manifest's content digest ${digest} does not match ${expected}`);
    }
    return { bytes, mediaType, digest };
  }

  /**
   * Pushes a manifest's original bytes under a tag or digest. Returns the digest the registry
   * computed, and for a manifest with a `subject` whether the registry keeps its referrers itself
   * (it answered with `OCI-Subject`, OCI 1.1): if not, the client maintains the fallback tag.
   */
  async putManifest(repo: Repo, selector: string, manifest: FetchedManifest): Promise<{ digest: string; subjectKept: boolean }> {
    const what = `PUT manifest ${at(repo, selector)}`;
    const response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL_PUSH)], {
      method: 'PUT',
      path: `/manifests/${selector}`,
      headers: { 'content-type': manifest.mediaType, 'content-length': String(manifest.bytes.length) },
      body: manifest.bytes,
      what,
    });
    if (response.status !== 201 && response.status !== 200) throw await failure(response, what);
    await response.body.dump().catch(() => undefined);
    const digest = response.headers['docker-content-digest'] ?? manifest.digest;
    if (digest !== manifest.digest) {
      throw new RegistryError(`${what}: the registry stored digest ${digest}, not the source's ${manifest.digest}`);
    }
    return { digest, subjectKept: response.headers['oci-subject'] !== undefined };
  }

  /**
   * What refers to `digest` (OCI 1.1 referrers API: signatures, SBOMs, attestations), or undefined
   * when the registry has no such API (it answers the route 404 or 405: look under the fallback
   * tag). `artifactType` asks the registry to filter; a registry that did not is filtered here.
   * Pages (`Link: <…>; rel="next"`) are followed on the same registry, at most REFERRER_PAGES.
   */
  async listReferrers(repo: Repo, digest: string, artifactType?: string): Promise<ReferrerDescriptor[] | undefined> {
    const what = `GET referrers of ${repoName(repo)}@${digest}`;
    const base = this.#transport.baseUrl(repo.registry);
    let url: string | undefined = `${base}/${repo.repository}/referrers/${digest}${artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : ''}`;
    const found: ReferrerDescriptor[] = [];
    for (let page = 0; url !== undefined; page++) {
      if (page === REFERRER_PAGES) throw new RegistryError(`${what}: more than ${REFERRER_PAGES} pages of referrers; not copied`);
      const response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL)], {
        method: 'GET',
        url,
        headers: { accept: MediaType.ociIndex },
        what,
      });
      if (page === 0 && (response.status === 404 || response.status === 405)) {
        await response.body.dump().catch(() => undefined);
        return undefined;
      }
      if (response.status !== 200) throw await failure(response, what);
      const bytes = await readBounded(response.body, MANIFEST_MAX_BYTES);
      if (bytes === undefined) throw new RegistryError(`${what}: the referrers list is larger than ${MANIFEST_MAX_BYTES / MiB} MiB`);
      const listed = parseReferrers(bytes, what);
      const filtered = artifactType !== undefined && !String(response.headers['oci-filters-applied'] ?? '').includes('artifactType');
      found.push(...(filtered ? listed.filter((r) => r.artifactType === artifactType) : listed));
      url = nextPage(response, base, what);
    }
    return found;
  }

  /**
   * The repository's tags (`GET /tags/list`, pages followed on the same registry), or undefined
   * where the registry does not list them (401, 403, 404, 405) or lists more than a reader should
   * hold (MAX_LISTED_TAGS tags, TAG_PAGES pages, TAG_LIST_BYTES in all): then tags are asked one by one.
   */
  async listTags(repo: Repo): Promise<string[] | undefined> {
    const what = `GET tags of ${repoName(repo)}`;
    const base = this.#transport.baseUrl(repo.registry);
    let url: string | undefined = `${base}/${repo.repository}/tags/list?n=1000`;
    const tags: string[] = [];
    let bytesRead = 0;
    for (let page = 0; url !== undefined; page++) {
      if (page === TAG_PAGES) return undefined;
      let response: SendResponse;
      try {
        response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL)], { method: 'GET', url, what });
      } catch (error) {
        if (error instanceof RegistryError && (error.status === 401 || error.status === 403)) return undefined;
        throw error;
      }
      if (response.status === 404 || response.status === 405) {
        await response.body.dump().catch(() => undefined);
        return undefined;
      }
      if (response.status !== 200) throw await failure(response, what);
      const bytes = await readBounded(response.body, TAG_LIST_BYTES - bytesRead);
      if (bytes === undefined) return undefined;
      bytesRead += bytes.length;
      let listed: unknown;
      try {
        listed = (JSON.parse(bytes.toString('utf8')) as { tags?: unknown }).tags;
      } catch {
        throw new RegistryError(`${what}: the tag list is not valid JSON`);
      }
      if (listed !== null && listed !== undefined && !Array.isArray(listed)) throw new RegistryError(`${what}: the tag list is not a list`);
      // Only what can be a tag (the distribution spec's grammar, at most 128 characters).
      tags.push(...((listed as unknown[] | null) ?? []).filter((t): t is string => typeof t === 'string' && TAG.test(t)));
      if (tags.length > MAX_LISTED_TAGS) return undefined;
      url = nextPage(response, base, what);
    }
    return tags;
  }

  async hasBlob(repo: Repo, digest: string): Promise<boolean> {
    const what = `HEAD blob ${repoName(repo)}@${digest}`;
    const response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL)], { method: 'HEAD', path: `/blobs/${digest}`, what });
    await response.body.dump().catch(() => undefined);
    if (response.status === 200) return true;
    if (response.status === 404) return false;
    throw await failure(response, what);
  }

  /** A small blob (a Helm chart, a config) read whole, its digest checked; refused past `limit` bytes. */
  async readBlob(repo: Repo, digest: string, limit: number): Promise<Buffer> {
    const what = `GET blob ${repoName(repo)}@${digest}`;
    const { url, authorization } = await this.blobSource(repo, digest);
    const response = await this.#transport.send({ method: 'GET', url, headers: { authorization }, what });
    if (response.status !== 200) throw await failure(response, what);
    const bytes = await readBounded(response.body, limit);
    if (bytes === undefined) throw new RegistryError(`${what}: larger than ${limit} bytes`);
    if (digestOf(bytes, digest) !== digest) throw new RegistryError(`${what}: the content does not match its digest`);
    return bytes;
  }

  /** Where and how to GET a blob: its URL and the Authorization for it (for a blob transfer). */
  async blobSource(repo: Repo, digest: string): Promise<BlobEndpoint> {
    return {
      url: `${this.#transport.baseUrl(repo.registry)}/${repo.repository}/blobs/${digest}`,
      authorization: await this.#auth.authorization(repo.registry, [repositoryScope(repo.repository, PULL)]),
    };
  }

  /**
   * Asks the registry to link a blob from another repository it holds. True when mounted (201);
   * false when the registry offered an upload instead (202, session cancelled) or refused.
   */
  async mountBlob(repo: Repo, digest: string, from: string): Promise<boolean> {
    const what = `mount blob ${digest} from ${from} into ${repoName(repo)}`;
    const query = new URLSearchParams({ mount: digest, from });
    let response: SendResponse;
    try {
      response = await this.#exchange(repo, [repositoryScope(repo.repository, PULL_PUSH), repositoryScope(from, PULL)], {
        method: 'POST',
        path: `/blobs/uploads/?${query}`,
        headers: { 'content-length': '0' },
        what,
      });
    } catch (error) {
      // No read access to the other repository: not an error, just no shortcut.
      if (error instanceof RegistryError && (error.status === 401 || error.status === 403)) return false;
      throw error;
    }
    await response.body.dump().catch(() => undefined);
    if (response.status === 201) return true;
    if (response.status === 202) {
      const cancelUrl = uploadLocation(this.#transport.baseUrl(repo.registry), response, what).toString();
      await this.cancelUpload({ repo, url: cancelUrl, cancelUrl, authorization: undefined }).catch(() => undefined);
      return false;
    }
    if (response.status === 401 || response.status === 403 || response.status === 404) return false;
    throw await failure(response, what);
  }

  /**
   * Opens an upload session and returns where to PUT the blob, with `digest` set, so that one PUT
   * with an explicit Content-Length completes it (chunked transfer encoding is slow or broken on
   * several registries).
   */
  async startUpload(repo: Repo, digest: string): Promise<UploadSession> {
    const scopes = [repositoryScope(repo.repository, PULL_PUSH)];
    const what = `start upload of blob ${digest} to ${repoName(repo)}`;
    const start = await this.#exchange(repo, scopes, { method: 'POST', path: '/blobs/uploads/', headers: { 'content-length': '0' }, what });
    await start.body.dump().catch(() => undefined);
    if (start.status !== 202) throw await failure(start, what);
    const location = uploadLocation(this.#transport.baseUrl(repo.registry), start, what);
    const cancelUrl = location.toString();
    location.searchParams.set('digest', digest);
    return { repo, url: location.toString(), cancelUrl, authorization: await this.#auth.authorization(repo.registry, scopes) };
  }

  /** Abandons an upload session (best effort: registries also expire them). */
  async cancelUpload(session: UploadSession): Promise<void> {
    const response = await this.#exchange(session.repo, [repositoryScope(session.repo.repository, PULL_PUSH)], {
      method: 'DELETE',
      url: session.cancelUrl,
      what: `cancel upload to ${repoName(session.repo)}`,
    });
    await response.body.dump().catch(() => undefined);
  }

  /**
   * One authenticated exchange. A 401 on a request without a stream body is answered once more with
   * fresh credentials and the challenge's scopes (a token may expire or lack a scope).
   */
  async #exchange(
    repo: Repo,
    scopes: readonly string[],
    req: {
      method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE';
      path?: string;
      url?: string;
      headers?: Headers;
      body?: string | Buffer | Readable;
      what: string;
      signal?: AbortSignal;
    },
  ): Promise<SendResponse> {
    const url = req.url ?? `${this.#transport.baseUrl(repo.registry)}/${repo.repository}${req.path ?? ''}`;
    const send = async (scopeSet: readonly string[]) => {
      const authorization = await this.#auth.authorization(repo.registry, scopeSet);
      return this.#transport.send({
        method: req.method,
        url,
        headers: { ...req.headers, authorization },
        ...(req.body === undefined ? {} : { body: req.body }),
        ...(req.signal ? { signal: req.signal } : {}),
        what: req.what,
      });
    };
    let response = await send(scopes);
    const replayable = req.body === undefined || typeof req.body === 'string' || Buffer.isBuffer(req.body);
    if (response.status === 401 && replayable) {
      await response.body.dump().catch(() => undefined);
      const widened = this.#auth.rejected(repo.registry, scopes, response.headers['www-authenticate']);
      response = await send(widened);
    }
    if (response.status === 401) {
      await response.body.dump().catch(() => undefined);
      throw new RegistryError(
        `${req.what}: registry ${repo.registry} refused the credentials (HTTP 401); check the user name and password or token for ${repo.registry}`,
        { status: 401, registry: repo.registry },
      );
    }
    if (response.status === 403) {
      await response.body.dump().catch(() => undefined);
      throw new RegistryError(`${req.what}: registry ${repo.registry} denied access (HTTP 403)`, { status: 403, registry: repo.registry });
    }
    return response;
  }
}

function quotaAnswer(response: SendResponse): QuotaAnswer {
  const retryAfterSeconds = parseRetryAfter(response.headers['retry-after']);
  return { status: response.status, headers: response.headers, ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }) };
}

function at(repo: Repo, selector: string): string {
  return `${repoName(repo)}${selector.includes(':') ? '@' : ':'}${selector}`;
}

function contentType(response: SendResponse): string | undefined {
  return response.headers['content-type']?.split(';')[0]?.trim() || undefined;
}

/** The next page of a list (`Link: <url>; rel="next"`), only on the same registry: a hostile one must not send us elsewhere. */
function nextPage(response: SendResponse, base: string, what: string): string | undefined {
  const link = String(response.headers.link ?? '');
  const next = /<([^>]+)>\s*;\s*rel="?next"?/.exec(link)?.[1];
  if (next === undefined) return undefined;
  const url = new URL(next, base);
  if (url.origin !== new URL(base).origin) throw new RegistryError(`${what}: the next page is on another host (${url.origin}); not followed`);
  return url.href;
}

function uploadLocation(base: string, response: SendResponse, what: string): URL {
  const location = response.headers.location;
  if (location === undefined) throw new RegistryError(`${what}: the registry answered 202 without a Location header`);
  return new URL(location, base);
}

/** The registry's own error code and message, if its body follows the distribution error format. */
async function errorDetail(response: SendResponse): Promise<string> {
  let text = '';
  try {
    for await (const chunk of response.body) {
      text += chunk.toString();
      if (text.length > ERROR_BODY_LIMIT) break;
    }
  } catch {
    return '';
  }
  try {
    const errors = (JSON.parse(text) as { errors?: Array<{ code?: string; message?: string; detail?: unknown }> }).errors;
    const first = errors?.[0];
    // The detail often says what really happened ("no space left on device", "file too large").
    const detail = typeof first?.detail === 'string' && first.detail !== '' ? ` (${first.detail.slice(0, 300)})` : '';
    if (first) return `: ${[first.code, first.message].filter(Boolean).join(' ')}${detail}`;
  } catch {
    // Not JSON: a proxy's HTML page or plain text; the status says enough.
  }
  return '';
}

/** A RegistryError for an unexpected status, retryable for 5xx, 408 and 429 (with Retry-After). */
export async function failure(response: SendResponse, what: string): Promise<RegistryError> {
  // What another origin answered is not repeated: a hostile registry's redirect could otherwise
  // read an internal service's answer into the Event the workload's team sees.
  const detail = response.redirected ? ` from ${redactUrl(response.url)}, where the registry redirected` : await errorDetail(response);
  if (response.redirected) await response.body.dump().catch(() => undefined);
  const status = response.status;
  const retryAfterSeconds = status === 429 || status === 503 ? parseRetryAfter(response.headers['retry-after']) : undefined;
  const limit = response.headers['ratelimit-remaining'] !== undefined ? ` (rate limit remaining: ${response.headers['ratelimit-remaining']})` : '';
  // Distribution in read-only maintenance mode answers every write with 405 and `Allow: GET, HEAD`.
  const allow = response.headers.allow;
  const readOnly =
    status === 405 && allow !== undefined && !/PUT|POST|PATCH/i.test(String(allow))
      ? ` (the registry allows only ${allow}: it takes no pushes now, read-only or a pull-through mirror; retried later)`
      : '';
  return new RegistryError(`${what}: HTTP ${status}${detail}${readOnly}${limit}`, {
    status,
    retryable: status >= 500 || status === 429 || status === 408,
    ...(retryAfterSeconds === undefined ? {} : { retryAfterSeconds }),
  });
}
