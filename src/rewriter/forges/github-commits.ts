/**
 * Commits a GitHub App makes through GitHub's API, which GitHub signs as the App's ("Verified"): a
 * commit pushed with git under an installation token is unsigned, and an App has no account to hold
 * a signing key. So where branch protection requires signed commits (--github-app-signed-commits),
 * each commit git made locally is made again on GitHub from the same tree: its changed files (text
 * inside the tree request, other bytes as blobs), its tree on its parent's (required to come out as
 * the very tree git made, id for id: whatever was changed on the way fails it), a
 * commit with its message and no author or committer (GitHub signs only those), and the branch moved
 * by GraphQL `updateRefs` from the tip it was built on: a compare-and-swap, so another writer's push
 * in between fails ours (made again on the new tip), and a restart from the base replaces only the
 * tip that was read. Checked against GitHub's OpenAPI description and its published GraphQL schema.
 */
import type { Dispatcher } from 'undici';
import { repositoryPath } from './forge.ts';
import { githubHeaders } from './github.ts';
import { ForgeApi, ForgeError } from './http.ts';

/** One commit git made locally, as the API is asked to make it again. */
export interface LocalCommit {
  readonly sha: string;
  readonly tree: string;
  /** Its parent (the first commit's: the tip it was built on, fetched from GitHub) and the parent's tree. */
  readonly parent: string;
  readonly parentTree: string;
  readonly message: string;
  /** The files it changes: `blob` null for a deletion. */
  readonly changes: ReadonlyArray<{ readonly path: string; readonly mode: string; readonly blob: string | null }>;
}

/** What the workspace gives: its commits since the tip it built on, oldest first, and their blobs. */
export interface LocalHistory {
  readonly commits: readonly LocalCommit[];
  blob(sha: string): Promise<Buffer>;
}

/** A ref that does not exist, as `updateRefs` names it. */
const NONE = '0'.repeat(40);

/** A file larger than this is not sent as a blob through the API (GitHub takes up to 100 MB; manifests are kilobytes). */
const BLOB_MAX_BYTES = 10 * 1024 * 1024;

const UPDATE_REFS = `mutation ($input: UpdateRefsInput!) { updateRefs(input: $input) { clientMutationId } }`;

export class GitHubApiCommits {
  readonly #rest: ForgeApi;
  readonly #graphql: ForgeApi;
  readonly #repo: string;

  /** `apiBase`: https://api.github.com, or an Enterprise Server's https://host/api/v3 (its GraphQL at /api/graphql). */
  constructor(apiBase: string, owner: string, name: string, token: string, dispatcher?: Dispatcher) {
    const headers = githubHeaders(token);
    const hint = 'check the GitHub App: it needs contents: write on the repository';
    this.#rest = new ForgeApi('GitHub', apiBase, headers, hint, dispatcher);
    this.#graphql = new ForgeApi('GitHub', graphqlEndpoint(apiBase), headers, hint, dispatcher);
    this.#repo = `/repos/${encodeURIComponent(owner)}/${encodeURIComponent(name)}`;
  }

  /**
   * Makes `history`'s commits on GitHub and moves `branch` to the last, from `before` (undefined: the
   * branch must not exist); `force` only where our own branch is replaced from the base. 'rejected'
   * when the branch is no longer at `before`.
   */
  async publish(history: LocalHistory, branch: string, before: string | undefined, force: boolean): Promise<{ readonly pushed: string } | 'rejected'> {
    if (history.commits.length === 0) throw new ForgeError('nothing to commit through the GitHub API');
    let parent = await this.#parentOf(history.commits[0]!);
    for (const commit of history.commits) parent = await this.#remake(commit, parent, history);
    const repository = (await this.#rest.call('GET', this.#repo)) as { node_id?: unknown };
    if (typeof repository?.node_id !== 'string') throw new ForgeError('GitHub answered the repository without its node id');
    const answer = (await this.#graphql.call('POST', '', {
      query: UPDATE_REFS,
      variables: {
        input: { repositoryId: repository.node_id, refUpdates: [{ name: `refs/heads/${branch}`, beforeOid: before ?? NONE, afterOid: parent, force }] },
      },
    })) as { data?: { updateRefs?: unknown }; errors?: Array<{ message?: unknown }> };
    if (answer?.errors?.length || !answer?.data?.updateRefs) {
      // Refused: by the compare-and-swap (the branch moved: made again on the new tip), or for a reason to report.
      if ((await this.#tip(branch)) !== before) return 'rejected';
      throw new ForgeError(`GitHub refused to move ${branch}: ${String(answer?.errors?.[0]?.message ?? 'no reason given').slice(0, 300)}`);
    }
    return { pushed: parent };
  }

  /** The first local commit's parent, a commit git fetched from GitHub: asked for, so one GitHub does not have fails here, with the reason. */
  async #parentOf(first: LocalCommit): Promise<string> {
    const read = (await this.#rest.call('GET', `${this.#repo}/git/commits/${first.parent}`)) as { tree?: { sha?: unknown } };
    if (read?.tree?.sha !== first.parentTree) throw new ForgeError(`GitHub's ${first.parent.slice(0, 12)} is not the commit the change was built on`);
    return first.parent;
  }

  /** One commit made again on `parent`: its blobs, its tree (the same id as git's), the commit. */
  async #remake(commit: LocalCommit, parent: string, history: LocalHistory): Promise<string> {
    const entries: Array<{ path: string; mode: string; type: 'blob'; sha?: string | null; content?: string }> = [];
    for (const change of commit.changes) {
      if (change.blob === null) {
        entries.push({ path: change.path, mode: change.mode, type: 'blob', sha: null });
        continue;
      }
      const content = await history.blob(change.blob);
      if (content.length > BLOB_MAX_BYTES) throw new ForgeError(`${change.path} is larger than ${BLOB_MAX_BYTES >> 20} MiB: not sent through the GitHub API`);
      // A text file (every manifest) goes inside the tree request: one request a commit, however many
      // files, within GitHub's limits on content-creating requests. Other bytes as a blob of their own.
      const text = content.toString('utf8');
      if (Buffer.from(text, 'utf8').equals(content) && change.mode !== '120000') {
        entries.push({ path: change.path, mode: change.mode, type: 'blob', content: text });
        continue;
      }
      const blob = (await this.#rest.call('POST', `${this.#repo}/git/blobs`, { content: content.toString('base64'), encoding: 'base64' })) as { sha?: unknown };
      if (blob?.sha !== change.blob) throw new ForgeError(`GitHub stored ${change.path} as another blob than git made`);
      entries.push({ path: change.path, mode: change.mode, type: 'blob', sha: change.blob });
    }
    const tree = (await this.#rest.call('POST', `${this.#repo}/git/trees`, { base_tree: commit.parentTree, tree: entries })) as { sha?: unknown };
    if (tree?.sha !== commit.tree) throw new ForgeError('GitHub made another tree than git made from the same changes: nothing is committed');
    const made = (await this.#rest.call('POST', `${this.#repo}/git/commits`, { message: commit.message, tree: commit.tree, parents: [parent] })) as {
      sha?: unknown;
    };
    if (typeof made?.sha !== 'string' || !/^[0-9a-f]{40}$/.test(made.sha)) throw new ForgeError('GitHub answered the commit without its id');
    return made.sha;
  }

  /** Where `branch` is now (undefined: it does not exist). */
  async #tip(branch: string): Promise<string | undefined> {
    try {
      const ref = (await this.#rest.call('GET', `${this.#repo}/git/ref/heads/${branch}`)) as { object?: { sha?: unknown } };
      return typeof ref?.object?.sha === 'string' ? ref.object.sha : undefined;
    } catch (error) {
      if (error instanceof ForgeError && /HTTP 404/.test(error.message)) return undefined;
      throw error;
    }
  }
}

/** GitHub's GraphQL endpoint beside its REST API: api.github.com/graphql, or an Enterprise Server's /api/graphql. */
export function graphqlEndpoint(apiBase: string): string {
  const base = apiBase.replace(/\/+$/, '');
  return base.endsWith('/api/v3') ? `${base.slice(0, -'/v3'.length)}/graphql` : `${base}/graphql`;
}

/** The publish step of a repository's workspace, for a GitHub App's installation token there (on `apiBase`, the App's GitHub). */
export function appCommitsFor(
  repoURL: string,
  apiBase: string,
  token: string,
  dispatcher: Dispatcher | undefined,
): (history: LocalHistory, branch: string, before: string | undefined, force: boolean) => Promise<{ readonly pushed: string } | 'rejected'> {
  const { owner, name } = repositoryPath(repoURL, 'github', apiBase);
  const commits = new GitHubApiCommits(apiBase, owner, name, token, dispatcher);
  return (history, branch, before, force) => commits.publish(history, branch, before, force);
}
