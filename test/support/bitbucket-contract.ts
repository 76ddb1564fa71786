/**
 * A stand-in for Bitbucket Cloud's pull request API (REST 2.0), held to its documentation ("Pull
 * requests": list a repository's pull requests, create one, update one), since the package registries
 * here serve no machine-readable description of it: the documented query parameters (`state`, one of
 * OPEN, MERGED, DECLINED, SUPERSEDED, repeatable; the generic `q`, `sort`, `pagelen` of at most 50,
 * `page`, `fields`), a BBQL `q` read for the branch names it filters on, the pull request object's
 * fields and types in bodies (a title and a source branch required to create), a bearer or basic
 * Authorization header, and answers in its shapes (a page of `values`, `type: pullrequest`, the
 * repositories' uuids, `links.html.href`). Anything else is a violation, answered 400.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { freePort } from '../../devenv/process.ts';

const STATES = ['OPEN', 'MERGED', 'DECLINED', 'SUPERSEDED'] as const;
type State = (typeof STATES)[number];
const LIST_QUERY = ['state', 'q', 'sort', 'pagelen', 'page', 'fields'];
/** The pull request object's writable fields, and their types. */
const WRITABLE: Record<string, 'string' | 'boolean' | 'object' | 'array'> = {
  title: 'string',
  description: 'string',
  source: 'object',
  destination: 'object',
  close_source_branch: 'boolean',
  reviewers: 'array',
  draft: 'boolean',
};

export interface BitbucketStandIn {
  readonly url: string;
  /** The repository's API base (`…/2.0`). */
  readonly api: string;
  readonly calls: string[];
  readonly violations: string[];
  /** A pull request from a fork (another repository) with a branch named `head`. */
  openFromFork(head: string, base: string, description: string): void;
  /** A reviewer declines (or merges) one. */
  setState(id: number, state: State): void;
  /** Pull requests of ours in bulk (a busy branch), in a state. */
  addMany(head: string, base: string, count: number, state: State): void;
  /** From now, `next` links point at another host (a hostile or misconfigured server). */
  linkElsewhere(): void;
  stop(): Promise<void>;
}

export async function startBitbucketStandIn(workspace: string, slug: string): Promise<BitbucketStandIn> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const repository = { type: 'repository', full_name: `${workspace}/${slug}`, name: slug, uuid: `{${randomUUID()}}` };
  const fork = { type: 'repository', full_name: `${workspace}/${slug}-fork`, name: `${slug}-fork`, uuid: `{${randomUUID()}}` };
  const pulls: Array<{ id: number; title: string; description: string; state: State; draft: boolean; head: string; base: string; fork: boolean }> = [];
  const calls: string[] = [];
  const violations: string[] = [];
  let nextElsewhere = false;
  const shaped = (p: (typeof pulls)[number]) => ({
    type: 'pullrequest',
    id: p.id,
    title: p.title,
    description: p.description,
    summary: { type: 'rendered', raw: p.description, markup: 'markdown', html: '' },
    state: p.state,
    draft: p.draft,
    close_source_branch: false,
    author: { type: 'user', display_name: 'image-clone-controller' },
    source: { branch: { name: p.head }, commit: { type: 'commit', hash: 'a1b2c3d4e5f6' }, repository: p.fork ? fork : repository },
    destination: { branch: { name: p.base }, commit: { type: 'commit', hash: 'f6e5d4c3b2a1' }, repository },
    links: { html: { href: `https://bitbucket.org/${workspace}/${slug}/pull-requests/${p.id}` } },
    created_on: '2026-12-04T00:00:00.000000+00:00',
    updated_on: '2026-12-04T00:00:00.000000+00:00',
  });

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = new URL(req.url ?? '/', url);
      const fail = (why: string) => {
        violations.push(`${req.method} ${at.pathname}: ${why}`);
        res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ type: 'error', error: { message: why } }));
      };
      const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (!/^(Bearer|Basic) \S+$/.test(String(req.headers.authorization ?? ''))) return fail('no bearer or basic Authorization');
      const base = `/2.0/repositories/${encodeURIComponent(workspace)}/${encodeURIComponent(slug)}/pullrequests`;
      let body: Record<string, unknown> = {};
      if (req.method === 'POST' || req.method === 'PUT') {
        if (!String(req.headers['content-type']).startsWith('application/json')) return fail('a body that is not application/json');
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail('a body that is not JSON');
        }
        for (const [key, value] of Object.entries(body)) {
          const type = WRITABLE[key];
          if (!type) return fail(`${key} is not a writable field of a pull request`);
          if (type === 'array' ? !Array.isArray(value) : type === 'object' ? typeof value !== 'object' || value === null : typeof value !== type)
            return fail(`${key} is not a${type === 'array' || type === 'object' ? 'n' : ''} ${type}`);
        }
        for (const side of ['source', 'destination'] as const) {
          const branch = (body[side] as { branch?: { name?: unknown } } | undefined)?.branch?.name;
          if (body[side] !== undefined && typeof branch !== 'string') return fail(`${side}.branch.name is not a string`);
        }
      }
      if (at.pathname === base && req.method === 'GET') {
        calls.push('list');
        for (const key of at.searchParams.keys()) if (!LIST_QUERY.includes(key)) return fail(`unknown query parameter ${key}`);
        const states = at.searchParams.getAll('state');
        if (states.some((s) => !(STATES as readonly string[]).includes(s))) return fail(`state must be one of ${STATES.join(', ')}`);
        const pagelen = at.searchParams.get('pagelen');
        if (pagelen !== null && !(/^\d+$/.test(pagelen) && Number(pagelen) >= 1 && Number(pagelen) <= 50)) return fail('pagelen is 1 to 50');
        // BBQL, as far as branch filters go: `field = "text"` joined by AND, quotes and backslashes escaped.
        const filters: Record<string, string> = {};
        const q = at.searchParams.get('q');
        if (q !== null) {
          for (const clause of q.split(/\s+AND\s+/)) {
            const m = /^([a-z_.]+)\s*=\s*"((?:[^"\\]|\\.)*)"$/.exec(clause.trim());
            if (!m) return fail(`a BBQL clause it cannot read: ${clause}`);
            filters[m[1]!] = m[2]!.replace(/\\(.)/g, '$1');
          }
        }
        for (const field of Object.keys(filters))
          if (!['source.branch.name', 'destination.branch.name', 'source.repository.full_name'].includes(field))
            return fail(`a BBQL field it does not filter on here: ${field}`);
        const wanted = states.length > 0 ? states : ['OPEN'];
        const all = pulls
          .filter((p) => wanted.includes(p.state))
          .filter((p) => filters['source.branch.name'] === undefined || p.head === filters['source.branch.name'])
          .filter((p) => filters['destination.branch.name'] === undefined || p.base === filters['destination.branch.name'])
          .filter(
            (p) => filters['source.repository.full_name'] === undefined || (p.fork ? fork : repository).full_name === filters['source.repository.full_name'],
          )
          .sort((a, b) => (at.searchParams.get('sort') === '-id' ? b.id - a.id : a.id - b.id));
        // Paged as Bitbucket pages: `pagelen` a page (default 10), `next` the absolute URL of the next one.
        const size = Number(pagelen ?? 10);
        const page = Number(at.searchParams.get('page') ?? 1);
        const next = new URL(at.href);
        next.searchParams.set('page', String(page + 1));
        const more = page * size < all.length;
        return answer(200, {
          pagelen: size,
          size: all.length,
          page,
          values: all.slice((page - 1) * size, page * size).map(shaped),
          ...(more ? { next: nextElsewhere ? next.href.replace('127.0.0.1', 'localhost') : next.href } : {}),
        });
      }
      if (at.pathname === base && req.method === 'POST') {
        calls.push('create');
        if (typeof body.title !== 'string') return fail('title is required');
        const head = (body.source as { branch: { name: string } } | undefined)?.branch.name;
        if (head === undefined) return fail('source.branch.name is required');
        const target = (body.destination as { branch: { name: string } } | undefined)?.branch.name ?? 'main';
        if (pulls.some((p) => !p.fork && p.state === 'OPEN' && p.head === head && p.base === target))
          return fail('there is already an open pull request from this branch (Bitbucket answers 400)');
        const pull = {
          id: pulls.length + 1,
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
      const one = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/(\\d+)$`).exec(at.pathname);
      if (one && req.method === 'PUT') {
        calls.push('update');
        const pull = pulls.find((p) => p.id === Number(one[1]));
        if (!pull) return answer(404, { type: 'error', error: { message: 'no such pull request' } });
        if (typeof body.title === 'string') pull.title = body.title;
        if (typeof body.description === 'string') pull.description = body.description;
        return answer(200, shaped(pull));
      }
      return fail('no such operation in the pull request API');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url,
    api: `${url}/2.0`,
    calls,
    violations,
    openFromFork(head, base, description) {
      pulls.push({ id: pulls.length + 1, title: 'from a fork', description, state: 'OPEN', draft: false, head, base, fork: true });
    },
    setState(id, state) {
      pulls.find((p) => p.id === id)!.state = state;
    },
    addMany(head, base, count, state) {
      for (let i = 0; i < count; i++) pulls.push({ id: pulls.length + 1, title: `old ${i}`, description: '', state, draft: false, head, base, fork: false });
    },
    linkElsewhere() {
      nextElsewhere = true;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
