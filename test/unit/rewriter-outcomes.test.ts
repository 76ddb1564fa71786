/**
 * Every outcome of the rewriter's Git step, one test each, with the workspace and forge injected:
 * real git on a local bare repository (quick, and the real thing), a forge held in memory (its
 * HTTP side is tested against Gitea and the GitHub and GitLab contracts elsewhere), and a
 * workspace wrapper where a test needs the remote to move under it.
 */
import { createHash } from 'node:crypto';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { pullRequestBody, rowsFromDescription, rowsOf } from '../../src/rewriter/forges/description.ts';
import type { Forge, PullRequest, PullRequestSpec } from '../../src/rewriter/forges/forge.ts';
import { GitWorkspace, type Workspace } from '../../src/rewriter/git/workspace.ts';
import { parseNaming } from '../../src/rewriter/grouping.ts';
import { Rewriter, type RewriterConfig } from '../../src/rewriter/rewriter.ts';
import { bareRepository, git } from '../support/git.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: ${name}\n          image: ${image}\n`;

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'rewriter-outcomes-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

let serial = 0;
/** A bare repository holding `files` on main, and its file:// URL. */
function origin(files: Record<string, string>): { url: string; dir: string } {
  const dir = bareRepository(join(work, `origin-${++serial}.git`), files);
  return { url: `file://${dir}`, dir };
}

function fileAt(repo: string, ref: string, path: string): string {
  return git(repo, 'show', `${ref}:${path}`);
}

/** The forge's side of pull requests, in memory: what the rewriter asked, and what it would see. */
class MemoryForge implements Forge {
  readonly kind = 'gitea' as const;
  readonly pulls: PullRequest[] = [];
  readonly calls: string[] = [];
  failWith: Error | undefined;

  async pullRequests(head: string, base: string): Promise<PullRequest[]> {
    this.calls.push('list');
    if (this.failWith) throw this.failWith;
    return this.pulls.filter((p) => p.head === head && p.base === base).reverse();
  }
  async open(spec: PullRequestSpec): Promise<PullRequest> {
    this.calls.push('open');
    const pr: PullRequest = { number: this.pulls.length + 1, url: `https://forge.test/pulls/${this.pulls.length + 1}`, state: 'open', ...spec };
    this.pulls.push(pr);
    return pr;
  }
  async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
    this.calls.push('update');
    const updated = { ...pr, ...change };
    this.pulls[this.pulls.indexOf(this.pulls.find((p) => p.number === pr.number)!)] = updated;
    return updated;
  }
}

interface Setup {
  readonly ledger: Ledger;
  readonly rewriter: Rewriter;
}

function setup(mode: RewriterConfig['mode'], extra: Partial<RewriterConfig> = {}): Setup {
  const handoffDir = join(work, `handoff-${++serial}`);
  const config: RewriterConfig = {
    handoffDir,
    cacheDir: join(work, `cache-${serial}`),
    mode,
    author: { name: 'image-clone', email: 'bot@example.com' },
    logger: createLogger({ write: () => {} }),
    maxPushAttempts: 3,
    ...extra,
  };
  return { ledger: new Ledger(handoffDir), rewriter: new Rewriter(config) };
}

async function record(ledger: Ledger, repoURL: string, name: string, source: string, path = 'apps'): Promise<string> {
  const { id } = await ledger.write({
    workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
    images: [{ container: name, init: false, source, backup: `backup.io/m/${source}`, digest: DIGEST, platforms: ['linux/amd64'], sizeBytes: 1 }],
    owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path, revision: 'main' }] },
  });
  return id;
}

const done = (ledger: Ledger, id: string) => existsSync(join(ledger.dir, `${id}.done`));

describe('rewriter outcomes, one per Git step', () => {
  it('commit mode, pushed: one commit on the base, the record done', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const { ledger, rewriter } = setup('commit');
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome, ...rest] = await rewriter.processPending();
    assert.equal(rest.length, 0);
    assert.equal(outcome!.result, 'pushed');
    assert.equal(outcome!.branch, 'main');
    assert.match(fileAt(repo.dir, 'main', 'apps/web.yaml'), new RegExp(`image: backup\\.io/m/nginx:1\\.25@${DIGEST}`));
    assert.equal(outcome!.commit, git(repo.dir, 'rev-parse', 'main'));
    assert.ok(done(ledger, id));
  });

  it('branch mode, pushed: our branch carries the change, the base is untouched', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const { ledger, rewriter } = setup('branch', { naming: parseNaming({ branchPrefix: 'backups/' }) });
    await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    const branch = branchName('backups/', repo.url, 'main');
    assert.deepEqual([outcome!.result, outcome!.branch], ['pushed', branch]);
    assert.match(fileAt(repo.dir, branch, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
    assert.match(fileAt(repo.dir, 'main', 'apps/web.yaml'), /image: nginx:1\.25$/m);
  });

  it('already applied: the tip holds the new image, nothing is committed, the record done', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', `backup.io/m/nginx:1.25@${DIGEST}`) });
    const tip = git(repo.dir, 'rev-parse', 'main');
    const { ledger, rewriter } = setup('commit');
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.equal(outcome!.result, 'already-applied');
    assert.equal(git(repo.dir, 'rev-parse', 'main'), tip);
    assert.ok(done(ledger, id));
  });

  it('not found: no manifest names the old or the new image; done, nothing committed', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'httpd:2') });
    const tip = git(repo.dir, 'rev-parse', 'main');
    const { ledger, rewriter } = setup('commit');
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.equal(outcome!.result, 'not-found');
    assert.equal(git(repo.dir, 'rev-parse', 'main'), tip);
    assert.ok(done(ledger, id));
  });

  it('dry run: the diff that would be pushed, and nothing pushed or marked', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const tip = git(repo.dir, 'rev-parse', 'main');
    const { ledger, rewriter } = setup('commit', { dryRun: true });
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.equal(outcome!.result, 'would-change');
    assert.match(outcome!.plan!, /^-\s+image: nginx:1\.25$/m);
    assert.match(outcome!.plan!, /^\+\s+image: backup\.io\/m\/nginx:1\.25@sha256:e+$/m);
    assert.equal(git(repo.dir, 'rev-parse', 'main'), tip);
    assert.ok(!done(ledger, id));
  });

  it('pull request opened: the branch pushed from the base and a description of what moves', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const forge = new MemoryForge();
    const { ledger, rewriter } = setup('pr', { openForge: () => forge, forge: { token: 't' }, pullRequests: { draft: true, labels: ['backups'] } });
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.deepEqual([outcome!.result, outcome!.pullRequest], ['pushed', 'https://forge.test/pulls/1']);
    const [pr] = forge.pulls as [PullRequest & PullRequestSpec];
    assert.deepEqual([pr.head, pr.base, pr.draft, pr.labels], [branchName('image-clone/', repo.url, 'main'), 'main', true, ['backups']]);
    assert.match(pr.body, /\| shop\/Deployment\/web \| web \| `nginx:1\.25` \|/);
    assert.match(pr.body, /\*\*Files changed:\*\* `apps\/web\.yaml`/);
    assert.match(fileAt(repo.dir, pr.head, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
    assert.ok(done(ledger, id));
  });

  it('pull request updated: a later batch lands on the same branch and adds its rows to the description', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    const forge = new MemoryForge();
    const { ledger, rewriter } = setup('pr', { openForge: () => forge });
    await record(ledger, repo.url, 'web', 'nginx:1.25');
    await rewriter.processPending();
    await record(ledger, repo.url, 'api', 'redis:7');
    const [outcome] = await rewriter.processPending();
    assert.deepEqual([outcome!.result, outcome!.pullRequest], ['pushed', 'https://forge.test/pulls/1']);
    assert.deepEqual(
      forge.calls.filter((c) => c !== 'list'),
      ['open', 'update'],
    );
    const [pr] = forge.pulls;
    assert.match(pr!.body, /shop\/Deployment\/web/);
    assert.match(pr!.body, /shop\/Deployment\/api/);
    assert.match(fileAt(repo.dir, pr!.head, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
    assert.match(fileAt(repo.dir, pr!.head, 'apps/api.yaml'), /backup\.io\/m\/redis/);
  });

  it('--group-by namespace with templates: one branch and pull request per namespace, named and titled as the operator asked', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    const forge = new MemoryForge();
    const naming = parseNaming({
      groupBy: 'namespace',
      branchTemplate: 'backups/{{cluster}}/{{group}}-{{hash}}',
      titleTemplate: '[{{cluster}}] {{group}}: move {{count}} to backups',
    });
    const { ledger, rewriter } = setup('pr', { openForge: () => forge, naming });
    for (const [namespace, name, source] of [
      ['shop', 'web', 'nginx:1.25'],
      ['billing', 'api', 'redis:7'],
    ] as const)
      await ledger.write({
        workload: { kind: 'Deployment', namespace, name, uid: `uid-${name}` },
        images: [{ container: name, init: false, source, backup: `backup.io/m/${source}`, digest: DIGEST, platforms: [], sizeBytes: 1 }],
        owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL: repo.url, path: 'apps', revision: 'main' }] },
        cluster: { name: 'east', uid: 'u-east' },
      });
    const outcomes = await rewriter.processPending();
    assert.deepEqual(
      outcomes.map((o) => o.result),
      ['pushed', 'pushed'],
    );
    const pulls = [...forge.pulls].sort((a, b) => a.head.localeCompare(b.head));
    assert.deepEqual(
      pulls.map((p) => p.title),
      ['[east] billing: move 1 to backups', '[east] shop: move 1 to backups'],
    );
    assert.match(pulls[0]!.head, /^backups\/east\/billing-[0-9a-f]{16}$/);
    assert.match(pulls[1]!.head, /^backups\/east\/shop-[0-9a-f]{16}$/);
    // Each branch carries its own namespace's change only.
    assert.match(fileAt(repo.dir, pulls[0]!.head, 'apps/api.yaml'), /backup\.io\/m\/redis/);
    assert.match(fileAt(repo.dir, pulls[0]!.head, 'apps/web.yaml'), /image: nginx:1\.25$/m);
    assert.match(fileAt(repo.dir, pulls[1]!.head, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
    assert.match(fileAt(repo.dir, pulls[1]!.head, 'apps/api.yaml'), /image: redis:7$/m);
    assert.match(pulls[1]!.body, /^\| east \| shop\/Deployment\/web \|/m);
  });

  it("another cluster's installation writing the description at the same time: a pull request it opened first is added to, and rows its stale write dropped are written again", async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    const west = {
      cluster: 'west',
      workload: 'shop/Deployment/worker',
      container: 'worker',
      from: 'busybox:1',
      to: 'backup.io/m/busybox:1',
      digest: DIGEST,
      platforms: [],
      sizeBytes: 1,
    };
    class RacingForge extends MemoryForge {
      raced = { open: false, update: false };
      override async open(spec: PullRequestSpec): Promise<PullRequest> {
        if (this.raced.open) return super.open(spec);
        // West opened it a moment before: ours is refused, as Gitea answers 409.
        this.raced.open = true;
        await super.open({ ...spec, title: 'west', body: pullRequestBody([west], []) });
        throw new Error('409 Conflict: pull request already exists for these targets');
      }
      override async update(pr: PullRequest, change: { title: string; body: string }): Promise<PullRequest> {
        const read = this.pulls.find((p) => p.number === pr.number)!.body;
        const ours = await super.update(pr, change);
        if (!this.raced.update && rowsFromDescription(change.body).some((r) => r.workload === 'shop/Deployment/api')) {
          // West's write, made from what it read before ours landed: our new row is gone.
          this.raced.update = true;
          await super.update(ours, { title: 'west', body: pullRequestBody(rowsFromDescription(read), []) });
        }
        return ours;
      }
    }
    const forge = new RacingForge();
    const { ledger, rewriter } = setup('pr', { openForge: () => forge });
    await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [first] = await rewriter.processPending();
    assert.equal(first!.result, 'pushed');
    assert.equal(forge.pulls.length, 1, 'added to the pull request west opened');
    await record(ledger, repo.url, 'api', 'redis:7');
    const [second] = await rewriter.processPending();
    assert.equal(second!.result, 'pushed');
    assert.ok(forge.raced.update);
    assert.deepEqual(
      rowsFromDescription(forge.pulls[0]!.body)
        .map((r) => `${r.cluster ?? '-'} ${r.workload}`)
        .sort(),
      ['- shop/Deployment/api', '- shop/Deployment/web', 'west shop/Deployment/worker'],
    );
  });

  it("a commit pushed to our branch while no pull request is open (a tenant's, or a change a reviewer declined) is not carried into a new one", async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/worker.yaml': deployment('worker', 'busybox:1') });
    const forge = new MemoryForge();
    const { ledger, rewriter } = setup('pr', { openForge: () => forge });
    const branch = branchName('image-clone/', repo.url, 'main');
    const tenant = join(work, `tenant-${serial}`);
    git(work, 'clone', '-q', repo.url, tenant);
    writeFileSync(join(tenant, 'apps/worker.yaml'), deployment('worker', 'evil.example/worker:1'));
    git(tenant, '-c', 'user.name=image-clone', '-c', 'user.email=bot@example.com', 'commit', '-qam', 'image-clone: move shop/worker');
    git(tenant, 'push', '-q', 'origin', `HEAD:refs/heads/${branch}`);
    await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.equal(outcome!.result, 'pushed');
    assert.match(fileAt(repo.dir, branch, 'apps/worker.yaml'), /image: busybox:1$/m, "the tenant's commit is gone");
    assert.match(fileAt(repo.dir, branch, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
  });

  it('another installation that pushed and proposed between our look and our push: its commit is built on, never replaced', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/worker.yaml': deployment('worker', 'busybox:1') });
    const forge = new MemoryForge();
    const branch = branchName('image-clone/', repo.url, 'main');
    const west = join(work, `west-${serial}`);
    git(work, 'clone', '-q', repo.url, west);
    const { ledger, rewriter } = setup('pr', {
      openForge: () => forge,
      // Just before our first push: west pushes its change to the shared branch and opens the pull request.
      beforePush: async (attempt) => {
        if (attempt !== 1) return;
        writeFileSync(join(west, 'apps/worker.yaml'), deployment('worker', `backup.io/m/busybox:1@${DIGEST}`));
        git(west, '-c', 'user.name=west', '-c', 'user.email=west@example.test', 'commit', '-qam', 'west moves worker');
        git(west, 'push', '-q', 'origin', `HEAD:refs/heads/${branch}`);
        await forge.open({ head: branch, base: 'main', title: 'west', body: pullRequestBody([], []) });
      },
    });
    await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.equal(outcome!.result, 'pushed');
    assert.match(fileAt(repo.dir, branch, 'apps/worker.yaml'), /backup\.io\/m\/busybox/, "west's commit is still there");
    assert.match(fileAt(repo.dir, branch, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
    assert.equal(forge.pulls.length, 1);
  });

  it('replaced after our push (another installation restarted the branch): not done, and made again on the next pass', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const branch = branchName('image-clone/', repo.url, 'main');
    let replaced = false;
    class ReplacingForge extends MemoryForge {
      override async open(spec: PullRequestSpec): Promise<PullRequest> {
        if (!replaced) {
          // West, acting on what it read before our push, puts the branch back to the base.
          replaced = true;
          git(repo.dir, 'update-ref', `refs/heads/${branch}`, git(repo.dir, 'rev-parse', 'main'));
        }
        return super.open(spec);
      }
    }
    const forge = new ReplacingForge();
    const { ledger, rewriter } = setup('pr', { openForge: () => forge });
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [first] = await rewriter.processPending();
    assert.equal(first!.result, 'failed');
    assert.match(first!.error!, /was replaced after our push .* made again on the next pass/);
    assert.ok(!done(ledger, id), 'still pending');
    const [second] = await rewriter.processPending();
    assert.equal(second!.result, 'pushed');
    assert.match(fileAt(repo.dir, branch, 'apps/web.yaml'), /backup\.io\/m\/nginx/);
    assert.ok(done(ledger, id));
  });

  it('closed, not proposed again: a reviewer closed this very change; done, no branch pushed', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const forge = new MemoryForge();
    const { ledger, rewriter } = setup('pr', { openForge: () => forge });
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const branch = branchName('image-clone/', repo.url, 'main');
    const rows = rowsOf([ledger.read(id)]);
    forge.pulls.push({
      number: 7,
      url: 'https://forge.test/pulls/7',
      state: 'closed',
      head: branch,
      base: 'main',
      title: 'x',
      body: pullRequestBody(rows, []),
    });
    const [outcome] = await rewriter.processPending();
    assert.deepEqual([outcome!.result, outcome!.pullRequest], ['not-reopened', 'https://forge.test/pulls/7']);
    assert.throws(() => git(repo.dir, 'rev-parse', '--verify', branch));
    assert.ok(done(ledger, id));
  });

  it('refused: a record whose path leads out of the clone fails alone; the rest of its repository goes ahead', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    const { ledger, rewriter } = setup('commit');
    const good = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const bad = await record(ledger, repo.url, 'api', 'redis:7', '../../etc');
    const outcomes = await rewriter.processPending();
    const refused = outcomes.find((o) => o.result === 'failed')!;
    assert.deepEqual(refused.records, [bad]);
    assert.match(refused.error!, /\.\.\/\.\.\/etc/);
    const pushed = outcomes.find((o) => o.result === 'pushed')!;
    assert.deepEqual(pushed.records, [good]);
    assert.ok(done(ledger, good));
    assert.ok(!done(ledger, bad));
    assert.match(fileAt(repo.dir, 'main', 'apps/api.yaml'), /image: redis:7$/m);
  });

  it('failed: the base moves before every push; re-applied each time, then given up with the count, record pending', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const other = join(work, `other-${++serial}`);
    git(work, 'clone', '-q', repo.dir, other);
    let pushes = 0;
    const { ledger, rewriter } = setup('commit', {
      openWorkspace: (url) => {
        const real = new GitWorkspace(url, join(work, `ws-${serial}`));
        const moving: Workspace = {
          dir: real.dir,
          checkout: (...args) => real.checkout(...args),
          commitAll: (...args) => real.commitAll(...args),
          diff: () => real.diff(),
          differsFrom: (base) => real.differsFrom(base),
          changedFiles: (base) => real.changedFiles(base),
          landed: (branch) => real.landed(branch),
          head: () => real.head(),
          // Someone else lands a commit on main just before each of our pushes.
          push: async (branch, lease) => {
            pushes++;
            writeFileSync(join(other, `other-${pushes}.txt`), 'x');
            git(other, 'add', '-A');
            git(other, 'commit', '-qm', `other ${pushes}`);
            git(other, 'push', '-q', 'origin', 'HEAD:main');
            return real.push(branch, lease);
          },
        };
        return moving;
      },
    });
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.deepEqual([outcome!.result, outcome!.error], ['failed', 'push still rejected after 3 attempts']);
    assert.equal(pushes, 3);
    assert.match(fileAt(repo.dir, 'main', 'apps/web.yaml'), /image: nginx:1\.25$/m);
    assert.ok(!done(ledger, id));
    assert.equal(rewriter.lastPass.ok, false);
  });

  it('failed: the forge cannot list pull requests; nothing pushed, record pending, the reason said', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const forge = new MemoryForge();
    forge.failWith = new Error('forge answered 502');
    const { ledger, rewriter } = setup('pr', { openForge: () => forge });
    const id = await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.deepEqual([outcome!.result, outcome!.error], ['failed', 'forge answered 502']);
    assert.throws(() => git(repo.dir, 'rev-parse', '--verify', branchName('image-clone/', repo.url, 'main')));
    assert.ok(!done(ledger, id));
  });

  it('failed: pr mode without a forge token is a clear configuration error', async () => {
    const repo = origin({ 'apps/web.yaml': deployment('web', 'nginx:1.25') });
    const { ledger, rewriter } = setup('pr');
    await record(ledger, repo.url, 'web', 'nginx:1.25');
    const [outcome] = await rewriter.processPending();
    assert.deepEqual([outcome!.result, outcome!.error], ['failed', '--git-mode pr needs a forge token (--forge-token-file)']);
  });
});

/** Our branch as every version has named it by default (`--branch-prefix`, base, the repository URL's hash): pinned, so an upgrade finds its open branches. */
function branchName(prefix: string, repoURL: string, base: string): string {
  return `${prefix}${base}-${createHash('sha256').update(repoURL).digest('hex').slice(0, 8)}`;
}
