/**
 * A stand-in for Azure DevOps's Git pull request API (REST, api-version 7.1), held to its
 * documentation, since the package registries here serve no machine-readable description of it:
 * "Pull Requests - Get Pull Requests" (the documented `searchCriteria.*` parameters, `status` one of
 * notSet, active, abandoned, completed or all and active when unset, `$top`/`$skip`, descriptions cut
 * to 400 characters in the answer), "Create" and "Update" (the fields each takes; a description over
 * 4,000 characters refused with 400; a second active pull request for the same branches refused with
 * 409), "Pull Request Properties - List" and "Update" (a JSON Patch document sent as
 * application/json-patch+json; answered as a PropertiesCollection of `{$type, $value}`). Every call
 * needs `api-version=7.1` and a personal access token as HTTP Basic with an empty user name. Errors
 * come in Azure's shape (`message`, `typeKey`). Pull requests from a fork carry `forkSource` and are
 * listed with ours, as Azure lists them. Anything off the documented API is a violation, answered 400.
 */
import { createServer, type Server } from 'node:http';
import { freePort } from '../../devenv/process.ts';

export type Status = 'active' | 'abandoned' | 'completed' | 'notSet';

const LIST_QUERY: Record<string, RegExp> = {
  'api-version': /^.*$/,
  'searchCriteria.creatorId': /^[0-9a-f-]{36}$/i,
  'searchCriteria.includeLinks': /^(true|false)$/,
  'searchCriteria.maxTime': /^.+$/,
  'searchCriteria.minTime': /^.+$/,
  'searchCriteria.queryTimeRangeType': /^(created|closed)$/i,
  'searchCriteria.repositoryId': /^[0-9a-f-]{36}$/i,
  'searchCriteria.reviewerId': /^[0-9a-f-]{36}$/i,
  'searchCriteria.sourceRefName': /^refs\/.+$/,
  'searchCriteria.sourceRepositoryId': /^[0-9a-f-]{36}$/i,
  'searchCriteria.status': /^(notSet|active|abandoned|completed|all)$/i,
  'searchCriteria.targetRefName': /^refs\/.+$/,
  maxCommentLength: /^\d+$/,
  $skip: /^\d+$/,
  $top: /^\d+$/,
};
type Kind = 'string' | 'boolean' | 'object' | 'array';
/** What "Create" takes (the writable part of GitPullRequest for a new pull request). */
const CREATE: Record<string, Kind> = {
  sourceRefName: 'string',
  targetRefName: 'string',
  title: 'string',
  description: 'string',
  isDraft: 'boolean',
  reviewers: 'array',
  labels: 'array',
  workItemRefs: 'array',
  completionOptions: 'object',
  mergeOptions: 'object',
  forkSource: 'object',
};
/** What "Update" documents as updatable (and isDraft, which publishes a draft). */
const UPDATE: Record<string, Kind> = {
  status: 'string',
  title: 'string',
  description: 'string',
  completionOptions: 'object',
  mergeOptions: 'object',
  autoCompleteSetBy: 'object',
  targetRefName: 'string',
  isDraft: 'boolean',
};

interface Pull {
  id: number;
  title: string;
  description: string;
  status: Status;
  isDraft: boolean;
  head: string;
  base: string;
  labels: string[];
  fork: boolean;
  properties: Map<string, unknown>;
}

export interface AzureDevOpsStandIn {
  readonly url: string;
  /** The organization's (or collection's) URL: the API base. */
  readonly api: string;
  /** Each call by name: list, create, update, properties, set-properties. */
  readonly calls: string[];
  readonly violations: string[];
  /** A pull request from a fork's branch of the same name, its rows in a property of ours, as a fork's owner could set it. */
  openFromFork(head: string, base: string, marker: string): number;
  setStatus(id: number, status: Status): void;
  /** A description edited in Azure's web page (a reviewer, or a tenant who may edit the pull request). */
  editDescription(id: number, description: string): void;
  addMany(head: string, base: string, count: number, status: Status): void;
  /** What a pull request holds: its whole description, labels, draft flag and properties. */
  pull(id: number): { description: string; labels: string[]; isDraft: boolean; properties: Map<string, unknown> } | undefined;
  /** How many pull requests of a fork the list answers carried so far. */
  readonly forksListed: number;
  stop(): Promise<void>;
}

/** `prefix`: the organization's or collection's path (`/acme`); `project` as named (spaces allowed); tokens in `refused` are answered 401. */
export async function startAzureDevOpsStandIn(prefix: string, project: string, repo: string, refused: readonly string[] = []): Promise<AzureDevOpsStandIn> {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const repository = {
    id: '3411ebc1-d5aa-464f-9615-0b527bc66719',
    name: repo,
    url: `${url}${prefix}/_apis/git/repositories/3411ebc1`,
    project: { id: 'a7573007-bbb3-4341-b726-0c4148a07853', name: project },
  };
  const forkRepository = { ...repository, id: '9f0e4b3a-0c6b-4f0e-9a55-7c1b1c8e2d10', name: `${repo}-fork` };
  const pulls: Pull[] = [];
  const calls: string[] = [];
  const violations: string[] = [];
  let forksListed = 0;
  const shaped = (p: Pull, listed: boolean) => ({
    repository,
    pullRequestId: p.id,
    codeReviewId: p.id,
    status: p.status,
    createdBy: { id: 'd6245f20-2af8-44f4-9451-8107cb2767db', displayName: 'image-clone' },
    creationDate: new Date(1764806400000 + p.id * 60_000).toISOString(),
    title: p.title,
    // "Please note that description field will be truncated up to 400 symbols in the result."
    description: listed ? p.description.slice(0, 400) : p.description,
    sourceRefName: `refs/heads/${p.head}`,
    targetRefName: `refs/heads/${p.base}`,
    mergeStatus: 'succeeded',
    isDraft: p.isDraft,
    mergeId: 'f5fc8381-3fb2-49fe-8a0d-27dcc2d6ef82',
    reviewers: [],
    labels: p.labels.map((name, i) => ({ id: `label-${i}`, name, active: true })),
    url: `${url}${prefix}/${encodeURIComponent(project)}/_apis/git/repositories/${repository.id}/pullRequests/${p.id}`,
    supportsIterations: true,
    ...(p.fork ? { forkSource: { name: `refs/heads/${p.head}`, repository: forkRepository } } : {}),
  });
  const typed = (fields: Record<string, Kind>, body: Record<string, unknown>): string | undefined => {
    for (const [key, value] of Object.entries(body)) {
      const type = fields[key];
      if (!type) return `${key} is not a field of this call`;
      if (type === 'array' ? !Array.isArray(value) : type === 'object' ? typeof value !== 'object' || value === null : typeof value !== type)
        return `${key} is not a ${type}`;
    }
    return undefined;
  };
  const collection = (p: Pull) => {
    const all = new Map<string, unknown>([
      ['Microsoft.Git.PullRequest.SourceRefName', `refs/heads/${p.head}`],
      ['Microsoft.Git.PullRequest.TargetRefName', `refs/heads/${p.base}`],
      ...p.properties,
    ]);
    const typeOf = (v: unknown) =>
      typeof v === 'string' ? 'System.String' : typeof v === 'boolean' ? 'System.Boolean' : Number.isInteger(v) ? 'System.Int32' : 'System.Double';
    return { count: all.size, value: Object.fromEntries([...all].map(([key, v]) => [key, { $type: typeOf(v), $value: v }])) };
  };

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const at = new URL(req.url ?? '/', url);
      const answer = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
      const refuse = (status: number, message: string, typeKey: string) =>
        answer(status, {
          $id: '1',
          innerException: null,
          message,
          typeName: `Microsoft.TeamFoundation.${typeKey}, Microsoft.TeamFoundation`,
          typeKey,
          errorCode: 0,
          eventId: 3000,
        });
      const fail = (why: string) => {
        violations.push(`${req.method} ${at.pathname}: ${why}`);
        refuse(400, why, 'InvalidArgumentValueException');
      };
      // A personal access token: Basic, an empty user name, the token as the password.
      const basic = /^Basic ([A-Za-z0-9+/=]+)$/.exec(String(req.headers.authorization ?? ''));
      const credentials = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8') : '';
      if (!credentials.startsWith(':') || credentials.length < 2) return fail('no personal access token as Basic with an empty user name');
      if (refused.includes(credentials.slice(1)))
        return refuse(401, 'TF400813: The user is not authorized to access this resource.', 'UnauthorizedRequestException');
      const version = at.searchParams.get('api-version');
      if (version === null) return fail('no api-version');
      if (version !== '7.1') return fail(`api-version=${version} is not 7.1`);
      // Routes match without regard to case (pullrequests, pullRequests), the project by name with its spaces.
      const path = decodeURIComponent(at.pathname).toLowerCase();
      const base = `${prefix}/${project}/_apis/git/repositories/${repo}/pullrequests`.toLowerCase();
      let body: unknown = {};
      if (req.method === 'POST' || req.method === 'PATCH') {
        const type = String(req.headers['content-type'] ?? '');
        const patchDocument = path.endsWith('/properties');
        if (!type.startsWith(patchDocument ? 'application/json-patch+json' : 'application/json'))
          return fail(`a body of ${type || 'no type'}, not ${patchDocument ? 'application/json-patch+json' : 'application/json'}`);
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          return fail('a body that is not JSON');
        }
      }
      if (path === base && req.method === 'GET') {
        calls.push('list');
        for (const [key, value] of at.searchParams) {
          if (!LIST_QUERY[key]) return fail(`unknown query parameter ${key}`);
          if (!LIST_QUERY[key].test(value)) return fail(`${key}=${value} is not one of its documented values`);
        }
        const status = (at.searchParams.get('searchCriteria.status') ?? 'active').toLowerCase();
        const source = at.searchParams.get('searchCriteria.sourceRefName');
        const target = at.searchParams.get('searchCriteria.targetRefName');
        const all = pulls
          .filter((p) => status === 'all' || p.status.toLowerCase() === status)
          .filter((p) => source === null || `refs/heads/${p.head}` === source)
          .filter((p) => target === null || `refs/heads/${p.base}` === target)
          .sort((a, b) => b.id - a.id);
        const skip = Number(at.searchParams.get('$skip') ?? 0);
        const top = Number(at.searchParams.get('$top') ?? 101);
        const page = all.slice(skip, skip + top);
        forksListed += page.filter((p) => p.fork).length;
        return answer(200, { value: page.map((p) => shaped(p, true)), count: page.length });
      }
      if (path === base && req.method === 'POST') {
        calls.push('create');
        const fields = body as Record<string, unknown>;
        const wrong = typeof body === 'object' && body !== null && !Array.isArray(body) ? typed(CREATE, fields) : 'a body that is not an object';
        if (wrong) return fail(wrong);
        if (typeof fields.sourceRefName !== 'string' || typeof fields.targetRefName !== 'string' || !/^refs\/heads\/./.test(fields.sourceRefName))
          return fail('sourceRefName and targetRefName (refs/heads/…) are required');
        if (!Array.isArray(fields.labels ?? []) || !((fields.labels ?? []) as unknown[]).every((l) => typeof (l as { name?: unknown })?.name === 'string'))
          return fail('labels are {name} objects');
        if (typeof fields.description === 'string' && fields.description.length > 4000) {
          violations.push(`POST ${at.pathname}: a description of ${fields.description.length} characters`);
          return refuse(400, 'The description of a pull request cannot be longer than 4000 characters.', 'InvalidArgumentValueException');
        }
        const head = fields.sourceRefName.slice('refs/heads/'.length);
        const target = String(fields.targetRefName).replace(/^refs\/heads\//, '');
        if (pulls.some((p) => !p.fork && p.status === 'active' && p.head === head && p.base === target))
          return refuse(409, 'TF401179: An active pull request for the source and target branch already exists.', 'GitPullRequestExistsException');
        const pull: Pull = {
          id: pulls.length + 1,
          title: String(fields.title ?? ''),
          description: String(fields.description ?? ''),
          status: 'active',
          isDraft: fields.isDraft === true,
          head,
          base: target,
          labels: ((fields.labels ?? []) as Array<{ name: string }>).map((l) => l.name),
          fork: false,
          properties: new Map(),
        };
        pulls.push(pull);
        return answer(201, shaped(pull, false));
      }
      const one = path.startsWith(`${base}/`) ? /^(\d+)(\/properties)?$/.exec(path.slice(base.length + 1)) : null;
      const pull = one ? pulls.find((p) => p.id === Number(one[1])) : undefined;
      if (one && !pull) return refuse(404, `TF401180: The requested pull request was not found.`, 'GitPullRequestNotFoundException');
      if (one && pull && !one[2] && req.method === 'PATCH') {
        calls.push('update');
        const fields = body as Record<string, unknown>;
        const wrong = typeof body === 'object' && body !== null && !Array.isArray(body) ? typed(UPDATE, fields) : 'a body that is not an object';
        if (wrong) return fail(wrong);
        if (typeof fields.description === 'string' && fields.description.length > 4000) {
          violations.push(`PATCH ${at.pathname}: a description of ${fields.description.length} characters`);
          return refuse(400, 'The description of a pull request cannot be longer than 4000 characters.', 'InvalidArgumentValueException');
        }
        if (typeof fields.title === 'string') pull.title = fields.title;
        if (typeof fields.description === 'string') pull.description = fields.description;
        if (typeof fields.status === 'string') pull.status = fields.status as Status;
        return answer(200, shaped(pull, false));
      }
      if (one && pull && one[2] && req.method === 'GET') {
        calls.push('properties');
        if ([...at.searchParams.keys()].some((k) => k !== 'api-version')) return fail('the properties take no parameter but api-version');
        return answer(200, collection(pull));
      }
      if (one && pull && one[2] && req.method === 'PATCH') {
        calls.push('set-properties');
        if (!Array.isArray(body) || body.length === 0) return fail('a JSON Patch document is a non-empty array of operations');
        for (const op of body as Array<Record<string, unknown>>) {
          const keys = Object.keys(op ?? {});
          if (keys.some((k) => !['op', 'path', 'value', 'from'].includes(k))) return fail(`an operation with ${keys.join(', ')}`);
          if (!['add', 'replace', 'remove'].includes(String(op.op))) return fail(`op ${JSON.stringify(op.op)} is not add, replace or remove`);
          if (typeof op.path !== 'string' || (op.path !== '' && !op.path.startsWith('/'))) return fail('path is a JSON Pointer');
          const key = op.path.slice(1);
          if (op.op === 'add' && key === '') {
            if (typeof op.value !== 'object' || op.value === null) return fail('an add with an empty path takes an object of properties');
            for (const [k, v] of Object.entries(op.value)) pull.properties.set(k, v);
          } else if (key === '') return fail(`${op.op} needs a path`);
          else if (op.op === 'remove') pull.properties.delete(key);
          else {
            if (!['string', 'number', 'boolean'].includes(typeof op.value)) return fail('a property value is a primitive');
            pull.properties.set(key, op.value);
          }
        }
        return answer(200, collection(pull));
      }
      return fail('no such operation in the pull request API');
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const add = (head: string, base: string, status: Status, fork: boolean, title: string): Pull => {
    const pull: Pull = { id: pulls.length + 1, title, description: '', status, isDraft: false, head, base, labels: [], fork, properties: new Map() };
    pulls.push(pull);
    return pull;
  };
  return {
    url,
    api: `${url}${prefix}`,
    calls,
    violations,
    openFromFork(head, base, marker) {
      const pull = add(head, base, 'active', true, 'from a fork');
      pull.properties.set('image-clone-controller.rows', marker);
      return pull.id;
    },
    setStatus(id, status) {
      pulls.find((p) => p.id === id)!.status = status;
    },
    addMany(head, base, count, status) {
      for (let i = 0; i < count; i++) add(head, base, status, false, `old ${i}`);
    },
    editDescription(id, description) {
      pulls.find((p) => p.id === id)!.description = description;
    },
    pull(id) {
      const p = pulls.find((p) => p.id === id);
      return p && { description: p.description, labels: p.labels, isDraft: p.isDraft, properties: p.properties };
    },
    get forksListed() {
      return forksListed;
    },
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
