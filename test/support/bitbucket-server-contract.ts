/**
 * A stand-in for Bitbucket Data Center's pull request API (REST 1.0), held to its documentation
 * ("Pull requests": get pull requests for a repository, create, update), since the package registries
 * here serve no machine-readable description of it: the documented query parameters and their values
 * (`state` OPEN, DECLINED, MERGED or ALL; `direction` INCOMING or OUTGOING; `at` a ref id; `order`;
 * `start`, `limit`), the bodies' fields and types (a title and a `fromRef.id` required to create; the
 * `version` read required to update, and a stale one refused with 409, as Bitbucket does), a bearer or
 * basic Authorization header, and answers in its shapes (a paged `values`, refs with repository ids,
 * `links.self`). Anything else is a violation, answered 400.
 */
import { createServer, type Server } from 'node:http';
import { freePort } from '../../devenv/process.ts';

type State = 'OPEN' | 'DECLINED' | 'MERGED';
const LIST_QUERY: Record<string, RegExp> = {
  state: /^(OPEN|DECLINED|MERGED|ALL)$/,
  direction: /^(INCOMING|OUTGOING)$/,
  at: /^refs\/heads\/.+$/,
  order: /^(OLDEST|NEWEST)$/,
  withAttributes: /^(true|false)$/,
  withProperties: /^(true|false)$/,
  draft: /^(true|false)$/,
  filterText: /^.*$/,
  start: /^\d+$/,
  limit: /^\d+$/,
};
const CREATE: Record<string, 'string' | 'boolean' | 'object' | 'array'> = {
  title: 'string',
  description: 'string',
  fromRef: 'object',
  toRef: 'object',
  reviewers: 'array',
  draft: 'boolean',
  locked: 'boolean',
};
const UPDATE: Record<string, 'string' | 'boolean' | 'object' | 'array' | 'number'> = {
  version: 'number',
  title: 'string',
  description: 'string',
  reviewers: 'array',
  toRef: 'object',
  draft: 'boolean',
};

export interface BitbucketServerStandIn {
  readonly url: string;
  /** The API base (`…/rest/api/1.0`). */
  readonly api: string;
  readonly calls: string[];
  readonly violations: string[];
  openFromFork(head: string, base: string, description: string): void;
  setState(id: number, state: State): void;
  /** Another writer edits a pull request (its version moves on). */
  edit(id: number, description: string): void;
  /** Pull requests of ours in bulk: `elsewhere`, from our branch into another repository. */
  addMany(head: string, base: string, count: number, state: State, elsewhere?: boolean): void;
  stop(): Promise<void>;
}

export async function startBitbucketServerStandIn(projectKey: string, slug: string): Promise<BitbucketServerStandIn> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const repository = (id: number, name: string) => ({ id, slug: name, name, project: { key: projectKey, id: 1, type: 'NORMAL' }, public: false, scmId: 'git' });
  const pulls: Array<{
    id: number;
    version: number;
    title: string;
    description: string;
    state: State;
    draft: boolean;
    head: string;
    base: string;
    /** From a fork into this repository (INCOMING here). */
    fork: boolean;
    /** From this repository into another (OUTGOING here). */
    elsewhere?: boolean;
  }> = [];
  const calls: string[] = [];
  const violations: string[] = [];
  const shaped = (p: (typeof pulls)[number]) => ({
    id: p.id,
    version: p.version,
    title: p.title,
    description: p.description,
    state: p.state,
    open: p.state === 'OPEN',
    closed: p.state !== 'OPEN',
    draft: p.draft,
    locked: false,
    fromRef: {
      id: `refs/heads/${p.head}`,
      displayId: p.head,
      latestCommit: 'a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4e5f6a1b2',
      repository: p.fork ? repository(2, `${slug}-fork`) : repository(1, slug),
    },
    toRef: {
      id: `refs/heads/${p.base}`,
      displayId: p.base,
      latestCommit: 'f6e5d4c3b2a1f6e5d4c3b2a1f6e5d4c3b2a1f6e5',
      repository: p.elsewhere ? repository(3, `${slug}-other`) : repository(1, slug),
    },
    links: { self: [{ href: `${url}/projects/${projectKey}/repos/${slug}/pull-requests/${p.id}` }] },
    createdDate: 1764806400000,
    updatedDate: 1764806400000,
  });
  const typed = (fields: Record<string, string>, body: Record<string, unknown>): string | undefined => {
    for (const [key, value] of Object.entries(body)) {
      const type = fields[key];
      if (!type) return `${key} is not a field of this call`;
      if (type === 'array' ? !Array.isArray(value) : type === 'object' ? typeof value !== 'object' || value === null : typeof value !== type)
        return `${key} is not a ${type}`;
    }
    return undefined;
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = new URL(req.url ?? '/', url);
      const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const fail = (why: string) => {
        violations.push(`${req.method} ${at.pathname}: ${why}`);
        answer(400, { errors: [{ message: why }] });
      };
      if (!/^(Bearer|Basic) \S+$/.test(String(req.headers.authorization ?? ''))) return fail('no bearer or basic Authorization');
      let body: Record<string, unknown> = {};
      if (req.method === 'POST' || req.method === 'PUT') {
        if (!String(req.headers['content-type']).startsWith('application/json')) return fail('a body that is not application/json');
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail('a body that is not JSON');
        }
      }
      const base = `/rest/api/1.0/projects/${encodeURIComponent(projectKey)}/repos/${encodeURIComponent(slug)}/pull-requests`;
      if (at.pathname === base && req.method === 'GET') {
        calls.push('list');
        for (const [key, value] of at.searchParams) {
          if (!LIST_QUERY[key]) return fail(`unknown query parameter ${key}`);
          if (!LIST_QUERY[key].test(value)) return fail(`${key}=${value} is not one of its documented values`);
        }
        const state = at.searchParams.get('state') ?? 'OPEN';
        const ref = at.searchParams.get('at');
        const outgoing = (at.searchParams.get('direction') ?? 'INCOMING') === 'OUTGOING';
        // OUTGOING: from a branch of this repository (into it or another); INCOMING: into this repository (from it or a fork).
        const all = pulls
          .filter((p) => state === 'ALL' || p.state === state)
          .filter((p) => (outgoing ? !p.fork : !p.elsewhere))
          .filter((p) => ref === null || `refs/heads/${outgoing ? p.head : p.base}` === ref)
          .sort((a, b) => (at.searchParams.get('order') === 'OLDEST' ? a.id - b.id : b.id - a.id));
        const start = Number(at.searchParams.get('start') ?? 0);
        const limit = Number(at.searchParams.get('limit') ?? 25);
        const last = start + limit >= all.length;
        return answer(200, {
          size: Math.max(0, Math.min(limit, all.length - start)),
          limit,
          isLastPage: last,
          start,
          values: all.slice(start, start + limit).map(shaped),
          ...(last ? {} : { nextPageStart: start + limit }),
        });
      }
      if (at.pathname === base && req.method === 'POST') {
        calls.push('create');
        const wrong = typed(CREATE, body);
        if (wrong) return fail(wrong);
        const from = (body.fromRef as { id?: unknown } | undefined)?.id;
        const to = (body.toRef as { id?: unknown } | undefined)?.id ?? 'refs/heads/main';
        if (typeof body.title !== 'string' || typeof from !== 'string' || typeof to !== 'string') return fail('title and fromRef.id are required');
        const head = from.replace(/^refs\/heads\//, '');
        const target = to.replace(/^refs\/heads\//, '');
        if (pulls.some((p) => !p.fork && p.state === 'OPEN' && p.head === head && p.base === target))
          return answer(409, { errors: [{ message: 'Only one pull request may be open for a given source and target branch' }] });
        const pull = {
          id: pulls.length + 1,
          version: 0,
          title: body.title,
          description: String(body.description ?? ''),
          state: 'OPEN' as State,
          draft: body.draft === true,
          head,
          base: target,
          fork: false,
        };
        pulls.push(pull);
        return answer(201, shaped(pull));
      }
      const one = /\/pull-requests\/(\d+)$/.exec(at.pathname);
      if (one && at.pathname === `${base}/${one[1]}` && req.method === 'PUT') {
        calls.push('update');
        const wrong = typed(UPDATE, body);
        if (wrong) return fail(wrong);
        if (typeof body.version !== 'number') return fail('version is required');
        const pull = pulls.find((p) => p.id === Number(one[1]));
        if (!pull) return answer(404, { errors: [{ message: 'no such pull request' }] });
        if (body.version !== pull.version)
          return answer(409, {
            errors: [{ message: `You are attempting to modify a pull request based on out-of-date information (version ${pull.version})` }],
          });
        if (typeof body.title === 'string') pull.title = body.title;
        if (typeof body.description === 'string') pull.description = body.description;
        pull.version++;
        return answer(200, shaped(pull));
      }
      return fail('no such operation in the pull request API');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url,
    api: `${url}/rest/api/1.0`,
    calls,
    violations,
    openFromFork(head, base, description) {
      pulls.push({ id: pulls.length + 1, version: 0, title: 'from a fork', description, state: 'OPEN', draft: false, head, base, fork: true });
    },
    setState(id, state) {
      const pull = pulls.find((p) => p.id === id)!;
      pull.state = state;
      pull.version++;
    },
    addMany(head, base, count, state, elsewhere = false) {
      for (let i = 0; i < count; i++)
        pulls.push({ id: pulls.length + 1, version: 0, title: `old ${i}`, description: '', state, draft: false, head, base, fork: false, elsewhere });
    },
    edit(id, description) {
      const pull = pulls.find((p) => p.id === id)!;
      pull.description = description;
      pull.version++;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
