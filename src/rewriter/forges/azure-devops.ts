/**
 * Azure DevOps Services and Server pull requests (Git REST API, api-version 7.1): list a branch's
 * pull requests in every state, create, update. An abandoned pull request counts as closed, so a
 * declined change is not proposed again; a completed one as merged; a fork's (`forkSource`) is never
 * ours. Labels are sent on creation (`labels: [{name}]`); drafts are `isDraft`. Tokens are personal
 * access tokens with Code (Read & Write), sent as HTTP Basic with an empty user name.
 *
 * Azure DevOps refuses a description over 4,000 characters, and its lists cut descriptions to 400,
 * while ours carries a hidden marker of its rows (./description.ts) that a large change makes far
 * longer. So the marker lives in a pull request property of ours (the Properties API, a JSON Patch),
 * and the description holds what a reviewer reads, cut at a line to fit, its last line saying how
 * many rows are not shown. Reading puts the marker back in front of `body`, so the rest of the
 * controller reads its rows as on any forge. Checked in the tests against a stand-in that enforces
 * the documented parameters of these calls (test/support/azure-devops-contract.ts).
 */
import type { Dispatcher } from 'undici';
import { MARKER_PREFIX } from './description.ts';
import { ownPullRequests, type Forge, type PullRequest, type PullRequestSpec } from './forge.ts';
import { ForgeApi, ForgeError } from './http.ts';
import { mapLimited } from '../../util/limit.ts';

interface AzurePull {
  pullRequestId: number;
  title: string;
  description?: string | null;
  status: 'active' | 'abandoned' | 'completed';
  sourceRefName: string;
  targetRefName: string;
  /** Set on a pull request from a fork. */
  forkSource?: unknown;
}

const API_VERSION = 'api-version=7.1';
/** What Azure DevOps takes in a description, in characters. */
export const DESCRIPTION_MAX_CHARS = 4_000;
/** The pull request property our marker is kept in. */
export const ROWS_PROPERTY = 'image-clone-controller.rows';
/** A page of the pull request list (`$top`), and the pages read at most (a real branch has a handful). */
const PAGE = 100;
const MAX_PAGES = 10;
/** A pull request's properties as read: far above any marker of ours (10,000 rows), far below a flood. */
const PROPERTIES_MAX_BYTES = 8 * 1024 * 1024;
/** The closed pull requests (newest first) whose rows are read, beside the open ones. */
const CLOSED_READ = 10;
/** Pull requests whose properties are read at once. */
const PARALLEL_READS = 4;

export class AzureDevOpsForge implements Forge {
  readonly kind = 'azure-devops' as const;
  readonly #api: ForgeApi;
  readonly #repo: string;
  readonly #web: string;

  /** `apiBase`: the organization (`https://dev.azure.com/acme`, `https://acme.visualstudio.com`) or the collection on a server. */
  constructor(apiBase: string, project: string, repository: string, token: string, dispatcher?: Dispatcher) {
    this.#api = new ForgeApi(
      'Azure DevOps',
      apiBase,
      { authorization: `Basic ${Buffer.from(`:${token}`).toString('base64')}` },
      'check the personal access token: it needs Code (Read & Write) on this project',
      dispatcher,
    );
    const at = encodeURIComponent(project);
    this.#repo = `/${at}/_apis/git/repositories/${encodeURIComponent(repository)}`;
    this.#web = `${apiBase.replace(/\/+$/, '')}/${at}/_git/${encodeURIComponent(repository)}`;
  }

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    const query = new URLSearchParams({
      'searchCriteria.sourceRefName': `refs/heads/${head}`,
      'searchCriteria.targetRefName': `refs/heads/${base}`,
      'searchCriteria.status': 'all',
    });
    const answered: AzurePull[] = [];
    for (let pages = 0; ; pages++) {
      // Not seeing ours is not "none": past the pages read, the call fails rather than restart the branch.
      if (pages === MAX_PAGES) throw new ForgeError(`Azure DevOps lists more than ${MAX_PAGES * PAGE} pull requests from ${head} into ${base}`);
      // `$top` and `$skip` as the documentation spells them (URLSearchParams would write %24).
      const page = (await this.#api.call('GET', `${this.#repo}/pullrequests?${query}&$top=${PAGE}&$skip=${pages * PAGE}&${API_VERSION}`)) as {
        value?: unknown;
      };
      if (!Array.isArray(page?.value)) throw new ForgeError('Azure DevOps answered the pull request list with something that is not a page of them');
      answered.push(...(page.value as AzurePull[]));
      if (page.value.length < PAGE) break;
    }
    // A fork's pull request into this repository names its source in `forkSource`.
    const own = ownPullRequests(
      answered,
      (p) => this.#read(p),
      (p) => p.forkSource == null,
      head,
      base,
    );
    // Rows are read from the open pull requests and the newest closed ones (whether a reviewer declined this
    // change): a branch a tenant filled with abandoned pull requests costs a bounded number of reads.
    const read = new Set([...own.filter((p) => p.state === 'open'), ...own.filter((p) => p.state !== 'open').slice(0, CLOSED_READ)]);
    return mapLimited(own, PARALLEL_READS, async (pull) => (read.has(pull) ? { ...pull, body: withMarker(pull.body, await this.#marker(pull.number)) } : pull));
  }

  async open(spec: PullRequestSpec): Promise<PullRequest> {
    const { visible, marker } = split(spec.body);
    const opened = this.#read(
      (await this.#api.call('POST', `${this.#repo}/pullrequests?${API_VERSION}`, {
        sourceRefName: `refs/heads/${spec.head}`,
        targetRefName: `refs/heads/${spec.base}`,
        title: spec.title,
        description: visible,
        ...(spec.draft ? { isDraft: true } : {}),
        ...(spec.labels?.length ? { labels: spec.labels.map((name) => ({ name })) } : {}),
      })) as AzurePull,
    );
    // Should this fail, the pull request is open without its rows: the rewriter finds it open and updates it.
    if (marker !== undefined) await this.#store(opened.number, marker);
    return { ...opened, body: withMarker(opened.body, marker) };
  }

  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    const { visible, marker } = split(change.body);
    // The rows first: a description written without them would be read back as a pull request with fewer.
    if (marker !== undefined) await this.#store(pr.number, marker);
    const updated = this.#read(
      (await this.#api.call('PATCH', `${this.#repo}/pullrequests/${pr.number}?${API_VERSION}`, {
        title: change.title,
        description: visible,
      })) as AzurePull,
    );
    return { ...updated, body: withMarker(updated.body, marker) };
  }

  /** Our marker kept in the pull request's properties, if any: a property of ours in shape, else nothing. */
  async #marker(id: number): Promise<string | undefined> {
    const answer = (await this.#api.call('GET', `${this.#repo}/pullRequests/${id}/properties?${API_VERSION}`, undefined, {
      maxBytes: PROPERTIES_MAX_BYTES,
    })) as { value?: unknown };
    if (typeof answer?.value !== 'object' || answer.value === null || Array.isArray(answer.value))
      throw new ForgeError(`Azure DevOps answered the properties of pull request #${id} with something that is not a collection of them`);
    const kept = (answer.value as Record<string, { $value?: unknown } | undefined>)[ROWS_PROPERTY]?.$value;
    // Whoever may edit the pull request may edit this: only a marker as we write it is read (its rows are then checked one by one).
    return typeof kept === 'string' && kept.startsWith(MARKER_PREFIX) && kept.trimEnd().endsWith('-->') ? kept : undefined;
  }

  async #store(id: number, marker: string): Promise<void> {
    await this.#api.call('PATCH', `${this.#repo}/pullRequests/${id}/properties?${API_VERSION}`, [{ op: 'add', path: `/${ROWS_PROPERTY}`, value: marker }], {
      contentType: 'application/json-patch+json',
    });
  }

  #read(pull: AzurePull): PullRequest {
    const head = branch(pull?.sourceRefName);
    const base = branch(pull?.targetRefName);
    if (typeof pull?.pullRequestId !== 'number' || head === undefined || base === undefined)
      throw new ForgeError('Azure DevOps answered with a pull request missing its id or branches');
    if (typeof pull.title !== 'string' || (pull.description != null && typeof pull.description !== 'string'))
      throw new ForgeError(`Azure DevOps answered with pull request #${pull.pullRequestId} whose title or description is not text`);
    return {
      number: pull.pullRequestId,
      url: `${this.#web}/pullrequest/${pull.pullRequestId}`,
      state: Object.hasOwn(STATES, pull.status) ? STATES[pull.status]! : unknownState(pull),
      head,
      base,
      title: pull.title,
      body: pull.description ?? '',
    };
  }
}

/** `notSet` and any other state: not taken for "abandoned" (which would stop a change for good), nor for "active". */
const STATES: Record<string, PullRequest['state']> = { active: 'open', abandoned: 'closed', completed: 'merged' };

function unknownState(pull: AzurePull): never {
  throw new ForgeError(
    `Azure DevOps answered pull request #${pull.pullRequestId} in a state it does not document: ${JSON.stringify(String(pull.status).slice(0, 40))}`,
  );
}

function branch(ref: unknown): string | undefined {
  return typeof ref === 'string' && ref.startsWith('refs/heads/') ? ref.slice('refs/heads/'.length) : undefined;
}

/** A body of ours as the description shows it (the marker taken out, cut to fit) and its marker (the last, as rowsFromDescription reads it). */
export function split(body: string): { visible: string; marker?: string } {
  const start = body.lastIndexOf(MARKER_PREFIX);
  const end = start < 0 ? -1 : body.indexOf('-->', start);
  if (end < 0) return { visible: fitted(body) };
  const marker = body.slice(start, end + '-->'.length);
  return { visible: fitted(`${body.slice(0, start).trimEnd()}\n${body.slice(end + '-->'.length).trimStart()}`.trimEnd()), marker };
}

/** The description, then the property's marker (the last marker in a body is the one read, so one typed into the description is not). */
function withMarker(description: string, marker: string | undefined): string {
  return marker === undefined ? description : `${description}\n\n${marker}`;
}

/**
 * The description made to hold at most DESCRIPTION_MAX_CHARS: rows are dropped from the end of the
 * table (what follows it, why the change is safe and the files, stays), a line under the table
 * saying how many and where every change still is (the pull request's files; with the default
 * commit template, each commit's message lists the images it moves). Only if the text around the
 * table alone is too long is it cut at a line, the last line saying so.
 */
export function fitted(text: string): string {
  if (text.length <= DESCRIPTION_MAX_CHARS) return text;
  const lines = text.split('\n');
  const separator = lines.findIndex((line) => /^\|( *:?-+:? *\|)+$/.test(line));
  let end = separator;
  while (separator >= 0 && end + 1 < lines.length && lines[end + 1]!.startsWith('|')) end++;
  const rows = separator < 0 ? 0 : end - separator;
  const hidden = (n: number) =>
    `_… ${n} more row${n === 1 ? '' : 's'} not shown: Azure DevOps keeps at most 4,000 characters of a description. The pull request's files hold every change; with the default commit messages, each commit lists the images it moves._`;
  for (let shown = rows - 1; shown >= 1; shown--) {
    const candidate = [...lines.slice(0, separator + 1 + shown), '', hidden(rows - shown), ...lines.slice(end + 1)].join('\n');
    if (candidate.length <= DESCRIPTION_MAX_CHARS) return candidate;
  }
  // The text around the table is itself too long (a change of many files): cut at a line.
  const rowsAfter = (kept: number) => (separator < 0 ? 0 : Math.max(0, end + 1 - Math.max(kept, separator + 1)));
  const cut = (kept: number) => {
    const left = rowsAfter(kept);
    const what = left > 0 ? `${left} more row${left === 1 ? '' : 's'} of the table and the rest of the description are` : 'the rest of the description is';
    const note = `_… ${what} not shown: Azure DevOps keeps at most 4,000 characters of a description. The pull request's files hold every change._`;
    return [...lines.slice(0, kept), ...(kept > 0 ? [''] : []), note].join('\n');
  };
  let kept = lines.length;
  while (kept > 0 && cut(kept).length > DESCRIPTION_MAX_CHARS) kept--;
  return cut(kept);
}
