/**
 * Gitea and Forgejo pull requests (API v1): list by state and match head and base, create, edit.
 * Drafts use Gitea's "WIP:" title prefix; labels are matched by name to the repository's labels.
 */
import type { Dispatcher } from 'undici';
import { ownPullRequests, type Forge, type PullRequest, type PullRequestSpec } from './forge.ts';
import { answeredPullRequest, ForgeApi, ForgeError } from './http.ts';

interface GiteaPull {
  number: number;
  html_url: string;
  state: 'open' | 'closed';
  merged: boolean;
  title: string;
  body: string | null;
  head: { ref: string; repo_id?: number };
  base: { ref: string; repo_id?: number };
}

export class GiteaForge implements Forge {
  readonly kind = 'gitea' as const;
  readonly #api: ForgeApi;
  readonly #repo: string;

  constructor(apiBase: string, owner: string, name: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi('Gitea', apiBase, { authorization: `token ${token}` }, 'check the token and its scopes', dispatcher);
    this.#repo = `${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const answered: GiteaPull[] = [];
    for (let page = 1; page <= 20; page++) {
      const pulls = (await this.#api.call('GET', `/repos/${this.#repo}/pulls?state=all&sort=newest&limit=50&page=${page}`)) as GiteaPull[];
      if (!Array.isArray(pulls)) throw new ForgeError(`Gitea answered the pull request list with something that is not a list`);
      answered.push(...pulls);
      if (pulls.length < 50) break;
    }
    // From this repository only (a fork's head has its own repo_id); one without ids is not taken for ours.
    const sameRepository = (raw: GiteaPull) => typeof raw.head.repo_id === 'number' && raw.head.repo_id === raw.base.repo_id;
    return ownPullRequests(answered, toPullRequest, sameRepository, head, base);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    const labels = spec.labels?.length ? await this.#labelIds(spec.labels) : [];
    const pull = (await this.#api.call('POST', `/repos/${this.#repo}/pulls`, {
      head: spec.head,
      base: spec.base,
      title: spec.draft ? `WIP: ${spec.title}` : spec.title,
      body: spec.body,
      ...(labels.length ? { labels } : {}),
    })) as GiteaPull;
    return toPullRequest(pull);
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    const title = pr.title.startsWith('WIP: ') ? `WIP: ${change.title}` : change.title;
    return toPullRequest((await this.#api.call('PATCH', `/repos/${this.#repo}/pulls/${pr.number}`, { title, body: change.body })) as GiteaPull);
  }

  async #labelIds(names: readonly string[]): Promise<number[]> {
    const labels = (await this.#api.call('GET', `/repos/${this.#repo}/labels?limit=50`)) as Array<{ id: number; name: string }>;
    if (!Array.isArray(labels)) throw new ForgeError('Gitea answered the label list with something that is not a list');
    return labels.filter((l) => names.includes(l.name)).map((l) => l.id);
  }
}

function toPullRequest(pull: GiteaPull): PullRequest {
  return answeredPullRequest('Gitea', pull, Boolean(pull.merged));
}
