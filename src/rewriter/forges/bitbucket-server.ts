/**
 * Bitbucket Data Center (and Server) pull requests (REST 1.0): list a branch's outgoing pull requests
 * in every state, create, update. An update names the version it read, as Bitbucket requires: a
 * description another writer changed since is refused (409) instead of overwritten, and read again
 * on the next pass. A declined pull request counts as closed, so a declined change is not proposed
 * again; labels do not exist there. Tokens are HTTP access tokens, sent as a bearer. Checked in the
 * tests against a stand-in that enforces the documented parameters of these calls.
 */
import type { Dispatcher } from 'undici';
import { ownPullRequests, type Forge, type PullRequest, type PullRequestSpec } from './forge.ts';
import { ForgeApi, ForgeError } from './http.ts';

interface Ref {
  id: string;
  repository?: { id?: number; slug?: string; project?: { key?: string } } | null;
}

interface ServerPull {
  id: number;
  version: number;
  title: string;
  description?: string | null;
  state: 'OPEN' | 'MERGED' | 'DECLINED';
  fromRef: Ref;
  toRef: Ref;
  links?: { self?: Array<{ href?: string }> };
}

export class BitbucketServerForge implements Forge {
  readonly kind = 'bitbucket-server' as const;
  readonly #api: ForgeApi;
  readonly #repo: string;
  readonly #repository: { slug: string; project: { key: string } };

  constructor(apiBase: string, projectKey: string, slug: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi(
      'Bitbucket Data Center',
      apiBase,
      { authorization: `Bearer ${token}` },
      'check the HTTP access token: it needs repository write',
      dispatcher,
    );
    this.#repo = `projects/${encodeURIComponent(projectKey)}/repos/${encodeURIComponent(slug)}`;
    this.#repository = { slug, project: { key: projectKey } };
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const answered: ServerPull[] = [];
    let start = 0;
    for (let pages = 0; ; pages++) {
      // Not seeing ours is not "none": past the pages read, the call fails rather than restart the branch.
      if (pages === MAX_PAGES) throw new ForgeError(`Bitbucket Data Center lists more than ${MAX_PAGES * 100} pull requests from ${head}`);
      const query = new URLSearchParams({ state: 'ALL', direction: 'OUTGOING', at: `refs/heads/${head}`, order: 'NEWEST', limit: '100', start: String(start) });
      const page = (await this.#api.call('GET', `/${this.#repo}/pull-requests?${query}`)) as {
        values?: unknown;
        isLastPage?: unknown;
        nextPageStart?: unknown;
      };
      if (!Array.isArray(page?.values)) throw new ForgeError('Bitbucket Data Center answered the pull request list with something that is not a page of them');
      answered.push(...(page.values as ServerPull[]));
      if (page.isLastPage !== false || typeof page.nextPageStart !== 'number' || page.nextPageStart <= start) break;
      start = page.nextPageStart;
    }
    // Another repository's pull request (a fork's, or one into another repository) is not ours.
    const sameRepository = (p: ServerPull) => typeof p.fromRef?.repository?.id === 'number' && p.fromRef.repository.id === p.toRef?.repository?.id;
    return ownPullRequests(answered, toPullRequest, sameRepository, head, base);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    return toPullRequest(
      (await this.#api.call('POST', `/${this.#repo}/pull-requests`, {
        title: spec.title,
        description: spec.body,
        fromRef: { id: `refs/heads/${spec.head}`, repository: this.#repository },
        toRef: { id: `refs/heads/${spec.base}`, repository: this.#repository },
        ...(spec.draft ? { draft: true } : {}),
      })) as ServerPull,
    );
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    if (pr.version === undefined) throw new ForgeError(`Bitbucket Data Center pull request #${pr.number} was read without its version`);
    return toPullRequest(
      (await this.#api.call('PUT', `/${this.#repo}/pull-requests/${pr.number}`, {
        version: pr.version,
        title: change.title,
        description: change.body,
      })) as ServerPull,
    );
  }
}

/** Pages of a branch's pull requests read at most (a real branch has a handful). */
const MAX_PAGES = 10;

const STATES: Record<string, PullRequest['state']> = { OPEN: 'open', MERGED: 'merged', DECLINED: 'closed' };

function branch(ref: Ref | undefined): string | undefined {
  return typeof ref?.id === 'string' && ref.id.startsWith('refs/heads/') ? ref.id.slice('refs/heads/'.length) : undefined;
}

function toPullRequest(pull: ServerPull): PullRequest {
  const head = branch(pull?.fromRef);
  const base = branch(pull?.toRef);
  if (typeof pull?.id !== 'number' || typeof pull.version !== 'number' || head === undefined || base === undefined)
    throw new ForgeError('Bitbucket Data Center answered with a pull request missing its id, version or branches');
  if (typeof pull.title !== 'string' || (pull.description != null && typeof pull.description !== 'string'))
    throw new ForgeError(`Bitbucket Data Center answered with pull request #${pull.id} whose title or description is not text`);
  return {
    number: pull.id,
    url: pull.links?.self?.[0]?.href ?? '',
    state:
      STATES[pull.state] ??
      (() => {
        // A state it does not know is not taken for "declined" (which would stop a change for good).
        throw new ForgeError(
          `Bitbucket Data Center answered pull request #${pull.id} in a state it does not document: ${JSON.stringify(String(pull.state).slice(0, 40))}`,
        );
      })(),
    head,
    base,
    title: pull.title,
    body: pull.description ?? '',
    version: pull.version,
  };
}
