/**
 * GitLab merge requests (REST v4): list by source and target branch in any state, create (labels
 * as a comma-separated list, drafts by the "Draft: " title prefix), update. The project is named by
 * its URL-encoded path. Checked in the tests against a stand-in that enforces the documented
 * parameters of these three calls (GitLab publishes no machine-readable description of them).
 */
import type { Dispatcher } from 'undici';
import { ownPullRequests, type Forge, type PullRequest, type PullRequestSpec } from './forge.ts';
import { ForgeApi, ForgeError } from './http.ts';

interface GitLabMergeRequest {
  iid: number;
  web_url: string;
  state: 'opened' | 'closed' | 'locked' | 'merged';
  title: string;
  description: string | null;
  source_branch: string;
  target_branch: string;
  source_project_id?: number;
  target_project_id?: number;
}

export class GitLabForge implements Forge {
  readonly kind = 'gitlab' as const;
  readonly #api: ForgeApi;
  readonly #project: string;

  constructor(apiBase: string, projectPath: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi('GitLab', apiBase, { 'private-token': token }, 'check the token: it needs the api scope', dispatcher);
    this.#project = encodeURIComponent(projectPath);
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const query = new URLSearchParams({ state: 'all', source_branch: head, target_branch: base, per_page: '100' });
    const list = (await this.#api.call('GET', `/projects/${this.#project}/merge_requests?${query}`)) as GitLabMergeRequest[];
    if (!Array.isArray(list)) throw new ForgeError('GitLab answered the merge request list with something that is not a list');
    // Every entry is read (one we cannot read fails the call), then only this project's are kept: a fork's merge request has its own source project.
    const sameProject = (m: GitLabMergeRequest) => typeof m.source_project_id === 'number' && m.source_project_id === m.target_project_id;
    return ownPullRequests(list, toPullRequest, sameProject, head, base);
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    return toPullRequest(
      (await this.#api.call('POST', `/projects/${this.#project}/merge_requests`, {
        source_branch: spec.head,
        target_branch: spec.base,
        title: spec.draft ? `Draft: ${spec.title}` : spec.title,
        description: spec.body,
        ...(spec.labels?.length ? { labels: spec.labels.join(',') } : {}),
      })) as GitLabMergeRequest,
    );
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    const title = pr.title.startsWith('Draft: ') ? `Draft: ${change.title}` : change.title;
    return toPullRequest(
      (await this.#api.call('PUT', `/projects/${this.#project}/merge_requests/${pr.number}`, { title, description: change.body })) as GitLabMergeRequest,
    );
  }
}

function toPullRequest(mr: GitLabMergeRequest): PullRequest {
  if (typeof mr?.iid !== 'number' || typeof mr.source_branch !== 'string' || typeof mr.target_branch !== 'string') {
    throw new ForgeError('GitLab answered with a merge request missing its iid or branches');
  }
  if (typeof mr.title !== 'string' || (mr.description != null && typeof mr.description !== 'string'))
    throw new ForgeError(`GitLab answered with merge request !${mr.iid} whose title or description is not text`);
  return {
    number: mr.iid,
    url: mr.web_url,
    state: mr.state === 'merged' ? 'merged' : mr.state === 'opened' ? 'open' : 'closed',
    head: mr.source_branch,
    base: mr.target_branch,
    title: mr.title,
    body: mr.description ?? '',
  };
}
