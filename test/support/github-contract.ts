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

/**
 * `gitUpstream`: be a GitHub Enterprise Server, API under `/api/v3` and Git at the same origin
 * (everything else is passed to that Git server), as a GHES serves both.
 */
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

export async function startGitHubStandIn(app?: StandInApp, options: { readonly gitUpstream?: string } = {}): Promise<GitHubStandIn> {
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
    pattern: new RegExp(`^${template.replace(/\{[^}]+\}/g, '([^/]+)')}$`),
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

  const server: Server = createServer((req, res) => {
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
