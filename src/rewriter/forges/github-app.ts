/**
 * GitHub App authentication (`--github-app-id`, `--github-app-key-file`): instead of a person's
 * token, the App's installation token, made for the one repository being changed, with only
 * `contents: write` and `pull_requests: write`, and used for both the push (as `x-access-token`) and
 * the pull request. The App's JWT is signed by the octokit family's `universal-github-app-jwt`; the
 * two calls (the repository's installation, a token for it) go through the forge client's HTTP
 * (bounded, retried, the operator's CA), checked in the tests against GitHub's OpenAPI description.
 * A token lives an hour; one is made again when less than 5 minutes of it are left.
 */
import { createPrivateKey } from 'node:crypto';
import type { Dispatcher } from 'undici';
import githubAppJwt from 'universal-github-app-jwt';
import { ConfigError } from '../../errors.ts';
import { forgetSecret, holdSecret } from '../../observability/secrets.ts';
import { ForgeApi, ForgeError } from './http.ts';
import { githubHeaders } from './github.ts';

/** github.com's API: where an App's tokens are made, and (with github.com) the only host they are sent to. */
export const GITHUB_API = 'https://api.github.com';

/** A token this close to its end is not handed out: a push or a pass may take minutes. */
const REFRESH_BEFORE_MS = 5 * 60_000;
/** What the controller's change needs of a repository, and nothing more. */
const PERMISSIONS = { contents: 'write', pull_requests: 'write' } as const;

export interface GitHubAppSettings {
  readonly appId: string;
  /** The App's private key, PEM (PKCS#1 as GitHub hands it out, or PKCS#8). */
  readonly privateKey: string;
  /** The installation, where the operator names it; else found per repository. */
  readonly installationId?: number;
}

/** Checks the settings at start-up: an App id of digits, a private key that parses. */
export function checkGitHubApp(settings: GitHubAppSettings, keyFile: string): GitHubAppSettings {
  if (!/^\d{1,12}$/.test(settings.appId)) throw new ConfigError(`--github-app-id ${JSON.stringify(settings.appId)}: expected the App's numeric id`);
  if (settings.installationId !== undefined && !(Number.isInteger(settings.installationId) && settings.installationId > 0))
    throw new ConfigError('--github-app-installation-id: expected a positive number');
  try {
    const key = createPrivateKey(settings.privateKey);
    if (key.asymmetricKeyType !== 'rsa') throw new Error(`it is an ${key.asymmetricKeyType} key; GitHub Apps sign with RSA`);
  } catch (error) {
    throw new ConfigError(`--github-app-key-file ${keyFile}: not a PEM RSA private key (${(error as Error).message})`);
  }
  return settings;
}

/** Installation tokens of one App, on one GitHub (github.com's API or an Enterprise Server's). */
export class GitHubAppTokens {
  readonly #settings: GitHubAppSettings;
  readonly #api: (jwt: string) => ForgeApi;
  readonly #tokens = new Map<string, { readonly token: string; readonly expiresAt: number }>();
  readonly #installations = new Map<string, number>();
  readonly #now: () => number;

  /** `now`: when the tokens held are judged (the tests move it; the JWT is always made at the present). */
  constructor(settings: GitHubAppSettings, apiBase: string, dispatcher?: Dispatcher, now: () => number = Date.now) {
    this.#settings = settings;
    this.#now = now;
    this.#api = (jwt) =>
      new ForgeApi(
        'GitHub',
        apiBase,
        githubHeaders(jwt),
        'check the App id and key, that the App is installed on the repository, and that it may write contents and pull requests',
        dispatcher,
      );
  }

  /** A token for `owner/name`, valid for at least 5 more minutes. */
  async tokenFor(owner: string, name: string): Promise<string> {
    const key = `${owner}/${name}`;
    const held = this.#tokens.get(key);
    if (held && held.expiresAt - this.#now() > REFRESH_BEFORE_MS) return held.token;
    const api = this.#api(await this.#jwt());
    const installation = this.#settings.installationId ?? (await this.#installationOf(api, owner, name));
    const answer = (await api.call('POST', `/app/installations/${installation}/access_tokens`, { repositories: [name], permissions: PERMISSIONS })) as {
      token?: unknown;
      expires_at?: unknown;
    };
    const expiresAt = typeof answer.expires_at === 'string' ? Date.parse(answer.expires_at) : Number.NaN;
    if (typeof answer.token !== 'string' || answer.token === '' || Number.isNaN(expiresAt))
      throw new ForgeError(`GitHub answered the installation token request for ${key} without a token and its expiry`);
    holdSecret(answer.token);
    forgetWhenExpired(answer.token, expiresAt - Date.now());
    this.#tokens.set(key, { token: answer.token, expiresAt });
    return answer.token;
  }

  /** The App's own token (10 minutes at most, as GitHub allows), for the two calls that make an installation's. */
  async #jwt(): Promise<string> {
    const { token, expiration } = await githubAppJwt({ id: this.#settings.appId, privateKey: this.#settings.privateKey });
    holdSecret(token);
    forgetWhenExpired(token, expiration * 1000 - Date.now());
    return token;
  }

  async #installationOf(api: ForgeApi, owner: string, name: string): Promise<number> {
    const key = `${owner}/${name}`;
    const known = this.#installations.get(key);
    if (known !== undefined) return known;
    const answer = (await api.call('GET', `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}/installation`)) as { id?: unknown };
    if (typeof answer.id !== 'number' || !Number.isInteger(answer.id) || answer.id <= 0)
      throw new ForgeError(`GitHub answered the installation of ${key} without an id`);
    this.#installations.set(key, answer.id);
    return answer.id;
  }
}

/** A token is masked until a minute after it expires (a token or JWT a refresh replaced is useless then), then forgotten. */
function forgetWhenExpired(token: string, validForMs: number): void {
  setTimeout(() => forgetSecret(token), Math.max(0, validForMs) + 60_000).unref();
}
