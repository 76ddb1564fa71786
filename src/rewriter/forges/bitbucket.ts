/**
 * Bitbucket Cloud pull requests (REST 2.0): list a branch's pull requests in every state (a BBQL
 * query on the source and destination branch), create, update. A declined or superseded pull request
 * counts as closed, so a declined change is not proposed again. Bitbucket has no labels (`--pr-label`
 * is ignored there); drafts are its own `draft` field. Tokens are Bitbucket access tokens (repository,
 * project or workspace), sent as a bearer. Checked in the tests against a stand-in that enforces the
 * documented parameters of these three calls (test/support/bitbucket-contract.ts).
 */
import type { Dispatcher } from 'undici';
import { ownPullRequests, type Forge, type PullRequest, type PullRequestSpec } from './forge.ts';
import { ForgeApi, ForgeError } from './http.ts';

interface BitbucketPull {
  id: number;
  title: string;
  description?: string | null;
  state: 'OPEN' | 'MERGED' | 'DECLINED' | 'SUPERSEDED';
  links?: { html?: { href?: string } };
  source: { branch: { name: string }; repository?: { uuid?: string } | null };
  destination: { branch: { name: string }; repository?: { uuid?: string } | null };
}

export class BitbucketForge implements Forge {
  readonly kind = 'bitbucket' as const;
  readonly #api: ForgeApi;
  readonly #repo: string;
  readonly #fullName: string;

  constructor(apiBase: string, workspace: string, slug: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi(
      'Bitbucket',
      apiBase,
      { authorization: `Bearer ${token}` },
      'check the access token: it needs the pullrequest:write and repository:write scopes',
      dispatcher,
    );
    this.#repo = `${encodeURIComponent(workspace)}/${encodeURIComponent(slug)}`;
    this.#fullName = `${workspace}/${slug}`;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const query = new URLSearchParams([
      ...['OPEN', 'MERGED', 'DECLINED', 'SUPERSEDED'].map((state): [string, string] => ['state', state]),
      // BBQL: a string in double quotes, a quote or backslash in it escaped. From this repository only,
      // so forks' pull requests from a branch of our name cannot crowd ours out of the pages.
      ['q', `source.repository.full_name = ${bbql(this.#fullName)} AND source.branch.name = ${bbql(head)} AND destination.branch.name = ${bbql(base)}`],
      ['sort', '-id'],
      ['pagelen', '50'],
    ]);
    const answered: BitbucketPull[] = [];
    let path: string | undefined = `/repositories/${this.#repo}/pullrequests?${query}`;
    for (let pages = 0; path !== undefined; pages++) {
      // Not seeing ours is not "none": past the pages read, the call fails rather than restart the branch.
      if (pages === MAX_PAGES) throw new ForgeError(`Bitbucket lists more than ${MAX_PAGES * 50} pull requests from ${head} into ${base}`);
      const page = (await this.#api.call('GET', path)) as { values?: unknown; next?: unknown };
      if (!Array.isArray(page?.values)) throw new ForgeError('Bitbucket answered the pull request list with something that is not a page of them');
      answered.push(...(page.values as BitbucketPull[]));
      path = typeof page.next === 'string' ? this.#api.pathOf(page.next) : undefined;
    }
    // A fork's pull request comes from another repository (its own uuid).
    const sameRepository = (p: BitbucketPull) => typeof p.source?.repository?.uuid === 'string' && p.source.repository.uuid === p.destination?.repository?.uuid;
    return ownPullRequests(answered, toPullRequest, sameRepository, head, base);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    return toPullRequest(
      (await this.#api.call('POST', `/repositories/${this.#repo}/pullrequests`, {
        title: spec.title,
        description: spec.body,
        source: { branch: { name: spec.head } },
        destination: { branch: { name: spec.base } },
        close_source_branch: false,
        ...(spec.draft ? { draft: true } : {}),
      })) as BitbucketPull,
    );
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    return toPullRequest(
      (await this.#api.call('PUT', `/repositories/${this.#repo}/pullrequests/${pr.number}`, {
        title: change.title,
        description: change.body,
      })) as BitbucketPull,
    );
  }
}

/** Pages of a branch's pull requests read at most (a real branch has a handful). */
const MAX_PAGES = 10;

function bbql(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

const STATES: Record<string, PullRequest['state']> = { OPEN: 'open', MERGED: 'merged', DECLINED: 'closed', SUPERSEDED: 'closed' };

/** A state it does not know is not taken for "declined" (which would stop a change for good). */
function unknownState(pull: BitbucketPull): never {
  throw new ForgeError(`Bitbucket answered pull request #${pull.id} in a state it does not document: ${JSON.stringify(String(pull.state).slice(0, 40))}`);
}

function toPullRequest(pull: BitbucketPull): PullRequest {
  if (typeof pull?.id !== 'number' || typeof pull.source?.branch?.name !== 'string' || typeof pull.destination?.branch?.name !== 'string')
    throw new ForgeError('Bitbucket answered with a pull request missing its id or branches');
  if (typeof pull.title !== 'string' || (pull.description != null && typeof pull.description !== 'string'))
    throw new ForgeError(`Bitbucket answered with pull request #${pull.id} whose title or description is not text`);
  return {
    number: pull.id,
    url: pull.links?.html?.href ?? '',
    state: STATES[pull.state] ?? unknownState(pull),
    head: pull.source.branch.name,
    base: pull.destination.branch.name,
    title: pull.title,
    body: pull.description ?? '',
  };
}
