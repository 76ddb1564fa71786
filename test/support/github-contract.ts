/**
 * A stand-in for GitHub's pull request API, held to GitHub's official OpenAPI description
 * (@octokit/openapi): no GitHub can run here, so every request is matched to an operation of the
 * description (method and path), its query parameters and JSON body are validated against the
 * operation's schemas, and every answer is the description's own example, adjusted to the stand-in's
 * state and validated against the response schema. Anything off the contract is recorded as a
 * violation and answered 422.
 */
import { createVerify, randomBytes, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { Ajv, type ValidateFunction } from 'ajv';
import { buildClientSchema, parse, validate as validateGraphql, type GraphQLSchema, type IntrospectionQuery } from 'graphql';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../devenv/process.ts';

interface Operation {
  operationId: string;
  parameters?: Array<{ name: string; in: string; required?: boolean; schema: object }>;
  requestBody?: { content: Record<string, { schema: object }> };
  responses: Record<string, { content?: Record<string, { schema: object; examples?: Record<string, { value: unknown }>; example?: unknown }> }>;
}

type Spec = { paths: Record<string, Record<string, Operation>> };

let loaded: Spec | undefined;
function spec(): Spec {
  const path = createRequire(import.meta.url).resolve('@octokit/openapi/generated/api.github.com.deref.json');
  loaded ??= JSON.parse(readFileSync(path, 'utf8')) as Spec;
  return loaded;
}

/**
 * A GitHub App the stand-in knows, as github.com does: its id and public key (an App's JWT must be
 * RS256, signed by that key, issued by that id, for at most 10 minutes) and the installation that
 * holds the repository. Installation tokens it issues are the only bearer tokens it then takes for
 * the repository's API.
 */
export interface StandInApp {
  readonly id: string;
  readonly publicKey: KeyObject;
  readonly installationId: number;
  /** How long an installation token lives (GitHub: one hour). */
  readonly tokenLifetimeMs?: number;
  /** Each token as it is issued, with the repositories and permissions it was asked for. */
  onToken?(token: string, asked: { repositories?: string[]; permissions?: Record<string, string> }): void;
}

export interface GitHubStandIn {
  /** A pull request opened from a fork (in the same organisation) with a branch named `head` (what a tenant can do). */
  openFromFork(head: string, base: string, body: string): void;
  readonly url: string;
  /** operationIds in the order they were called. */
  readonly calls: string[];
  /** Requests or answers that the description does not allow. */
  readonly violations: string[];
  /** Marks a pull request merged (as a reviewer would on github.com). */
  merge(number: number): void;
  close(number: number): void;
  stop(): Promise<void>;
}

export interface StandInOptions {
  /**
   * Be a GitHub Enterprise Server, API under `/api/v3`, GraphQL at `/api/graphql`, and Git at the
   * same origin (everything else is passed to that Git server), as a GHES serves both.
   */
  readonly gitUpstream?: string;
  /**
   * The repository's bare Git directory, for the Git database API (blobs, trees, commits, refs) and
   * GraphQL's `updateRefs`: the commits an App makes there with an installation token and no author
   * are signed, as GitHub signs them, with `webFlowKey` (an SSH key; gpg.format ssh).
   */
  readonly gitDir?: string;
  readonly webFlowKey?: string;
}

/** GitHub's published GraphQL schema (@octokit/graphql-schema): every document the stand-in takes is validated against it. */
let graphqlSchema: GraphQLSchema | undefined;
async function githubGraphql(): Promise<GraphQLSchema> {
  // Loaded when first asked for: the package parses its JSON form on import.
  // Its introspection form: the SDL form defines some fields twice, which graphql-js refuses.
  graphqlSchema ??= buildClientSchema((await import('@octokit/graphql-schema')).schema.json as unknown as IntrospectionQuery);
  return graphqlSchema;
}
/**
 * OpenAPI 3.0's `nullable`, which Ajv reads only beside a `type`: where the description puts it on a
 * schema without one (an `anyOf` of an App's account), it is said as JSON Schema says it.
 */
function openApiNullable(schema: unknown): object {
  if (Array.isArray(schema)) return schema.map(openApiNullable);
  if (typeof schema !== 'object' || schema === null) return schema as object;
  const copy: Record<string, unknown> = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, openApiNullable(v)]));
  if (copy.nullable === true && copy.type === undefined) {
    delete copy.nullable;
    return { anyOf: [copy, { type: 'null' }] };
  }
  return copy;
}

export async function startGitHubStandIn(app?: StandInApp, options: StandInOptions = {}): Promise<GitHubStandIn> {
  const issued = new Map<string, number>();
  /** Why `authorization` is not a JWT of the App that GitHub would take, or undefined. */
  const jwtRefused = (authorization: string): string | undefined => {
    if (!app) return 'no App configured';
    const token = /^Bearer (.+)$/.exec(authorization)?.[1] ?? '';
    const [header, payload, signature] = token.split('.');
    if (!header || !payload || !signature) return 'not a JWT';
    const decode = (part: string) => JSON.parse(Buffer.from(part, 'base64url').toString('utf8')) as Record<string, unknown>;
    if (decode(header).alg !== 'RS256') return 'not RS256';
    if (!createVerify('RSA-SHA256').update(`${header}.${payload}`).verify(app.publicKey, Buffer.from(signature, 'base64url'))) return 'bad signature';
    const claims = decode(payload);
    const now = Math.floor(Date.now() / 1000);
    if (String(claims.iss) !== app.id) return `issued by ${String(claims.iss)}, not the App ${app.id}`;
    if (typeof claims.iat !== 'number' || claims.iat > now + 60) return 'issued in the future';
    if (typeof claims.exp !== 'number' || claims.exp <= now) return 'expired';
    if (claims.exp - claims.iat > 600) return 'valid for more than 10 minutes';
    return undefined;
  };
  const { paths } = spec();
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: false });
  const coercing = new Ajv({ strict: false, coerceTypes: true, validateFormats: false });
  const compiled = new Map<object, ValidateFunction>();
  const validator = (schema: object, engine = ajv) => {
    let fn = compiled.get(schema);
    if (!fn) {
      fn = engine.compile(openApiNullable(schema));
      compiled.set(schema, fn);
    }
    return fn;
  };
  const routes = Object.entries(paths).map(([template, methods]) => ({
    template,
    methods,
    // A ref (`heads/image-clone/main-…`) is written with its slashes, as GitHub takes it.
    pattern: new RegExp(`^${template.replace(/\{ref\}$/, '(.+)').replace(/\{[^}]+\}/g, '([^/]+)')}$`),
    names: [...template.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!),
  }));

  const pulls: Array<{
    number: number;
    state: 'open' | 'closed';
    merged: boolean;
    title: string;
    body: string;
    head: string;
    base: string;
    draft: boolean;
    labels: string[];
    /** Opened from a fork (another repository) with a branch of the same name. */
    fork?: boolean;
  }> = [];
  const calls: string[] = [];
  const violations: string[] = [];
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}${options.gitUpstream ? '/api/v3' : ''}`;

  const example = (op: Operation, status: string): Record<string, unknown> => {
    const content = op.responses[status]!.content!['application/json']!;
    const value = content.examples ? Object.values(content.examples)[0]!.value : content.example;
    return structuredClone(value) as Record<string, unknown>;
  };
  const pullFrom = (op: Operation, status: string, pull: (typeof pulls)[number]) => {
    const base = example(op, status);
    const shaped = Array.isArray(base) ? (base[0] as Record<string, unknown>) : base;
    const head = shaped.head as Record<string, unknown>;
    const baseRef = shaped.base as Record<string, unknown>;
    return {
      ...shaped,
      number: pull.number,
      html_url: `https://github.com/octo/apps/pull/${pull.number}`,
      state: pull.state,
      title: pull.title,
      body: pull.body,
      draft: pull.draft,
      merged_at: pull.merged ? '2026-11-25T00:00:00Z' : null,
      // GitHub's own example lists a team without the "type" its schema requires; none is simpler.
      requested_teams: [],
      requested_reviewers: [],
      head: pull.fork
        ? // A fork inside the same organisation (octo/apps-fork): GitHub's `head=octo:branch` filter cannot tell it apart.
          { ...head, ref: pull.head, label: `octo:${pull.head}`, repo: { ...(head.repo as object), id: 4242, name: 'apps-fork', full_name: 'octo/apps-fork' } }
        : { ...head, ref: pull.head, label: `octo:${pull.head}`, repo: baseRef.repo },
      base: { ...baseRef, ref: pull.base, label: `octo:${pull.base}` },
    };
  };

  const NODE_ID = 'R_kgDOstandin';
  const gitIn = (args: string[], input?: Buffer, env: Record<string, string> = {}) =>
    execFileSync('git', ['-C', options.gitDir!, ...args], { input, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
      .toString('utf8')
      .trim();
  const tipOf = (ref: string) => {
    try {
      return gitIn(['rev-parse', '--verify', '--quiet', ref]);
    } catch {
      return undefined;
    }
  };
  /** Signed as GitHub signs what an App commits through the API: a web-flow key's signature (here an SSH one). */
  const commitTree = (tree: string, parents: string[], message: string, author: { name: string; email: string } | undefined, signed: boolean) => {
    const who = author ?? { name: `${app?.id ?? 'app'}[bot]`, email: `${app?.id ?? 0}+bot@users.noreply.github.com` };
    const sign = signed && options.webFlowKey ? ['-c', 'gpg.format=ssh', '-c', `user.signingKey=${options.webFlowKey}`] : [];
    return execFileSync('git', ['-C', options.gitDir!, ...sign, 'commit-tree', tree, ...parents.flatMap((p) => ['-p', p]), ...(sign.length ? ['-S'] : [])], {
      input: message,
      env: {
        ...process.env,
        GIT_AUTHOR_NAME: who.name,
        GIT_AUTHOR_EMAIL: who.email,
        GIT_COMMITTER_NAME: author ? who.name : 'GitHub',
        GIT_COMMITTER_EMAIL: author ? who.email : 'noreply@github.com',
      },
    })
      .toString('utf8')
      .trim();
  };

  /** GraphQL: a document valid against GitHub's schema, and of it `updateRefs` only (a compare-and-swap of refs, as documented). */
  const graphql = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      const refuse = (why: string) => {
        violations.push(`POST graphql: ${why}`);
        answer(200, { errors: [{ message: why }] });
      };
      calls.push('graphql');
      const authorization = String(req.headers.authorization ?? '');
      const until = issued.get(authorization.replace(/^Bearer /, ''));
      if (!app || until === undefined || until <= Date.now()) return refuse('not a live installation token');
      let request: {
        query?: string;
        variables?: { input?: { repositoryId?: string; refUpdates?: Array<{ name: string; beforeOid?: string; afterOid: string; force?: boolean }> } };
      };
      try {
        request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return refuse('the body is not JSON');
      }
      let document: ReturnType<typeof parse>;
      try {
        document = parse(request.query ?? '');
      } catch (error) {
        return refuse(`the query does not parse: ${(error as Error).message}`);
      }
      let errors: ReturnType<typeof validateGraphql>;
      try {
        errors = validateGraphql(await githubGraphql(), document);
      } catch (error) {
        return refuse(`the stand-in could not load GitHub's schema: ${(error as Error).message}`);
      }
      if (errors.length) return refuse(`the query is not valid against GitHub's schema: ${errors.map((e) => e.message).join('; ')}`);
      if (!/\bupdateRefs\s*\(/.test(request.query ?? '')) return refuse('the stand-in implements only updateRefs');
      const input = request.variables?.input;
      if (input?.repositoryId !== NODE_ID) return refuse('no such repository node id');
      const NONE = '0'.repeat(40);
      // All or none, each from the value it must hold.
      for (const update of input.refUpdates ?? []) {
        const now = tipOf(update.name) ?? NONE;
        if (update.beforeOid !== undefined && update.beforeOid !== now)
          return answer(200, { data: { updateRefs: null }, errors: [{ type: 'UNPROCESSABLE', message: `${update.name} is not at ${update.beforeOid}` }] });
        if (!update.force && now !== NONE) {
          const base = tipOf(`${update.afterOid}`) ? gitIn(['merge-base', now, update.afterOid]) : '';
          if (base !== now)
            return answer(200, { data: { updateRefs: null }, errors: [{ type: 'UNPROCESSABLE', message: `${update.name}: not a fast-forward` }] });
        }
      }
      for (const update of input.refUpdates ?? [])
        gitIn(['update-ref', update.name, update.afterOid, update.beforeOid === NONE ? '' : (update.beforeOid ?? '')]);
      answer(200, { data: { updateRefs: { clientMutationId: null } } });
    });
  };

  const server: Server = createServer((req, res) => {
    if (req.url === (options.gitUpstream ? '/api/graphql' : '/graphql') && req.method === 'POST') return graphql(req, res);
    if (options.gitUpstream) {
      if (!req.url?.startsWith('/api/v3/')) {
        const upstream = new URL(options.gitUpstream);
        const forwarded = httpRequest(
          { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: { ...req.headers, host: upstream.host } },
          (answer) => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
          },
        );
        forwarded.on('error', () => res.writeHead(502).end());
        req.pipe(forwarded);
        return;
      }
      req.url = req.url.slice('/api/v3'.length);
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://localhost');
      const method = (req.method ?? 'GET').toLowerCase();
      const route = routes.find((r) => r.pattern.test(url.pathname) && r.methods[method]);
      const fail = (why: string) => {
        violations.push(`${req.method} ${url.pathname}: ${why}`);
        res.writeHead(422, { 'content-type': 'application/json' }).end(JSON.stringify({ message: why }));
      };
      if (!route) return fail('no such operation in the OpenAPI description');
      const op = route.methods[method]!;
      calls.push(op.operationId);
      if (req.headers['x-github-api-version'] !== '2022-11-28') return fail('no X-GitHub-Api-Version 2022-11-28 header');
      if (!/^Bearer .+/.test(String(req.headers.authorization))) return fail('no bearer token');
      const authorization = String(req.headers.authorization);
      const appCall = op.operationId.startsWith('apps/');
      if (appCall) {
        const why = jwtRefused(authorization);
        if (why) return fail(`the App's JWT is refused: ${why}`);
      } else if (app) {
        // With an App, the repository's API takes only the installation tokens it issued, while they live.
        const until = issued.get(authorization.slice('Bearer '.length));
        if (until === undefined || until <= Date.now()) return fail('not a live installation token');
      }
      const values = Object.fromEntries(route.names.map((n, i) => [n, decodeURIComponent(route.pattern.exec(url.pathname)![i + 1]!)]));
      for (const param of op.parameters ?? []) {
        const raw = param.in === 'path' ? values[param.name] : param.in === 'query' ? (url.searchParams.get(param.name) ?? undefined) : undefined;
        if (raw === undefined) {
          if (param.required && param.in !== 'header') return fail(`missing ${param.in} parameter ${param.name}`);
          continue;
        }
        const holder = { value: raw };
        if (!validator({ type: 'object', properties: { value: param.schema } }, coercing)(holder))
          return fail(`parameter ${param.name}=${raw} does not match its schema`);
      }
      for (const name of url.searchParams.keys())
        if (!(op.parameters ?? []).some((p) => p.in === 'query' && p.name === name)) return fail(`unknown query parameter ${name}`);
      let body: Record<string, unknown> = {};
      if (op.requestBody) {
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
        } catch {
          return fail('the body is not JSON');
        }
        const validate = validator(op.requestBody.content['application/json']!.schema);
        if (!validate(body)) return fail(`the body does not match the schema: ${ajv.errorsText(validate.errors)}`);
      }

      let status = '200';
      let answer: unknown;
      if (op.operationId === 'pulls/list') {
        const head = url.searchParams.get('head')?.split(':').pop();
        const base = url.searchParams.get('base');
        const state = url.searchParams.get('state') ?? 'open';
        answer = pulls
          .filter((p) => (!head || p.head === head) && (!base || p.base === base) && (state === 'all' || p.state === state))
          .map((p) => pullFrom(op, '200', p));
      } else if (op.operationId === 'pulls/create') {
        if (pulls.some((p) => !p.fork && p.state === 'open' && p.head === body.head && p.base === body.base))
          return fail('a pull request already exists for this head and base (GitHub answers 422)');
        const pull = {
          number: pulls.length + 1,
          state: 'open' as const,
          merged: false,
          title: String(body.title),
          body: String(body.body ?? ''),
          head: String(body.head),
          base: String(body.base),
          draft: body.draft === true,
          labels: [],
        };
        pulls.push(pull);
        status = '201';
        answer = pullFrom(op, '201', pull);
      } else if (op.operationId === 'pulls/update') {
        const pull = pulls.find((p) => p.number === Number(values.pull_number));
        if (!pull) return fail('no such pull request');
        if (typeof body.title === 'string') pull.title = body.title;
        if (typeof body.body === 'string') pull.body = body.body;
        answer = pullFrom(op, '200', pull);
      } else if (op.operationId === 'apps/get-repo-installation') {
        if (values.owner !== 'octo' || values.repo !== 'apps') return fail('no installation for that repository');
        answer = { ...example(op, '200'), id: app!.installationId };
      } else if (op.operationId === 'apps/create-installation-access-token') {
        if (Number(values.installation_id) !== app!.installationId) return fail('no such installation');
        const token = `ghs_${randomBytes(18).toString('base64url')}`;
        const until = Date.now() + (app!.tokenLifetimeMs ?? 3_600_000);
        issued.set(token, until);
        app!.onToken?.(token, body as { repositories?: string[]; permissions?: Record<string, string> });
        status = '201';
        answer = {
          ...example(op, '201'),
          token,
          expires_at: new Date(until).toISOString().replace(/\.\d{3}Z$/, 'Z'),
          permissions: body.permissions ?? {},
          repositories: [],
        };
      } else if (op.operationId === 'repos/get' && options.gitDir) {
        // GitHub's example leaves out the language its schema requires (and lists a fork's source and parent): a repository of its own here.
        const { source: _source, parent: _parent, ...own } = example(op, '200');
        answer = { ...own, language: null, node_id: NODE_ID, name: values.repo, full_name: `${values.owner}/${values.repo}` };
      } else if (op.operationId === 'git/create-blob' && options.gitDir) {
        const content = Buffer.from(String(body.content), body.encoding === 'base64' ? 'base64' : 'utf8');
        const sha = gitIn(['hash-object', '-w', '--stdin'], content);
        status = '201';
        answer = { url: `${baseUrl}/repos/octo/apps/git/blobs/${sha}`, sha };
      } else if (op.operationId === 'git/create-tree' && options.gitDir) {
        const scratch = mkdtempSync(join(tmpdir(), 'standin-index-'));
        try {
          const index = { GIT_INDEX_FILE: join(scratch, 'index') };
          if (body.base_tree) gitIn(['read-tree', String(body.base_tree)], undefined, index);
          for (const entry of body.tree as Array<{ path: string; mode: string; type: string; sha?: string | null; content?: string }>) {
            // As GitHub: a blob's mode, and a sha or a content (whose blob it writes), not both.
            if (entry.type !== 'blob' || !['100644', '100755', '120000'].includes(entry.mode))
              return fail(`tree entry ${entry.path}: not a blob's mode and type`);
            if ((entry.sha !== undefined) === (entry.content !== undefined)) return fail(`tree entry ${entry.path}: give sha or content, one of them`);
            const sha = entry.content !== undefined ? gitIn(['hash-object', '-w', '--stdin'], Buffer.from(entry.content, 'utf8')) : entry.sha;
            // update-index needs a work tree to remove from, even an empty one.
            const worked = ['--work-tree', scratch];
            if (sha === null) gitIn([...worked, 'update-index', '--force-remove', '--', entry.path], undefined, index);
            else gitIn([...worked, 'update-index', '--add', '--cacheinfo', `${entry.mode},${sha},${entry.path}`], undefined, index);
          }
          const sha = gitIn(['write-tree'], undefined, index);
          status = '201';
          answer = { ...example(op, '201'), sha, url: `${baseUrl}/repos/octo/apps/git/trees/${sha}`, truncated: false };
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
      } else if (op.operationId === 'git/create-commit' && options.gitDir) {
        const author = body.author as { name: string; email: string } | undefined;
        // GitHub signs a commit an App makes through the API only when it names no author, committer or signature of its own.
        const signed = app !== undefined && !author && !body.committer && !body.signature;
        const sha = commitTree(String(body.tree), (body.parents as string[]) ?? [], String(body.message), author, signed);
        status = '201';
        answer = {
          ...example(op, '201'),
          sha,
          node_id: `C_${sha}`,
          message: String(body.message),
          tree: { sha: String(body.tree), url: `${baseUrl}/repos/octo/apps/git/trees/${String(body.tree)}` },
          parents: ((body.parents as string[]) ?? []).map((p) => ({
            sha: p,
            url: `${baseUrl}/repos/octo/apps/git/commits/${p}`,
            html_url: `https://github.com/octo/apps/commit/${p}`,
          })),
          verification: signed
            ? { verified: true, reason: 'valid', signature: null, payload: null, verified_at: new Date().toISOString() }
            : { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
        };
      } else if (op.operationId === 'git/get-commit' && options.gitDir) {
        const tree = tipOf(`${values.commit_sha}^{tree}`);
        if (!tree) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Not Found' }));
          return;
        }
        answer = { ...example(op, '200'), sha: values.commit_sha, tree: { sha: tree, url: `${baseUrl}/repos/octo/apps/git/trees/${tree}` } };
      } else if (op.operationId === 'git/get-ref' && options.gitDir) {
        const sha = tipOf(`refs/${values.ref}`);
        if (!sha) {
          res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ message: 'Not Found' }));
          return;
        }
        answer = {
          ref: `refs/${values.ref}`,
          node_id: 'REF_standin',
          url: `${baseUrl}/repos/octo/apps/git/refs/${values.ref}`,
          object: { type: 'commit', sha, url: `${baseUrl}/repos/octo/apps/git/commits/${sha}` },
        };
      } else if (op.operationId === 'issues/add-labels') {
        const pull = pulls.find((p) => p.number === Number(values.issue_number));
        if (!pull) return fail('no such issue');
        pull.labels.push(...((body.labels as string[]) ?? []));
        const template = example(op, '200') as unknown as Array<Record<string, unknown>>;
        answer = pull.labels.map((name, i) => ({ ...template[0], id: i + 1, name }));
      } else {
        return fail(`the stand-in does not implement ${op.operationId}`);
      }
      const responseSchema = op.responses[status]!.content!['application/json']!.schema;
      const check = validator(responseSchema);
      if (!check(answer)) violations.push(`stand-in answer to ${op.operationId} off the schema: ${ajv.errorsText(check.errors)}`);
      res.writeHead(Number(status), { 'content-type': 'application/json' }).end(JSON.stringify(answer));
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    violations,
    merge(number) {
      const pull = pulls.find((p) => p.number === number)!;
      pull.merged = true;
      pull.state = 'closed';
    },
    close(number) {
      pulls.find((p) => p.number === number)!.state = 'closed';
    },
    openFromFork(head, base, body) {
      pulls.push({ number: pulls.length + 1, state: 'open', merged: false, title: 'from a fork', body, head, base, draft: false, labels: [], fork: true });
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
