/**
 * GitHub and GitHub Enterprise Server pull requests (REST, version 2022-11-28): list a branch's pull
 * requests, create (with labels through the issues API), update. Checked in the tests against
 * GitHub's official OpenAPI description (@octokit/openapi): every request this client sends is an
 * operation of that description with a body its schema accepts.
 */
import type { Dispatcher } from 'undici';
import { ownPullRequests, type Forge, type PullRequest, type PullRequestSpec } from './forge.ts';
import { answeredPullRequest, ForgeApi, ForgeError } from './http.ts';

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

/** What every call to GitHub's REST API carries: the token (an App's JWT or an installation's), the media type and API version it is written for. */
export function githubHeaders(token: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    accept: 'application/vnd.github+json',
    'x-github-api-version': '2022-11-28',
    'user-agent': 'image-clone-controller',
  };
}

export class GitHubForge implements Forge {
  readonly kind = 'github' as const;
  readonly #api: ForgeApi;
  readonly #owner: string;
  readonly #repo: string;

  constructor(apiBase: string, owner: string, name: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi(
      'GitHub',
      apiBase,
      githubHeaders(token),
      'check the token: it needs pull requests: write, and contents: write to push',
      dispatcher,
    );
    this.#owner = owner;
    this.#repo = `${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const query = new URLSearchParams({ state: 'all', head: `${this.#owner}:${head}`, base, per_page: '100' });
    const pulls = (await this.#api.call('GET', `/repos/${this.#repo}/pulls?${query}`)) as GitHubPull[];
    if (!Array.isArray(pulls)) throw new ForgeError('GitHub answered the pull request list with something that is not a list');
    // Every entry is read (one we cannot read fails the call), then only this repository's are kept:
    // a fork's head repository has its own id (or none, once deleted).
    const sameRepository = (p: GitHubPull) => typeof p.head.repo?.id === 'number' && p.head.repo.id === p.base.repo?.id;
    return ownPullRequests(pulls, toPullRequest, sameRepository, head, base);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    const pull = toPullRequest(
      (await this.#api.call('POST', `/repos/${this.#repo}/pulls`, {
        title: spec.title,
        head: spec.head,
        base: spec.base,
        body: spec.body,
        draft: spec.draft ?? false,
      })) as GitHubPull,
    );
    if (spec.labels?.length) await this.#api.call('POST', `/repos/${this.#repo}/issues/${pull.number}/labels`, { labels: [...spec.labels] });
    return pull;
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    return toPullRequest((await this.#api.call('PATCH', `/repos/${this.#repo}/pulls/${pr.number}`, { title: change.title, body: change.body })) as GitHubPull);
  }
}

function toPullRequest(pull: GitHubPull): PullRequest {
  return answeredPullRequest('GitHub', pull, Boolean(pull.merged_at));
}
