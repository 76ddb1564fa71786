/**
 * A real Gitea on 127.0.0.1 with SQLite, for the pull-request flow: built once from the Go module
 * proxy (scripts/build-gitea.sh, cached), configured with an admin user and an API token through
 * Gitea's own CLI. Gitea refuses to run as root unless told; CI runs as root, so it is told.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { request } from 'undici';
import { BIN_DIR } from './cache.ts';
import { freePort, startDaemon, waitFor } from './process.ts';

export const GITEA_VERSION = 'v1.24.6';
const BUILD_SCRIPT = resolve(import.meta.dirname, '../scripts/build-gitea.sh');

export interface Gitea {
  readonly url: string;
  readonly user: string;
  readonly password: string;
  readonly token: string;
  /** Creates a repository owned by the admin user, with `files` on `main`; returns its clone URL. */
  createRepository(name: string): Promise<string>;
  /** An API call as the admin, or (`as`) as another user through Gitea's `Sudo` header. */
  api(method: 'GET' | 'POST' | 'PATCH', path: string, body?: object, as?: string): Promise<unknown>;
  /** A GET of the API that answers text (a pull request's .diff). */
  text(path: string): Promise<string>;
  /** Merges a pull request as a reviewer would, once Gitea has checked that it can be merged. */
  merge(repository: string, number: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Gitea's translations and templates. Built without the `bindata` tag (which needs generated
 * sources), Gitea reads them from disk: from the module source the build downloaded.
 */
function giteaSource(): string {
  const modules = execFileSync('go', ['env', 'GOMODCACHE'], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/local/go/bin` },
  }).trim();
  return join(modules, `code.gitea.io/gitea@${GITEA_VERSION}`);
}

export function giteaBinary(): string {
  const path = join(BIN_DIR, `gitea-${GITEA_VERSION}`);
  if (!existsSync(path)) execFileSync('bash', [BUILD_SCRIPT], { stdio: ['ignore', 'ignore', 'inherit'] });
  return path;
}

export async function startGitea(dir: string): Promise<Gitea> {
  const binary = giteaBinary();
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const config = join(dir, 'app.ini');
  const random = () => Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
  writeFileSync(
    config,
    [
      'APP_NAME = image-clone test forge',
      'RUN_MODE = prod',
      `RUN_USER = ${process.env.USER ?? 'root'}`,
      `WORK_PATH = ${dir}`,
      'I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true',
      '[database]',
      'DB_TYPE = sqlite3',
      `PATH = ${join(dir, 'gitea.db')}`,
      '[repository]',
      `ROOT = ${join(dir, 'repositories')}`,
      'DEFAULT_BRANCH = main',
      '[server]',
      `STATIC_ROOT_PATH = ${giteaSource()}`,
      'PROTOCOL = http',
      'HTTP_ADDR = 127.0.0.1',
      `HTTP_PORT = ${port}`,
      `ROOT_URL = ${url}/`,
      'DISABLE_SSH = true',
      'OFFLINE_MODE = true',
      `APP_DATA_PATH = ${join(dir, 'data')}`,
      'LFS_START_SERVER = false',
      '[security]',
      'INSTALL_LOCK = true',
      `SECRET_KEY = ${random()}`,
      `INTERNAL_TOKEN = ${random()}${random()}`,
      '[service]',
      'DISABLE_REGISTRATION = true',
      'REQUIRE_SIGNIN_VIEW = false',
      '[oauth2]',
      'ENABLED = false',
      '[log]',
      'MODE = console',
      'LEVEL = Warn',
      '[cron]',
      'ENABLED = false',
      '[indexer]',
      'REPO_INDEXER_ENABLED = false',
      '',
    ].join('\n'),
  );
  const cli = (...args: string[]) =>
    execFileSync(binary, [...args, '--config', config], { cwd: dir, encoding: 'utf8', env: { ...process.env, GITEA_WORK_DIR: dir } }).trim();
  cli('migrate');
  const user = 'image-clone-bot';
  // Gitea generates the password, so it never appears in a process argument.
  const created = cli(
    'admin',
    'user',
    'create',
    '--admin',
    '--username',
    user,
    '--random-password',
    '--email',
    'bot@example.com',
    '--must-change-password=false',
  );
  const password = /generated random password is '([^']+)'/.exec(created)?.[1];
  if (!password) throw new Error(`gitea did not report the generated password: ${created.replace(/password is '[^']*'/, "password is '…'")}`);
  const token = cli('admin', 'user', 'generate-access-token', '--username', user, '--token-name', 'image-clone', '--scopes', 'all', '--raw').split('\n').pop()!;
  const daemon = startDaemon(binary, ['web', '--config', config], { cwd: dir, env: { ...process.env, GITEA_WORK_DIR: dir } });
  try {
    await waitFor(
      `gitea on ${url}`,
      async () => {
        const response = await request(`${url}/api/v1/version`);
        await response.body.dump();
        return response.statusCode === 200;
      },
      60_000,
      daemon.child,
    );
  } catch (error) {
    await daemon.stop();
    throw new Error(`${(error as Error).message}\n${daemon.output()}`);
  }
  const api = async (method: 'GET' | 'POST' | 'PATCH', path: string, body?: object, as?: string) => {
    const response = await request(`${url}/api/v1${path}`, {
      method,
      headers: { authorization: `token ${token}`, 'content-type': 'application/json', ...(as ? { sudo: as } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await response.body.text();
    if (response.statusCode >= 300) throw new Error(`gitea ${method} ${path}: ${response.statusCode} ${text}`);
    return text ? JSON.parse(text) : undefined;
  };
  return {
    url,
    user,
    password,
    token,
    api,
    async text(path) {
      const response = await request(`${url}/api/v1${path}`, { headers: { authorization: `token ${token}` } });
      const body = await response.body.text();
      if (response.statusCode >= 300) throw new Error(`gitea GET ${path}: ${response.statusCode} ${body}`);
      return body;
    },
    async merge(repository, number) {
      // Gitea checks a new pull request's mergeability in the background and answers 405 "Please try
      // again later" until it has: asked again for up to 30 s.
      for (let waited = 0; ; waited += 250) {
        try {
          await api('POST', `/repos/${user}/${repository}/pulls/${number}/merge`, { Do: 'merge' });
          return;
        } catch (error) {
          if (!/: 405 .*try again later/i.test((error as Error).message) || waited >= 30_000) throw error;
          await new Promise((resolve) => setTimeout(resolve, 250));
        }
      }
    },
    async createRepository(name) {
      await api('POST', '/user/repos', { name, auto_init: true, default_branch: 'main', private: false });
      return `${url}/${user}/${name}.git`;
    },
    stop: () => daemon.stop(),
  };
}

/** For tests that only run where the build is possible. */
export function giteaAvailable(): boolean {
  return existsSync(join(BIN_DIR, `gitea-${GITEA_VERSION}`));
}
