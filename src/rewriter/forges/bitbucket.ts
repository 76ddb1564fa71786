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

  constructor(apiBase: string, workspace: string, slug: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi(
      'Bitbucket',
      apiBase,
      { authorization: `Bearer ${token}` },
      'check the access token: it needs the pullrequest:write and repository:write scopes',
      dispatcher,
    );
    this.#repo = `${encodeURIComponent(workspace)}/${encodeURIComponent(slug)}`;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const query = new URLSearchParams([
      ...['OPEN', 'MERGED', 'DECLINED', 'SUPERSEDED'].map((state): [string, string] => ['state', state]),
      // BBQL: a string in double quotes, a quote or backslash in it escaped.
      ['q', `source.branch.name = ${bbql(head)} AND destination.branch.name = ${bbql(base)}`],
      ['sort', '-id'],
      ['pagelen', '50'],
    ]);
    const page = (await this.#api.call('GET', `/repositories/${this.#repo}/pullrequests?${query}`)) as { values?: unknown };
    if (!Array.isArray(page?.values)) throw new ForgeError('Bitbucket answered the pull request list with something that is not a page of them');
    // A fork's pull request comes from another repository (its own uuid).
    const sameRepository = (p: BitbucketPull) => typeof p.source?.repository?.uuid === 'string' && p.source.repository.uuid === p.destination?.repository?.uuid;
    return ownPullRequests(page.values as BitbucketPull[], toPullRequest, sameRepository, head, base);
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

function bbql(text: string): string {
  return `"${text.replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

function toPullRequest(pull: BitbucketPull): PullRequest {
  if (typeof pull?.id !== 'number' || typeof pull.source?.branch?.name !== 'string' || typeof pull.destination?.branch?.name !== 'string')
    throw new ForgeError('Bitbucket answered with a pull request missing its id or branches');
  if (typeof pull.title !== 'string' || (pull.description != null && typeof pull.description !== 'string'))
    throw new ForgeError(`Bitbucket answered with pull request #${pull.id} whose title or description is not text`);
  return {
    number: pull.id,
    url: pull.links?.html?.href ?? '',
    state: pull.state === 'OPEN' ? 'open' : pull.state === 'MERGED' ? 'merged' : 'closed',
    head: pull.source.branch.name,
    base: pull.destination.branch.name,
    title: pull.title,
    body: pull.description ?? '',
  };
}
