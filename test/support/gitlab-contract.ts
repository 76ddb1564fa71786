/**
 * A stand-in for GitLab's merge request API (REST v4), held to its documentation ("Merge requests
 * API": List project merge requests, Create MR, Update MR), since GitLab publishes no machine-
 * readable description of these calls: the documented parameters, their types and which are
 * required, the PRIVATE-TOKEN header, and a project named by its URL-encoded path. Anything else is
 * a violation, answered 400.
 */
import { createServer, type Server } from 'node:http';
import { freePort } from '../../devenv/process.ts';

type Type = 'string' | 'integer' | 'boolean' | 'integer[]';
const LIST_QUERY: Record<string, Type> = {
  state: 'string',
  source_branch: 'string',
  target_branch: 'string',
  per_page: 'integer',
  page: 'integer',
  order_by: 'string',
  sort: 'string',
  labels: 'string',
};
const CREATE: Record<string, Type> = {
  source_branch: 'string',
  target_branch: 'string',
  title: 'string',
  description: 'string',
  labels: 'string',
  assignee_id: 'integer',
  assignee_ids: 'integer[]',
  milestone_id: 'integer',
  remove_source_branch: 'boolean',
  reviewer_ids: 'integer[]',
  squash: 'boolean',
  target_project_id: 'integer',
  allow_collaboration: 'boolean',
};
const UPDATE: Record<string, Type> = {
  title: 'string',
  description: 'string',
  labels: 'string',
  target_branch: 'string',
  state_event: 'string',
  assignee_id: 'integer',
  milestone_id: 'integer',
  remove_source_branch: 'boolean',
  squash: 'boolean',
  discussion_locked: 'boolean',
};

export interface GitLabStandIn {
  readonly url: string;
  readonly violations: string[];
  readonly calls: string[];
  merge(iid: number): void;
  /** A merge request from a fork (another project) with a branch named `head`, closed or open (what a tenant can do). */
  fromFork(head: string, base: string, state: 'opened' | 'closed', description: string): void;
  stop(): Promise<void>;
}

export async function startGitLabStandIn(projectPath: string): Promise<GitLabStandIn> {
  const port = await freePort();
  const violations: string[] = [];
  const calls: string[] = [];
  const mrs: Array<{
    iid: number;
    state: 'opened' | 'closed' | 'merged';
    title: string;
    description: string;
    source_branch: string;
    target_branch: string;
    labels: string[];
    /** Opened from a fork (another project) with a branch of the same name. */
    fork?: boolean;
  }> = [];
  const project = `/api/v4/projects/${encodeURIComponent(projectPath)}/merge_requests`;
  const render = ({ fork, ...mr }: (typeof mrs)[number]) => ({
    id: 1000 + mr.iid,
    project_id: 7,
    source_project_id: fork ? 99 : 7,
    target_project_id: 7,
    web_url: `http://gitlab.example/${projectPath}/-/merge_requests/${mr.iid}`,
    ...mr,
    draft: mr.title.startsWith('Draft: '),
  });
  const typeOk = (value: unknown, type: Type) =>
    type === 'integer[]'
      ? Array.isArray(value) && value.every(Number.isInteger)
      : type === 'integer'
        ? Number.isInteger(typeof value === 'string' ? Number(value) : value)
        : typeof value === type;
  const check = (params: Record<string, unknown>, allowed: Record<string, Type>, required: string[]): string | undefined => {
    for (const name of required) if (params[name] === undefined || params[name] === '') return `missing required parameter ${name}`;
    for (const [name, value] of Object.entries(params)) {
      const type = allowed[name];
      if (!type) return `undocumented parameter ${name}`;
      if (!typeOk(value, type)) return `parameter ${name} is not ${type}`;
    }
    return undefined;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const raw = (req.url ?? '').split('?')[0]!;
      const fail = (status: number, why: string) => {
        violations.push(`${req.method} ${raw}: ${why}`);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ message: why }));
      };
      if (req.headers['private-token'] === undefined) return fail(401, 'no PRIVATE-TOKEN header');
      if (!raw.startsWith(project)) return fail(404, 'not the project merge request API (is the project path URL-encoded?)');
      const rest = raw.slice(project.length);
      let body: Record<string, unknown> = {};
      if (chunks.length) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail(400, 'the body is not JSON');
        }
      }
      if (req.method === 'GET' && rest === '') {
        calls.push('list');
        const query = Object.fromEntries(url.searchParams);
        const why = check(query, LIST_QUERY, []);
        if (why) return fail(400, why);
        if (query.state && !['opened', 'closed', 'locked', 'merged', 'all'].includes(query.state)) return fail(400, `state ${query.state} is not documented`);
        const state = query.state ?? 'all';
        return void res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(
            JSON.stringify(
              mrs
                .filter(
                  (m) =>
                    (state === 'all' || m.state === state) &&
                    (!query.source_branch || m.source_branch === query.source_branch) &&
                    (!query.target_branch || m.target_branch === query.target_branch),
                )
                .map(render),
            ),
          );
      }
      if (req.method === 'POST' && rest === '') {
        calls.push('create');
        const why = check(body, CREATE, ['source_branch', 'target_branch', 'title']);
        if (why) return fail(400, why);
        if (String(body.description ?? '').length > 1_048_576) return fail(400, 'description longer than 1,048,576 characters');
        if (mrs.some((m) => !m.fork && m.state === 'opened' && m.source_branch === body.source_branch && m.target_branch === body.target_branch))
          return fail(409, 'another open merge request already exists for this source branch');
        const mr = {
          iid: mrs.length + 1,
          state: 'opened' as const,
          title: String(body.title),
          description: String(body.description ?? ''),
          source_branch: String(body.source_branch),
          target_branch: String(body.target_branch),
          labels: String(body.labels ?? '')
            .split(',')
            .filter(Boolean),
        };
        mrs.push(mr);
        return void res.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify(render(mr)));
      }
      const iid = /^\/(\d+)$/.exec(rest)?.[1];
      if (req.method === 'PUT' && iid) {
        calls.push('update');
        const why = check(body, UPDATE, []);
        if (why) return fail(400, why);
        const mr = mrs.find((m) => m.iid === Number(iid));
        if (!mr) return fail(404, 'no such merge request');
        if (typeof body.title === 'string') mr.title = body.title;
        if (typeof body.description === 'string') mr.description = body.description;
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(render(mr)));
      }
      fail(404, `${req.method} ${rest} is not one of the documented calls this stand-in implements`);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}/api/v4`,
    violations,
    calls,
    merge: (iid) => {
      mrs.find((m) => m.iid === iid)!.state = 'merged';
    },
    fromFork: (head, base, state, description) => {
      mrs.push({ iid: mrs.length + 1, state, title: 'from a fork', description, source_branch: head, target_branch: base, labels: [], fork: true });
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
