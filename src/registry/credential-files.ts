/**
 * Registry credentials from files, reloaded when they change (chokidar), without a restart:
 *  - a Docker `config.json` (`--auth-file`);
 *  - a mounted Secret directory (`--registry-secret-dir`), holding either the original
 *    controller's keys `docker-server`, `docker-username`, `docker-password`, or a
 *    `kubernetes.io/dockerconfigjson` Secret's `.dockerconfigjson`.
 * A reload that fails (a half-written or malformed file) keeps the previous credentials and logs
 * why; Kubernetes swaps Secret volumes atomically, so the next event brings the complete set.
 */
import { holdSecret } from '../observability/secrets.ts';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { watch, type FSWatcher } from 'chokidar';
import { ConfigError, describeError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { CredentialStore, normaliseRegistryKey, type Credential } from './credentials.ts';

export interface CredentialFilesOptions {
  readonly authFile?: string;
  readonly secretDir?: string;
  readonly logger: Logger;
}

/** Reads the credentials of a mounted registry Secret directory. */
export function loadSecretDir(dir: string): CredentialStore {
  const file = (name: string) => join(dir, name);
  for (const name of ['.dockerconfigjson', 'config.json']) {
    if (existsSync(file(name))) return CredentialStore.fromDockerConfig(readFileSync(file(name), 'utf8'), file(name));
  }
  const keys = ['docker-server', 'docker-username', 'docker-password'] as const;
  const present = keys.filter((k) => existsSync(file(k)));
  if (present.length === 0) return CredentialStore.empty();
  if (present.length !== keys.length) {
    throw new ConfigError(`the registry Secret in ${dir} has ${present.join(', ')} but not ${keys.filter((k) => !present.includes(k)).join(', ')}`);
  }
  const [server, username, password] = keys.map((k) => readFileSync(file(k), 'utf8').trim()) as [string, string, string];
  holdSecret(password);
  const credential: Credential = { username, password };
  return new CredentialStore([[normaliseRegistryKey(server), credential]]);
}

export class CredentialFiles {
  readonly #options: CredentialFilesOptions;
  #store: CredentialStore;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;

  constructor(options: CredentialFilesOptions) {
    this.#options = options;
    this.#store = this.#load();
  }

  /** The credentials as of the last successful load. */
  current(): CredentialStore {
    return this.#store;
  }

  async watch(): Promise<void> {
    const paths = [this.#options.authFile, this.#options.secretDir].filter((p): p is string => p !== undefined);
    if (paths.length === 0) return;
    this.#watcher = watch(paths, { ignoreInitial: true, depth: 1, followSymlinks: true });
    this.#watcher.on('all', () => {
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(() => this.reload(), 200);
    });
    await new Promise<void>((resolve) => this.#watcher!.once('ready', () => resolve()));
  }

  reload(): void {
    try {
      this.#store = this.#load();
      this.#options.logger.info('registry credentials reloaded', { registries: this.#store.size });
    } catch (error) {
      this.#options.logger.error('registry credentials not reloaded; keeping the previous ones', { error: describeError(error) });
    }
  }

  async close(): Promise<void> {
    clearTimeout(this.#debounce);
    await this.#watcher?.close();
  }

  #load(): CredentialStore {
    const stores: CredentialStore[] = [];
    if (this.#options.authFile !== undefined) stores.push(CredentialStore.fromFile(this.#options.authFile));
    if (this.#options.secretDir !== undefined) stores.push(loadSecretDir(this.#options.secretDir));
    return CredentialStore.merge(stores);
  }
}
