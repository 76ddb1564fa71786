/**
 * The pull-request flow end to end against a real Gitea (built from the Go module proxy, SQLite,
 * 127.0.0.1): open, update with a later batch, crash-safe (no second pull request), merged and
 * closed changes not proposed again.
 */
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGitea, type Gitea } from '../../devenv/gitea.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { MARKER_PREFIX } from '../../src/rewriter/forges/description.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { exhibit, plantCanary } from '../support/canaries.ts';

const DIGEST = `sha256:${'b'.repeat(64)}`;
let work: string;
let gitea: Gitea;
const logLines: string[] = [];
const repositories: string[] = [];

const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${image}\n`;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'image-clone-gitea-'));
  gitea = await startGitea(join(work, 'gitea'));
  plantCanary(gitea.token);
  plantCanary(gitea.password);
});
after(async () => {
  // For the suite's canary scan: the rewriter's logs, and every pull request and commit it made.
  exhibit('e2e-gitea-logs', logLines.join('\n'));
  for (const name of repositories) {
    exhibit(`e2e-gitea-${name}-pulls`, JSON.stringify(await gitea.api('GET', `/repos/${gitea.user}/${name}/pulls?state=all`).catch(() => [])));
    exhibit(`e2e-gitea-${name}-commits`, JSON.stringify(await gitea.api('GET', `/repos/${gitea.user}/${name}/commits?limit=50`).catch(() => [])));
  }
  await gitea?.stop();
  rmSync(work, { recursive: true, force: true });
});

async function repositoryWith(name: string, files: Record<string, string>): Promise<string> {
  const url = await gitea.createRepository(name);
  repositories.push(name);
  for (const [path, text] of Object.entries(files)) {
    await gitea.api('POST', `/repos/${gitea.user}/${name}/contents/${path}`, {
      content: Buffer.from(text).toString('base64'),
      message: `add ${path}`,
      branch: 'main',
    });
  }
  return url;
}

function record(ledger: Ledger, repoURL: string, name: string, source: string) {
  return ledger.write({
    workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
    images: [
      {
        container: 'app',
        init: false,
        source,
        backup: `backup.io/m/docker.io/library/${source}`,
        digest: DIGEST,
        platforms: ['linux/amd64'],
        sizeBytes: 3 * 1024 * 1024,
      },
    ],
    owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path: 'apps', revision: 'main' }] },
  });
}

function rewriter(ledgerDir: string, cache: string, mode: 'pr' | 'branch' = 'pr'): Rewriter {
  return new Rewriter({
    handoffDir: ledgerDir,
    cacheDir: join(work, cache),
    mode,
    author: { name: 'image-clone', email: 'bot@example.com' },
    logger: createLogger({ write: (line) => void logLines.push(line) }),
    gitCredentials: { username: gitea.user, password: gitea.password },
    credentialScopes: [`${gitea.url}/`],
    forge: { token: gitea.token },
    pullRequests: { labels: ['backup'] },
  });
}

const pulls = async (repo: string) =>
  (await gitea.api('GET', `/repos/${gitea.user}/${repo}/pulls?state=all`)) as Array<{
    number: number;
    state: string;
    merged: boolean;
    body: string;
    title: string;
    head: { ref: string };
    labels: Array<{ name: string }>;
  }>;

describe('pull requests on a real Gitea', () => {
  it('opens one pull request, then updates it with a later batch', async () => {
    const repo = await repositoryWith('shop', { 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    await gitea.api('POST', `/repos/${gitea.user}/shop/labels`, { name: 'backup', color: '#00aabb' });
    const ledger = new Ledger(join(work, 'handoff-shop'));
    const web = await record(ledger, repo, 'web', 'nginx:1.25');
    const [first] = await rewriter(ledger.dir, 'cache-a').processPending();
    assert.equal(first?.result, 'pushed', first?.error);
    let list = await pulls('shop');
    assert.equal(list.length, 1);
    assert.equal(list[0]!.state, 'open');
    assert.equal(list[0]!.title, 'Move 1 workload to backed-up images');
    assert.deepEqual(
      list[0]!.labels.map((l) => l.name),
      ['backup'],
    );
    assert.match(list[0]!.body, /\| shop\/Deployment\/web \| app \| `nginx:1\.25` \| `backup\.io\/m\/docker\.io\/library\/nginx:1\.25` \|/);
    assert.match(list[0]!.body, /\*\*Files changed:\*\* `apps\/web\.yaml`/);

    await record(ledger, repo, 'api', 'redis:7');
    const [second] = await rewriter(ledger.dir, 'cache-a').processPending();
    assert.equal(second?.result, 'pushed', second?.error);
    list = await pulls('shop');
    assert.equal(list.length, 1, 'the same pull request, updated');
    assert.equal(list[0]!.title, 'Move 2 workloads to backed-up images');
    assert.match(list[0]!.body, /shop\/Deployment\/api .*redis:7/);
    assert.match(list[0]!.body, /shop\/Deployment\/web .*nginx:1\.25/);
    assert.match(list[0]!.body, /`apps\/api\.yaml`, `apps\/web\.yaml`/);

    // A crash after the push, before the record was marked done: no second pull request.
    unlinkSync(join(ledger.dir, `${web.id}.done`));
    const [again] = await rewriter(ledger.dir, 'cache-b').processPending();
    assert.notEqual(again?.result, 'failed', again?.error);
    assert.equal((await pulls('shop')).length, 1);
  });

  it('does not propose again a change whose pull request was merged or closed', async () => {
    const repo = await repositoryWith('catalog', {
      'apps/web.yaml': deployment('web', 'nginx:1.25'),
      'apps/db.yaml': deployment('db', 'postgres:16'),
      'apps/cache.yaml': deployment('cache', 'memcached:1.6'),
    });
    const ledger = new Ledger(join(work, 'handoff-catalog'));
    const web = await record(ledger, repo, 'web', 'nginx:1.25');
    await rewriter(ledger.dir, 'cache-c').processPending();
    const [opened] = await pulls('catalog');
    await gitea.merge('catalog', opened!.number);
    unlinkSync(join(ledger.dir, `${web.id}.done`));
    const [merged] = await rewriter(ledger.dir, 'cache-c').processPending();
    assert.equal(merged?.result, 'already-applied', 'merged: the base holds the change');
    assert.equal((await pulls('catalog')).length, 1);

    const db = await record(ledger, repo, 'db', 'postgres:16');
    await rewriter(ledger.dir, 'cache-c').processPending();
    const open = (await pulls('catalog')).find((p) => p.state === 'open')!;
    await gitea.api('PATCH', `/repos/${gitea.user}/catalog/pulls/${open.number}`, { state: 'closed' });
    unlinkSync(join(ledger.dir, `${db.id}.done`));
    const [declined] = await rewriter(ledger.dir, 'cache-c').processPending();
    assert.equal(declined?.result, 'not-reopened');
    const all = await pulls('catalog');
    assert.equal(all.length, 2);
    assert.ok(
      all.every((p) => p.state === 'closed'),
      'the closed one stays closed, nothing new was opened',
    );

    // The next change gets a pull request of its own, without the declined change in it.
    await record(ledger, repo, 'cache', 'memcached:1.6');
    const [next] = await rewriter(ledger.dir, 'cache-c').processPending();
    assert.equal(next?.result, 'pushed', next?.error);
    const fresh = (await pulls('catalog')).find((p) => p.state === 'open')!;
    const files = (await gitea.api('GET', `/repos/${gitea.user}/catalog/pulls/${fresh.number}/files`)) as Array<{ filename: string }>;
    assert.deepEqual(
      files.map((f) => f.filename),
      ['apps/cache.yaml'],
    );
    assert.doesNotMatch(fresh.body, /postgres/);
  });

  it("never adopts, updates or takes as declined a tenant's pull request from a fork with our branch's name", async () => {
    const repo = await repositoryWith('forked', { 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/db.yaml': deployment('db', 'postgres:16') });
    // A tenant forks the repository and opens two pull requests from a branch named as ours (the
    // name is predictable), each carrying our marker: one closed (to decline our change), one open
    // (to be adopted, its rows merged into ours).
    await gitea.api('POST', '/admin/users', { username: 'tenant', email: 'tenant@example.com', password: 'tenant-password-1', must_change_password: false });
    await gitea.api('POST', `/repos/${gitea.user}/forked/forks`, {}, 'tenant');
    const ours = branchName('image-clone/', repo, 'main');
    const marker = (rows: object[]) => `${MARKER_PREFIX} ${JSON.stringify({ change: 'x', rows })} -->`;
    const planted = { workload: 'victims/Deployment/x', container: 'x', from: 'a', to: 'evil.example/a', digest: DIGEST, platforms: [], sizeBytes: 1 };
    const webRow = {
      workload: 'shop/Deployment/web',
      container: 'app',
      from: 'nginx:1.25',
      to: 'backup.io/m/docker.io/library/nginx:1.25',
      digest: DIGEST,
      platforms: ['linux/amd64'],
      sizeBytes: 3 * 1024 * 1024,
    };
    await gitea.api('POST', '/repos/tenant/forked/branches', { new_branch_name: ours, old_branch_name: 'main' }, 'tenant');
    await gitea.api('POST', '/repos/tenant/forked/contents/apps/x.txt', { content: Buffer.from('x').toString('base64'), message: 'x', branch: ours }, 'tenant');
    const fromFork = async (rows: object[]) =>
      (await gitea.api('POST', `/repos/${gitea.user}/forked/pulls`, { head: `tenant:${ours}`, base: 'main', title: 'x', body: marker(rows) }, 'tenant')) as {
        number: number;
      };
    const declined = await fromFork([webRow]);
    await gitea.api('PATCH', `/repos/${gitea.user}/forked/pulls/${declined.number}`, { state: 'closed' });
    const ledger = new Ledger(join(work, 'handoff-forked'));
    await record(ledger, repo, 'web', 'nginx:1.25');
    const [first] = await rewriter(ledger.dir, 'cache-f').processPending();
    assert.equal(first?.result, 'pushed', `a fork's closed pull request does not decline our change: ${first?.error ?? first?.result}`);
    const open = await fromFork([planted]);
    await record(ledger, repo, 'db', 'postgres:16');
    const [second] = await rewriter(ledger.dir, 'cache-f').processPending();
    assert.equal(second?.result, 'pushed', second?.error);
    const list = await pulls('forked');
    const ourPull = list.find((p) => p.number !== open.number && p.state === 'open');
    assert.ok(ourPull, 'our own pull request, opened and then updated');
    assert.match(ourPull.body, /shop\/Deployment\/db/);
    assert.match(ourPull.body, /shop\/Deployment\/web/);
    assert.doesNotMatch(ourPull.body, /victims|evil\.example/, "the tenant's rows are never merged into ours");
    const theirs = (await gitea.api('GET', `/repos/${gitea.user}/forked/pulls/${open.number}`)) as { body: string; title: string };
    assert.equal(theirs.body, marker([planted]), "the fork's pull request is left as it was");
  });

  it('after a crash between the push and opening the pull request, opens exactly one', async () => {
    const repo = await repositoryWith('crash', { 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const ledger = new Ledger(join(work, 'handoff-crash'));
    const { id } = await record(ledger, repo, 'web', 'nginx:1.25');
    // The push lands (branch mode pushes the very branch pr mode uses), then the process "dies".
    const [pushed] = await rewriter(ledger.dir, 'cache-d', 'branch').processPending();
    assert.equal(pushed?.result, 'pushed', pushed?.error);
    assert.equal((await pulls('crash')).length, 0);
    unlinkSync(join(ledger.dir, `${id}.done`));
    const [restarted] = await rewriter(ledger.dir, 'cache-d').processPending();
    assert.equal(restarted?.result, 'pushed', restarted?.error);
    const list = await pulls('crash');
    assert.equal(list.length, 1);
    const commits = (await gitea.api('GET', `/repos/${gitea.user}/crash/pulls/${list[0]!.number}/commits`)) as unknown[];
    assert.equal(commits.length, 1, 'one commit of ours on the branch');
  });
});

/** Our branch as every version has named it by default (`--branch-prefix`, base, the repository URL's hash): pinned, so an upgrade finds its open branches. */
function branchName(prefix: string, repoURL: string, base: string): string {
  return `${prefix}${base}-${createHash('sha256').update(repoURL).digest('hex').slice(0, 8)}`;
}
