/**
 * Registry credentials from a Docker `config.json` (`auths` entries with `auth` or
 * `username`/`password`), the format of a `kubernetes.io/dockerconfigjson` Secret.
 * Credentials are held in memory only and never formatted into a message.
 */
import { holdSecret } from '../observability/secrets.ts';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.ts';

export interface Credential {
  readonly username: string;
  readonly password: string;
}

export class CredentialStore {
  readonly #byRegistry: Map<string, Credential>;

  constructor(entries: Iterable<[string, Credential]> = []) {
    this.#byRegistry = new Map();
    for (const [registry, credential] of entries) this.#byRegistry.set(normaliseRegistryKey(registry), credential);
  }

  static empty(): CredentialStore {
    return new CredentialStore();
  }

  /** Reads a Docker config.json file; `source` names it in errors. */
  static fromFile(path: string): CredentialStore {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new ConfigError(`cannot read the auth file ${path}: ${(error as Error).message}`);
    }
    return CredentialStore.fromDockerConfig(text, path);
  }

  static fromDockerConfig(text: string, source: string): CredentialStore {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw new ConfigError(`the auth file ${source} is not valid JSON`);
    }
    const auths = (parsed as { auths?: unknown } | null)?.auths;
    if (auths === undefined) return new CredentialStore();
    if (typeof auths !== 'object' || auths === null) throw new ConfigError(`"auths" in ${source} must be an object`);
    const entries: Array<[string, Credential]> = [];
    for (const [key, value] of Object.entries(auths as Record<string, unknown>)) {
      const credential = credentialFromEntry(value);
      if (credential === 'invalid') {
        throw new ConfigError(
          `the entry for ${JSON.stringify(key)} in ${source} has neither a valid "auth" (base64 of user:password) nor "username" and "password"`,
        );
      }
      if (credential !== undefined) entries.push([key, credential]);
    }
    return new CredentialStore(entries);
  }

  /** One store from several; a later store wins for the same registry. */
  static merge(stores: readonly CredentialStore[]): CredentialStore {
    return new CredentialStore(stores.flatMap((s) => [...s.#byRegistry]));
  }

  get(registry: string): Credential | undefined {
    return this.#byRegistry.get(normaliseRegistryKey(registry));
  }

  get size(): number {
    return this.#byRegistry.size;
  }
}

function credentialFromEntry(value: unknown): Credential | undefined | 'invalid' {
  if (typeof value !== 'object' || value === null) return 'invalid';
  const entry = value as Record<string, unknown>;
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username !== '') {
    holdSecret(entry.password);
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth === 'string' && entry.auth !== '') {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return 'invalid';
    holdSecret(decoded.slice(colon + 1));
    holdSecret(entry.auth);
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  // An entry with only an identity token or a helper is not ours to use; skip it.
  if (typeof entry.identitytoken === 'string' || Object.keys(entry).length === 0) return undefined;
  return 'invalid';
}

/**
 * `https://index.docker.io/v1/`, `registry-1.docker.io` and `docker.io` are all Docker Hub; other
 * keys may be URLs or bare `host[:port]`.
 */
export function normaliseRegistryKey(key: string): string {
  let host = key.trim().toLowerCase();
  host = host.replace(/^[a-z][a-z0-9+.-]*:\/\//, '');
  host = host.replace(/\/.*$/, '');
  if (host === 'index.docker.io' || host === 'registry-1.docker.io') return 'docker.io';
  return host;
}
