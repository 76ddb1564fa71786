/**
 * Gitea and Forgejo pull requests (API v1): list by state and match head and base, create, edit.
 * Drafts use Gitea's "WIP:" title prefix; labels are matched by name to the repository's labels.
 */
import type { Dispatcher } from 'undici';
import type { Forge, PullRequest, PullRequestSpec } from './forge.ts';
import { ForgeError, forgeCall } from './http.ts';

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
  readonly #api: string;
  readonly #repo: string;
  readonly #token: string;
  readonly #dispatcher: Dispatcher | undefined;

  constructor(apiBase: string, owner: string, name: string, token: string, dispatcher?: Dispatcher) {
    this.#api = apiBase.replace(/\/+$/, '');
    this.#repo = `${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
    this.#token = token;
    this.#dispatcher = dispatcher;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const found: PullRequest[] = [];
    for (let page = 1; page <= 20; page++) {
      const pulls = (await this.#call('GET', `/repos/${this.#repo}/pulls?state=all&sort=newest&limit=50&page=${page}`)) as GiteaPull[];
      if (!Array.isArray(pulls)) throw new ForgeError(`Gitea answered the pull request list with something that is not a list`);
      // Every entry is checked: skipping one we cannot read could hide our open pull request.
      // From this repository only (a fork's head has its own repo_id); one without ids is not taken for ours.
      for (const raw of pulls) {
        const pull = toPullRequest(raw);
        if (pull.head === head && pull.base === base && typeof raw.head.repo_id === 'number' && raw.head.repo_id === raw.base.repo_id) found.push(pull);
      }
      if (pulls.length < 50) break;
    }
    return found.sort((a, b) => b.number - a.number);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    const labels = spec.labels?.length ? await this.#labelIds(spec.labels) : [];
    const pull = (await this.#call('POST', `/repos/${this.#repo}/pulls`, {
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
    return toPullRequest((await this.#call('PATCH', `/repos/${this.#repo}/pulls/${pr.number}`, { title, body: change.body })) as GiteaPull);
  }

  async #labelIds(names: readonly string[]): Promise<number[]> {
    const labels = (await this.#call('GET', `/repos/${this.#repo}/labels?limit=50`)) as Array<{ id: number; name: string }>;
    if (!Array.isArray(labels)) throw new ForgeError('Gitea answered the label list with something that is not a list');
    return labels.filter((l) => names.includes(l.name)).map((l) => l.id);
  }

  #call(method: 'GET' | 'POST' | 'PATCH', path: string, body?: object): Promise<unknown> {
    return forgeCall({
      forge: 'Gitea',
      method,
      url: `${this.#api}${path}`,
      headers: { authorization: `token ${this.#token}` },
      ...(body ? { body } : {}),
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
      authHint: 'check the token and its scopes',
    });
  }
}

function toPullRequest(pull: GiteaPull): PullRequest {
  if (typeof pull?.number !== 'number' || typeof pull.head?.ref !== 'string' || typeof pull.base?.ref !== 'string')
    throw new ForgeError('Gitea answered with a pull request missing its number, head or base');
  if (typeof pull.title !== 'string' || (pull.body != null && typeof pull.body !== 'string'))
    throw new ForgeError(`Gitea answered with pull request #${pull.number} whose title or body is not text`);
  return {
    number: pull.number,
    url: pull.html_url,
    state: pull.merged ? 'merged' : pull.state,
    head: pull.head.ref,
    base: pull.base.ref,
    title: pull.title,
    body: pull.body ?? '',
  };
}
