/**
 * GitHub and GitHub Enterprise Server pull requests (REST, version 2022-11-28): list a branch's pull
 * requests, create (with labels through the issues API), update. Checked in the tests against
 * GitHub's official OpenAPI description (@octokit/openapi): every request this client sends is an
 * operation of that description with a body its schema accepts.
 */
import type { Dispatcher } from 'undici';
import type { Forge, PullRequest, PullRequestSpec } from './forge.ts';
import { ForgeError, forgeCall } from './http.ts';

interface GitHubPull {
  number: number;
  html_url: string;
  state: 'open' | 'closed';
  merged_at: string | null;
  title: string;
  body: string | null;
  head: { ref: string; repo?: { id?: number } | null };
  base: { ref: string; repo?: { id?: number } | null };
}

export class GitHubForge implements Forge {
  readonly kind = 'github' as const;
  readonly #api: string;
  readonly #owner: string;
  readonly #repo: string;
  readonly #token: string;
  readonly #dispatcher: Dispatcher | undefined;

  constructor(apiBase: string, owner: string, name: string, token: string, dispatcher?: Dispatcher) {
    this.#api = apiBase.replace(/\/+$/, '');
    this.#owner = owner;
    this.#repo = `${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
    this.#token = token;
    this.#dispatcher = dispatcher;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const query = new URLSearchParams({ state: 'all', head: `${this.#owner}:${head}`, base, per_page: '100' });
    const pulls = (await this.#call('GET', `/repos/${this.#repo}/pulls?${query}`)) as GitHubPull[];
    if (!Array.isArray(pulls)) throw new ForgeError('GitHub answered the pull request list with something that is not a list');
    // Every entry is read (one we cannot read fails the call), then only this repository's are kept:
    // a fork's head repository has its own id (or none, once deleted).
    const sameRepository = (p: GitHubPull) => typeof p.head.repo?.id === 'number' && p.head.repo.id === p.base.repo?.id;
    return pulls
      .map((p) => ({ pull: toPullRequest(p), own: sameRepository(p) }))
      .filter(({ pull, own }) => own && pull.head === head && pull.base === base)
      .map(({ pull }) => pull)
      .sort((a, b) => b.number - a.number);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    const pull = toPullRequest(
      (await this.#call('POST', `/repos/${this.#repo}/pulls`, {
        title: spec.title,
        head: spec.head,
        base: spec.base,
        body: spec.body,
        draft: spec.draft ?? false,
      })) as GitHubPull,
    );
    if (spec.labels?.length) await this.#call('POST', `/repos/${this.#repo}/issues/${pull.number}/labels`, { labels: [...spec.labels] });
    return pull;
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    return toPullRequest((await this.#call('PATCH', `/repos/${this.#repo}/pulls/${pr.number}`, { title: change.title, body: change.body })) as GitHubPull);
  }

  #call(method: 'GET' | 'POST' | 'PATCH', path: string, body?: object): Promise<unknown> {
    return forgeCall({
      forge: 'GitHub',
      method,
      url: `${this.#api}${path}`,
      headers: {
        authorization: `Bearer ${this.#token}`,
        accept: 'application/vnd.github+json',
        'x-github-api-version': '2022-11-28',
        'user-agent': 'image-clone-controller',
      },
      ...(body ? { body } : {}),
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      authHint: 'check the token: it needs pull requests: write, and contents: write to push',
    });
  }
}

function toPullRequest(pull: GitHubPull): PullRequest {
  if (typeof pull?.number !== 'number' || typeof pull.head?.ref !== 'string' || typeof pull.base?.ref !== 'string') {
    throw new ForgeError('GitHub answered with a pull request missing its number, head or base');
  }
  if (typeof pull.title !== 'string' || (pull.body != null && typeof pull.body !== 'string'))
    throw new ForgeError(`GitHub answered with pull request #${pull.number} whose title or body is not text`);
  return {
    number: pull.number,
    url: pull.html_url,
    state: pull.merged_at ? 'merged' : pull.state,
    head: pull.head.ref,
    base: pull.base.ref,
    title: pull.title,
    body: pull.body ?? '',
  };
}
