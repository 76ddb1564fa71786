/**
 * Registry authentication: anonymous, Basic, and the Bearer token flow of the distribution token
 * spec. The registry's `WWW-Authenticate` challenge on `GET /v2/` tells which; for Bearer we ask
 * the realm for a token carrying exactly the scopes a request needs (`repository:NAME:pull,push`),
 * and cache it until shortly before it expires.
 */
import { RegistryError } from '../errors.ts';
import type { Credential, CredentialStore } from './credentials.ts';
import { redactUrl, type Transport } from './transport.ts';
import { readBounded } from '../util/bounded-body.ts';

export interface Challenge {
  readonly scheme: string;
  readonly params: Readonly<Record<string, string>>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (quoted or token values, any order). */
export function parseChallenge(header: string | undefined): Challenge | undefined {
  if (header === undefined) return undefined;
  const match = /^\s*([A-Za-z][\w-]*)\s*(.*)$/s.exec(header);
  if (!match) return undefined;
  const params: Record<string, string> = {};
  const paramPattern = /([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?\s*/g;
  for (const [, name = '', quoted, bare] of (match[2] ?? '').matchAll(paramPattern)) {
    params[name.toLowerCase()] = quoted !== undefined ? quoted.replace(/\\(.)/g, '$1') : (bare ?? '');
  }
  return { scheme: (match[1] ?? '').toLowerCase(), params };
}

/** The scope string for a repository and actions: `repository:library/nginx:pull,push`. */
export function repositoryScope(repository: string, actions: readonly ('pull' | 'push')[]): string {
  return `repository:${repository}:${actions.join(',')}`;
}

interface CachedToken {
  readonly value: string;
  readonly expiresAt: number;
}

/** What a registry asked for on `GET /v2/`. */
/** Token servers registries document on a host of their own (the registry's credential may go there). */
const DOCUMENTED_AUTH_HOSTS: Readonly<Record<string, readonly string[]>> = {
  'docker.io': ['auth.docker.io'],
  'registry-1.docker.io': ['auth.docker.io'],
  'index.docker.io': ['auth.docker.io'],
};

/** `host:5000` → `host`, `[::1]:5000` → `[::1]` (as URL.hostname spells it). */
function hostnameOf(registry: string): string {
  try {
    return new URL(`https://${registry}`).hostname;
  } catch {
    return registry;
  }
}

type RegistryAuth = { kind: 'none' } | { kind: 'basic' } | { kind: 'bearer'; realm: string; service: string | undefined };

const TOKEN_EXPIRY_MARGIN_MS = 10_000;
/** A token answer is a few KiB; anything near this is not one. */
const TOKEN_ANSWER_MAX_BYTES = 1024 * 1024;
/** A bearer token is a JWT or an opaque string of a few KiB; one larger is not kept (nor sent). */
export const TOKEN_MAX_BYTES = 16 * 1024;
/** Tokens cached at once (one per registry and scope set). */
export const MAX_TOKENS = 256;
const MAX_TOKEN_LIFETIME_S = 3600;
const DEFAULT_TOKEN_LIFETIME_S = 60;

export class Authenticator {
  readonly #transport: Transport;
  readonly #credentials: () => CredentialStore;
  readonly #registryAuth = new Map<string, Promise<RegistryAuth>>();
  readonly #tokens = new Map<string, Promise<CachedToken>>();
  /** When each cached token expires (once it has arrived), to sweep the expired. */
  readonly #expiries = new Map<string, number>();

  /** `credentials` is a function so that a reloaded auth file takes effect without a restart. */
  constructor(transport: Transport, credentials: () => CredentialStore) {
    this.#transport = transport;
    this.#credentials = credentials;
  }

  /** The Authorization header value for a request to `registry` that needs `scopes`, if any. */
  async authorization(registry: string, scopes: readonly string[]): Promise<string | undefined> {
    const auth = await this.#probe(registry);
    const credential = this.#credentials().get(registry);
    if (auth.kind === 'none') return undefined;
    if (auth.kind === 'basic') return credential === undefined ? undefined : basicHeader(credential);
    const token = await this.#token(registry, auth, scopes, credential);
    return `Bearer ${token}`;
  }

  /**
   * After a 401: forget what we knew (the token may have been revoked, the credentials rotated)
   * and merge any scope the challenge names, so the next authorization() asks afresh.
   */
  rejected(registry: string, scopes: readonly string[], challengeHeader: string | undefined): readonly string[] {
    const challenge = parseChallenge(challengeHeader);
    for (const key of this.#tokens.keys()) if (key.startsWith(`${registry}|`)) this.#tokens.delete(key);
    for (const key of this.#expiries.keys()) if (key.startsWith(`${registry}|`)) this.#expiries.delete(key);
    // The challenge of this request wins over what GET /v2/ said: a registry may leave /v2/ open
    // and ask for a token (or a password) on some repositories only.
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      this.#registryAuth.set(registry, Promise.resolve({ kind: 'bearer', realm: challenge.params.realm, service: challenge.params.service }));
    } else if (challenge?.scheme === 'basic') this.#registryAuth.set(registry, Promise.resolve({ kind: 'basic' }));
    else this.#registryAuth.delete(registry);
    const extra = challenge?.params.scope?.split(' ').filter((s) => s !== '') ?? [];
    return [...new Set([...scopes, ...extra])];
  }

  #probe(registry: string): Promise<RegistryAuth> {
    let probe = this.#registryAuth.get(registry);
    if (probe === undefined) {
      probe = this.#ping(registry);
      this.#registryAuth.set(registry, probe);
      // A failed probe (registry down) must not be cached forever.
      probe.catch(() => this.#registryAuth.delete(registry));
    }
    return probe;
  }

  async #ping(registry: string): Promise<RegistryAuth> {
    const response = await this.#transport.send({ method: 'GET', url: `${this.#transport.baseUrl(registry)}/`, what: `GET /v2/ on ${registry}` });
    await response.body.dump().catch(() => undefined);
    // undici gives the connection back to its pool a turn of the event loop after the body is
    // consumed; the request this probe was made for follows at once, and would otherwise open a
    // second connection (a TCP and a TLS handshake more: two or three round trips over a WAN).
    await new Promise((resolve) => setImmediate(resolve));
    if (response.status === 200) return { kind: 'none' };
    if (response.status !== 401) {
      throw new RegistryError(`registry ${registry} answered GET /v2/ with HTTP ${response.status}; is it an OCI registry?`, {
        status: response.status,
        retryable: response.status >= 500 || response.status === 429,
      });
    }
    const challenge = parseChallenge(response.headers['www-authenticate']);
    if (challenge?.scheme === 'basic') return { kind: 'basic' };
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      return { kind: 'bearer', realm: challenge.params.realm, service: challenge.params.service };
    }
    throw new RegistryError(`registry ${registry} requires authentication but sent no usable WWW-Authenticate challenge`, { status: 401 });
  }

  #token(
    registry: string,
    auth: { realm: string; service: string | undefined },
    scopes: readonly string[],
    credential: Credential | undefined,
  ): Promise<string> {
    const key = `${registry}|${[...scopes].sort().join(' ')}`;
    const cached = this.#tokens.get(key);
    const now = Date.now();
    const fresh = cached ?? this.#fetchToken(registry, auth, scopes, credential);
    if (cached === undefined) {
      this.#tokens.set(key, fresh);
      fresh.then(
        (token) => this.#expiries.set(key, token.expiresAt),
        () => this.#tokens.delete(key),
      );
      this.#bound(now);
    }
    return fresh.then((token) => {
      if (token.expiresAt > now) return token.value;
      this.#tokens.delete(key);
      return this.#token(registry, auth, scopes, credential);
    });
  }

  /**
   * The token cache stays small whatever registries answer: expired tokens are dropped as new ones
   * come, and past MAX_TOKENS the oldest goes (it is asked for again when needed: one request).
   * With tokens of at most TOKEN_MAX_BYTES, the cache holds a few MiB at most.
   */
  #bound(now: number): void {
    for (const [key, expiresAt] of this.#expiries) {
      if (expiresAt > now) continue;
      this.#expiries.delete(key);
      this.#tokens.delete(key);
    }
    while (this.#tokens.size > MAX_TOKENS) {
      const oldest = this.#tokens.keys().next().value!;
      this.#tokens.delete(oldest);
      this.#expiries.delete(oldest);
    }
  }

  async #fetchToken(
    registry: string,
    auth: { realm: string; service: string | undefined },
    scopes: readonly string[],
    credential: Credential | undefined,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(auth.realm);
    } catch {
      throw new RegistryError(`registry ${registry}: its token realm is not a URL`);
    }
    // A credential goes only to the registry's own host (any port) or the auth host it documents;
    // any other realm must be https and is asked without it. Plain http only for an insecure registry's own host.
    const registryHost = hostnameOf(registry);
    const ownRealm = url.hostname === registryHost || (DOCUMENTED_AUTH_HOSTS[registryHost] ?? []).includes(url.hostname);
    if (url.protocol !== 'https:' && !(url.protocol === 'http:' && ownRealm && this.#transport.isInsecure(registry)))
      throw new RegistryError(`registry ${registry}: its token realm ${redactUrl(auth.realm)} is not https on its own host; not asked`);
    if (!ownRealm) credential = undefined;
    if (auth.service !== undefined) url.searchParams.set('service', auth.service);
    for (const scope of scopes) url.searchParams.append('scope', scope);
    const response = await this.#transport.send({
      method: 'GET',
      url: url.toString(),
      headers: { authorization: credential === undefined ? undefined : basicHeader(credential), accept: 'application/json' },
      what: `token request for ${registry}`,
    });
    if (response.status === 401 || response.status === 403) {
      await response.body.dump().catch(() => undefined);
      throw new RegistryError(
        credential === undefined
          ? `registry ${registry}: the token server ${redactUrl(auth.realm)} refused anonymous access (HTTP ${response.status}); configure credentials for ${registry}`
          : `registry ${registry}: the token server ${redactUrl(auth.realm)} refused the credentials of user ${JSON.stringify(credential.username)} (HTTP ${response.status}); check the password or token`,
        { status: response.status, registry },
      );
    }
    if (response.status !== 200) {
      await response.body.dump().catch(() => undefined);
      throw new RegistryError(`registry ${registry}: the token server ${redactUrl(auth.realm)} answered HTTP ${response.status}`, {
        status: response.status,
        retryable: response.status >= 500 || response.status === 429,
      });
    }
    let body: { token?: unknown; access_token?: unknown; expires_in?: unknown; issued_at?: unknown };
    const bytes = await readBounded(response.body, TOKEN_ANSWER_MAX_BYTES);
    if (bytes === undefined)
      throw new RegistryError(
        `registry ${registry}: the token server ${redactUrl(auth.realm)} answered more than ${TOKEN_ANSWER_MAX_BYTES >> 10} KiB, not a token`,
      );
    try {
      body = JSON.parse(bytes.toString('utf8')) as typeof body;
      if (typeof body !== 'object' || body === null) throw new Error('not an object');
    } catch {
      throw new RegistryError(`registry ${registry}: the token server ${redactUrl(auth.realm)} did not answer with JSON`);
    }
    const value = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (value === undefined || value === '') {
      throw new RegistryError(`registry ${registry}: the token server ${redactUrl(auth.realm)} answered without a token`);
    }
    if (value.length > TOKEN_MAX_BYTES)
      throw new RegistryError(
        `registry ${registry}: the token server ${redactUrl(auth.realm)} answered a token of ${value.length} bytes, more than the ${TOKEN_MAX_BYTES >> 10} KiB a token may be`,
      );
    // However long the server says a token lasts, it is asked for again within the hour.
    const lifetime = Math.min(MAX_TOKEN_LIFETIME_S, typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_LIFETIME_S);
    return { value, expiresAt: Date.now() + lifetime * 1000 - TOKEN_EXPIRY_MARGIN_MS };
  }
}

function basicHeader(credential: Credential): string {
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}
