/**
 * The rewriter's Git side against real git: bare repositories served over file://, commit and
 * branch modes, a crash between push and bookkeeping, and other pushers racing it.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Rewriter, type RewriterConfig } from '../../src/rewriter/rewriter.ts';
import { startGitHttpServer } from '../../devenv/git-http-server.ts';
import { startSshServer } from '../../devenv/sshd.ts';
import { CANARIES, exhibit, plantSshKey } from '../support/canaries.ts';
import { startTcpFaultProxy } from '../../devenv/tcp-fault-proxy.ts';
import { bareRepository, git } from '../support/git.ts';

const DIGEST = `sha256:${'d'.repeat(64)}`;
const WEB =
  'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25   # the front end\n';
const NEW_IMAGE = `backup.io/m/docker.io/library/nginx:1.25@${DIGEST}`;

let work: string;

function makeOrigin(name: string, files: Record<string, string>): string {
  const origin = bareRepository(join(work, `${name}.git`), files, 'initial manifests');
  // A reflog in the bare repository records every update of main, to prove none was forced.
  git(origin, 'config', 'core.logAllRefUpdates', 'always');
  return origin;
}

function record(ledger: Ledger, repoURL: string, name = 'web', source = 'nginx:1.25'): Promise<{ id: string }> {
  const backup = `backup.io/m/docker.io/library/${source}`;
  return ledger.write({
    workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
    images: [{ container: 'web', init: false, source, backup, digest: DIGEST, platforms: ['linux/amd64'], sizeBytes: 1 }],
    owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path: 'apps', revision: 'main' }] },
  });
}

/** Waits until `done()` holds, or `ms` have passed (the assertions after it then say what is wrong). */
async function until(done: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((res) => setTimeout(res, 50));
}

function rewriter(handoffDir: string, mode: 'commit' | 'branch', extra: Partial<RewriterConfig> = {}): Rewriter {
  const config: RewriterConfig = {
    handoffDir,
    cacheDir: join(work, `cache-${mode}`),
    mode,
    author: { name: 'image-clone', email: 'bot@example.com' },
    logger: createLogger({ write: () => {} }),
    ...extra,
  };
  return new Rewriter(config);
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'rewriter-git-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

describe('rewriter and git', () => {
  it('commit mode: one commit on the base branch, only the image bytes changed, record done', async () => {
    const origin = makeOrigin('commit', { 'apps/web.yaml': WEB, 'apps/broken.yaml': 'kind: Pod\nspec: [\n', 'other/ignored.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-commit'));
    const { id } = await record(ledger, `file://${origin}`);
    const [outcome] = await rewriter(ledger.dir, 'commit').processPending();
    assert.equal(outcome?.result, 'pushed', outcome?.error);
    assert.equal(git(origin, 'show', 'main:apps/web.yaml'), WEB.replace('nginx:1.25', NEW_IMAGE).trim());
    assert.equal(git(origin, 'show', 'main:other/ignored.yaml'), WEB.trim(), 'outside the owner path: untouched');
    assert.equal(git(origin, 'show', 'main:apps/broken.yaml'), 'kind: Pod\nspec: [', 'a broken file is left as it was');
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '2');
    assert.match(
      git(origin, 'log', '-1', '--format=%an <%ae>%n%B', 'main'),
      /^image-clone <bot@example.com>\nimage-clone: move shop\/web to backed-up images[\s\S]*shop\/Deployment\/web web: nginx:1.25 -> backup\.io/,
    );
    assert.deepEqual(
      ledger.pending().map((r) => r.id),
      [],
    );

    // A crash after the push but before the record was marked done: the restart finds the change
    // on the tip and makes no second commit.
    unlinkSync(join(ledger.dir, `${id}.done`));
    const [again] = await rewriter(ledger.dir, 'commit').processPending();
    assert.equal(again?.result, 'already-applied');
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '2');
    assert.deepEqual(ledger.pending(), []);
  });

  it("takes up a clone left locked by a git that was killed (index.lock, a ref's lock): the next attempt goes through", async () => {
    const origin = makeOrigin('locked', {
      'apps/web.yaml': WEB,
      'apps/api.yaml': WEB.replace('  name: web\n', '  name: api\n').replace('nginx:1.25', 'redis:7'),
    });
    const ledger = new Ledger(join(work, 'handoff-locked'));
    const cacheDir = join(work, 'cache-locked');
    await record(ledger, `file://${origin}`);
    const [first] = await rewriter(ledger.dir, 'commit', { cacheDir }).processPending();
    assert.equal(first?.result, 'pushed', first?.error);
    // What a SIGKILL in the middle of `git checkout` and of a ref update leaves behind.
    const [clone] = readdirSync(cacheDir).filter((name) => /^[0-9a-f]{16}$/.test(name));
    writeFileSync(join(cacheDir, clone!, '.git/index.lock'), '');
    writeFileSync(join(cacheDir, clone!, '.git/refs/heads/main.lock'), '');
    await record(ledger, `file://${origin}`, 'api', 'redis:7');
    const [second] = await rewriter(ledger.dir, 'commit', { cacheDir }).processPending();
    assert.equal(second?.result, 'pushed', second?.error);
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '3');
  });

  it('branch mode: pushes a branch of ours, leaves the base alone, and never commits twice', async () => {
    const origin = makeOrigin('branch', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-branch'));
    const { id } = await record(ledger, `file://${origin}`);
    const [outcome] = await rewriter(ledger.dir, 'branch').processPending();
    assert.equal(outcome?.result, 'pushed', outcome?.error);
    assert.match(outcome!.branch, /^image-clone\/main-[0-9a-f]{8}$/);
    assert.equal(git(origin, 'show', 'main:apps/web.yaml'), WEB.trim(), 'the base branch is not touched');
    assert.ok(git(origin, 'show', `${outcome!.branch}:apps/web.yaml`).includes(NEW_IMAGE));
    unlinkSync(join(ledger.dir, `${id}.done`));
    const [again] = await rewriter(ledger.dir, 'branch').processPending();
    assert.equal(again?.result, 'already-applied');
    assert.equal(git(origin, 'rev-list', '--count', outcome!.branch), '2');
  });

  it('re-applies its edit on the new tip when the base moved between fetch and push', async () => {
    const origin = makeOrigin('moved', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-moved'));
    await record(ledger, `file://${origin}`);
    const other = join(work, 'moved-other');
    git(work, 'clone', '-q', origin, other);
    const attempts: number[] = [];
    const beforePush = async (attempt: number) => {
      attempts.push(attempt);
      if (attempt > 1) return;
      writeFileSync(
        join(other, 'apps/web.yaml'),
        WEB.replace('# the front end', '# the front end, resized').replace('name: web\n  namespace', 'name: web\n  labels: {tier: front}\n  namespace'),
      );
      git(other, 'commit', '-qam', 'someone else edits the same file');
      git(other, 'push', '-q', 'origin', 'HEAD:main');
    };
    const [outcome] = await rewriter(ledger.dir, 'commit', { beforePush }).processPending();
    assert.equal(outcome?.result, 'pushed', outcome?.error);
    assert.deepEqual(attempts, [1, 2], 'the first push was rejected, the second landed');
    const final = git(origin, 'show', 'main:apps/web.yaml');
    assert.ok(final.includes(`image: ${NEW_IMAGE}   # the front end, resized`), final);
    assert.ok(final.includes('labels: {tier: front}'), "the other writer's edit is kept");
    assert.deepEqual(git(origin, 'log', '--format=%s', 'main').split('\n'), [
      'image-clone: move shop/web to backed-up images',
      'someone else edits the same file',
      'initial manifests',
    ]);
  });

  it('never force-pushes while other pushers race it', async () => {
    const origin = makeOrigin('race', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-race'));
    await record(ledger, `file://${origin}`);
    // Another writer pushes a commit every few milliseconds while the rewriter works.
    const other = join(work, 'race-other');
    git(work, 'clone', '-q', origin, other);
    const script = `for i in $(seq 1 30); do sleep 0.05; echo "n: $i" > notes-$i.yaml; git add -A; git -c user.name=o -c user.email=o@o commit -qm "other $i"; git pull -q --rebase origin main 2>/dev/null; git push -q origin HEAD:main 2>/dev/null; done`;
    const racer = spawn('bash', ['-c', script], { cwd: other, stdio: 'ignore' });
    const raced = new Promise((resolve) => racer.on('close', resolve));
    const [outcome] = await rewriter(ledger.dir, 'commit', { maxPushAttempts: 40 }).processPending();
    await raced;
    assert.equal(outcome?.result, 'pushed', outcome?.error);
    const subjects = git(origin, 'log', '--format=%s', 'main').split('\n');
    assert.equal(subjects.filter((s) => s.startsWith('image-clone:')).length, 1, 'exactly one commit of ours');
    assert.ok(subjects.filter((s) => s.startsWith('other ')).length > 0, 'the other writer did push meanwhile');
    const updates = git(origin, 'reflog', 'show', '--format=%H', 'refs/heads/main').split('\n');
    for (let i = 0; i + 1 < updates.length; i++) {
      assert.doesNotThrow(() => git(origin, 'merge-base', '--is-ancestor', updates[i + 1]!, updates[i]!), `update ${updates[i]} of main was a fast-forward`);
    }
    assert.ok(git(origin, 'show', 'main:apps/web.yaml').includes(NEW_IMAGE));
  });

  it('batches a burst of records into one commit, scanning at start and then watching', async () => {
    const images: Record<string, string> = { a: 'nginx:1.25', b: 'redis:7', c: 'busybox:1.36' };
    const files = Object.fromEntries(
      Object.entries(images).map(([n, image]) => [
        `apps/${n}.yaml`,
        WEB.replace('name: web\n  namespace', `name: ${n}\n  namespace`).replace('nginx:1.25', image),
      ]),
    );
    const origin = makeOrigin('watch', files);
    const ledger = new Ledger(join(work, 'handoff-watch'));
    await record(ledger, `file://${origin}`, 'a'); // written while the rewriter was down
    const passes: string[][] = [];
    const r = rewriter(ledger.dir, 'commit');
    // Stopped whatever happens: a watching rewriter left running keeps the test process alive.
    try {
      await r.watch(300, (outcomes) => passes.push(outcomes.flatMap((o) => o.records)));
      assert.equal(passes.length, 1, 'the start-up scan');
      assert.equal(git(origin, 'rev-list', '--count', 'main'), '2');
      // b and c arrive together: one more commit, not two.
      await record(ledger, `file://${origin}`, 'b', images.b);
      await record(ledger, `file://${origin}`, 'c', images.c);
      await until(() => ledger.pending().length === 0, 20_000);
    } finally {
      await r.stop();
    }
    assert.deepEqual(ledger.pending(), []);
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '3', 'one commit for the burst');
    assert.match(git(origin, 'log', '-1', '--format=%s', 'main'), /move 2 workloads/);
    const metrics = r.metrics.render();
    assert.match(metrics, /image_clone_rewrites_total\{result="pushed"\} 2/);
    assert.match(metrics, /image_clone_pending_records 0/);
    assert.ok(r.lastPass.at > 0 && r.lastPass.ok);
    assert.ok(git(origin, 'show', 'main:apps/c.yaml').includes(`backup.io/m/docker.io/library/busybox:1.36@${DIGEST}`));
  });

  it('retries a failed change on its own, with no new record to wake it, once the server takes pushes again', async () => {
    const origin = makeOrigin('refusing', { 'apps/web.yaml': WEB });
    // The server refuses every push while the marker exists, as a protected or read-only remote does.
    writeFileSync(join(origin, 'hooks', 'pre-receive'), '#!/bin/sh\n[ -e "$GIT_DIR/refuse" ] && { echo "pushes are refused for now" >&2; exit 1; }\nexit 0\n', {
      mode: 0o755,
    });
    writeFileSync(join(origin, 'refuse'), '');
    const ledger = new Ledger(join(work, 'handoff-refusing'));
    await record(ledger, `file://${origin}`);
    const results: string[] = [];
    const r = rewriter(ledger.dir, 'commit');
    try {
      await r.watch(100, (outcomes) => results.push(...outcomes.map((o) => o.result)), 200);
      assert.deepEqual(results, ['failed']);
      // Retried by the clock (200 ms, doubling) with no new record: give a loaded machine time.
      await until(() => results.length >= 2, 15_000);
      assert.ok(
        results.every((x) => x === 'failed'),
        `retried while refused: ${results.join(',')}`,
      );
      assert.equal(ledger.pending().length, 1, 'nothing is lost while the server refuses');
      unlinkSync(join(origin, 'refuse'));
      await until(() => ledger.pending().length === 0, 15_000);
    } finally {
      await r.stop();
    }
    assert.deepEqual(ledger.pending(), []);
    assert.equal(results.at(-1), 'pushed');
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '2', 'exactly one commit landed');
  });

  it('image-clone rewriter --once exits 0 and reports what it pushed', async () => {
    const origin = makeOrigin('cli', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-cli'));
    await record(ledger, `file://${origin}`);
    const cli = join(import.meta.dirname, '../../src/cli.ts');
    const result = execFileSync(
      process.execPath,
      [cli, 'rewriter', '--once', '--handoff-dir', ledger.dir, '--cache-dir', join(work, 'cache-cli'), '--git-mode', 'commit', '--log-level', 'warn'],
      { encoding: 'utf8' },
    );
    assert.match(result, /^pushed +file:\/\/.*cli\.git main [0-9a-f]{12} \(1 record\(s\)\)/);
    assert.ok(git(origin, 'show', 'main:apps/web.yaml').includes(NEW_IMAGE));
  });

  it('rides out a Git server that fails a third of its requests (5xx, 429, resets) within one pass', async () => {
    const origin = makeOrigin('flaky', { 'apps/web.yaml': WEB });
    git(origin, 'config', 'http.receivepack', 'true');
    const server = await startGitHttpServer(work, { bot: CANARIES.gitToken });
    const proxy = await startTcpFaultProxy({
      upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) },
      faultRate: 0.34,
      kinds: ['500', '503', '429', 'reset'],
      seed: 5,
    });
    try {
      const ledger = new Ledger(join(work, 'handoff-flaky'));
      await record(ledger, `${proxy.url}/flaky.git`);
      const [outcome] = await rewriter(ledger.dir, 'commit', {
        gitCredentials: { username: 'bot', password: CANARIES.gitToken },
        credentialScopes: [`${proxy.url}/`],
      }).processPending();
      assert.equal(outcome?.result, 'pushed', outcome?.error);
      assert.ok(Object.values(proxy.stats.faults).reduce((a, b) => a + b, 0) >= 1, `faults were injected: ${JSON.stringify(proxy.stats)}`);
      assert.equal(git(origin, 'rev-list', '--count', 'main'), '2');
    } finally {
      await proxy.stop();
      await server.stop();
    }
  });

  it("never contacts a repository outside the credentials' scope: a tenant's server named as repoURL gets no request, in any mode", async () => {
    const seen: string[] = [];
    const tenant = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => tenant.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(tenant.address() as { port: number }).port}/team-b/apps.git`;
    try {
      for (const [mode, scopes] of [
        ['commit', ['https://git.example.com/team-a/']],
        ['pr', ['https://git.example.com/team-a/']],
        ['commit', undefined],
      ] as const) {
        const ledger = new Ledger(join(work, `handoff-tenant-${mode}-${scopes ? 'bound' : 'unbound'}`));
        await record(ledger, url);
        const outcomes = await rewriter(ledger.dir, mode === 'pr' ? 'branch' : mode, {
          ...(mode === 'pr' ? { mode: 'pr', forge: { token: CANARIES.gitToken } } : {}),
          gitCredentials: { username: 'bot', password: CANARIES.gitToken },
          ...(scopes ? { credentialScopes: scopes } : {}),
        }).processPending();
        assert.equal(outcomes.length, 1, JSON.stringify(outcomes));
        assert.equal(outcomes[0]!.result, 'failed');
        assert.match(
          outcomes[0]!.error ?? '',
          scopes ? /^no credentials are configured for http:\/\/127\.0\.0\.1:\d+ / : /^no credentials are sent over plain http \(http:\/\/127\.0\.0\.1:\d+\)/,
        );
        assert.equal(ledger.pending().length, 1, 'the record stays pending, with its reason');
        assert.match(ledger.refusal(ledger.pending()[0]!.id) ?? '', /no credentials/);
      }
      // In scope, but a path whose last two segments are another owner's repository: the forge would be
      // asked about team-b/apps with a token bound to team-a.
      const base = url.replace(/\/team-b\/apps\.git$/, '');
      const ledger = new Ledger(join(work, 'handoff-tenant-nested'));
      await record(ledger, `${base}/team-a/team-b/apps.git`);
      const [nested] = await rewriter(ledger.dir, 'branch', {
        mode: 'pr',
        forge: { token: CANARIES.gitToken },
        gitCredentials: { username: 'bot', password: CANARIES.gitToken },
        credentialScopes: [`${base}/team-a/`],
      }).processPending();
      assert.match(nested?.error ?? '', /cannot find the gitea repository in http:\/\/127\.0\.0\.1:\d+\/team-a\/team-b\/apps\.git: owner\/name/);
      assert.deepEqual(seen, [], 'the tenant server received nothing: no clone, no forge call, no credential');
    } finally {
      tenant.close();
    }
  });

  it('pushes with credentials when its cache directory was given as a relative path', async () => {
    const origin = makeOrigin('relative', { 'apps/web.yaml': WEB });
    git(origin, 'config', 'http.receivepack', 'true');
    const server = await startGitHttpServer(work, { bot: CANARIES.gitToken });
    try {
      const ledger = new Ledger(join(work, 'handoff-relative'));
      await record(ledger, `${server.url}/relative.git`);
      const cacheDir = relative(process.cwd(), join(work, 'cache-relative'));
      assert.ok(!isAbsolute(cacheDir));
      const [outcome] = await rewriter(ledger.dir, 'commit', {
        cacheDir,
        gitCredentials: { username: 'bot', password: CANARIES.gitToken },
        credentialScopes: [`${server.url}/`],
      }).processPending();
      assert.equal(outcome?.result, 'pushed', outcome?.error);
    } finally {
      await server.stop();
    }
  });

  it('pushes over HTTP with Basic credentials that appear in no URL, argument, log or error', async () => {
    const origin = makeOrigin('http', { 'apps/web.yaml': WEB });
    git(origin, 'config', 'http.receivepack', 'true');
    const token = CANARIES.gitToken;
    const server = await startGitHttpServer(work, { bot: token });
    const lines: string[] = [];
    try {
      const ledger = new Ledger(join(work, 'handoff-http'));
      await record(ledger, `${server.url}/http.git`);
      const logger = createLogger({ write: (l) => void lines.push(l) });

      const wrong = await rewriter(ledger.dir, 'commit', {
        logger,
        gitCredentials: { username: 'bot', password: 'wrong-canary-password' },
        credentialScopes: [`${server.url}/`],
      }).processPending();
      assert.equal(wrong[0]?.result, 'failed');
      assert.match(wrong[0]!.error!, /Authentication failed|401/);
      assert.equal(ledger.pending().length, 1, 'a refused push loses nothing');

      // A repository URL that carries a password is refused, and the password is not repeated.
      const leaky = new Ledger(join(work, 'handoff-http-leaky'));
      await record(leaky, `http://bot:${token}@127.0.0.1:1/x.git`);
      const [embedded] = await rewriter(leaky.dir, 'commit', { logger }).processPending();
      assert.equal(embedded?.result, 'failed');
      assert.match(embedded!.error!, /carries a password; give credentials as files instead/);
      assert.ok(!JSON.stringify(embedded).includes(token));

      // Sample every process's arguments while git runs: the token must be in none of them.
      const argv = new Set<string>();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
            try {
              argv.add(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' '));
            } catch {
              // the process ended meanwhile
            }
          }
          await new Promise((r) => setTimeout(r, 2));
        }
      })();
      const [outcome] = await rewriter(ledger.dir, 'commit', {
        logger,
        gitCredentials: { username: 'bot', password: token },
        credentialScopes: [`${server.url}/`],
      }).processPending();
      sampling = false;
      await sampler;
      assert.equal(outcome?.result, 'pushed', outcome?.error);
      assert.ok(
        [...argv].some((a) => a.includes('git') && a.includes('push')),
        'the sampler saw git push run',
      );
      assert.ok(![...argv].some((a) => a.includes(token)), 'the token is in no process argument list');
      assert.ok(git(origin, 'show', 'main:apps/web.yaml').includes(NEW_IMAGE));
      assert.ok(
        server.log.some((r) => r.authorized && r.path.endsWith('/git-receive-pack')),
        'pushed with credentials',
      );
      assert.ok(
        server.log.some((r) => !r.authorized),
        'git asked only after a 401, as the protocol goes',
      );
      const everything = lines.join('\n') + JSON.stringify([wrong, embedded, outcome]) + git(origin, 'log', '--format=%B', 'main');
      for (const secret of [token, 'wrong-canary-password', Buffer.from(`bot:${token}`).toString('base64')])
        assert.ok(!everything.includes(secret), `${secret} leaked`);
    } finally {
      await server.stop();
    }
  });

  it('--dry-run prints the diff and the patch, and commits, pushes, patches and marks nothing', async () => {
    const origin = makeOrigin('dry', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-dry'));
    await record(ledger, `file://${origin}`);
    const cli = join(import.meta.dirname, '../../src/cli.ts');
    const out = execFileSync(
      process.execPath,
      [cli, 'rewriter', '--dry-run', '--handoff-dir', ledger.dir, '--cache-dir', join(work, 'cache-dry'), '--git-mode', 'commit', '--log-level', 'warn'],
      { encoding: 'utf8' },
    );
    assert.match(out, /^would-change +file:\/\/.*dry\.git main \(1 record\(s\)\)$/m);
    assert.match(out, /^- {10}image: nginx:1\.25 {3}# the front end$/m);
    assert.match(out, new RegExp(`^\\+          image: ${NEW_IMAGE.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}   # the front end$`, 'm'));
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '1', 'nothing pushed');
    assert.equal(ledger.pending().length, 1, 'nothing marked done');
  });

  it('--backup-pull secret:NAME: adds imagePullSecrets to the pod template in the same commit, and refuses a workload whose template is not in the tree', async () => {
    const API =
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\nspec:\n  template:\n    spec:\n      imagePullSecrets:\n        - name: backup-pull\n      containers:\n        - name: api\n          image: nginx:1.25\n';
    const origin = makeOrigin('pull-secret', { 'apps/web.yaml': WEB, 'apps/api.yaml': API });
    const ledger = new Ledger(join(work, 'handoff-pull-secret'));
    const owner = {
      tool: 'argocd' as const,
      kind: 'Application' as const,
      namespace: 'argocd',
      name: 'shop',
      sources: [{ repoURL: `file://${origin}`, path: 'apps', revision: 'main' }],
    };
    const image = {
      container: 'web',
      init: false,
      source: 'nginx:1.25',
      backup: 'backup.io/m/docker.io/library/nginx:1.25',
      digest: DIGEST,
      platforms: [],
      sizeBytes: 1,
    };
    const web = await ledger.write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'uid-web' },
      images: [image],
      owner,
      pull: { via: 'secret', secret: 'backup-pull', listedBy: 'none' },
    });
    const api = await ledger.write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'api', uid: 'uid-api' },
      images: [{ ...image, container: 'api' }],
      owner,
      pull: { via: 'secret', secret: 'backup-pull', listedBy: 'pod' },
    });
    const ghost = await ledger.write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'from-a-chart', uid: 'uid-ghost' },
      images: [{ ...image, container: 'x', source: 'redis:7' }],
      owner,
      pull: { via: 'secret', secret: 'backup-pull', listedBy: 'none' },
    });

    const outcomes = await rewriter(ledger.dir, 'commit').processPending();
    const failed = outcomes.find((o) => o.result === 'failed');
    assert.deepEqual(failed?.records, [ghost.id]);
    assert.match(
      failed?.error ?? '',
      /cannot add imagePullSecrets backup-pull to Deployment shop\/from-a-chart: no manifest under apps declares its pod template/,
    );
    assert.equal(outcomes.find((o) => o.result === 'pushed')?.records.length, 2);
    assert.equal(
      git(origin, 'show', 'main:apps/web.yaml'),
      WEB.replace('nginx:1.25', NEW_IMAGE).replace('# the front end\n', '# the front end\n      imagePullSecrets:\n        - name: backup-pull\n').trim(),
    );
    assert.equal(git(origin, 'show', 'main:apps/api.yaml'), API.replace('nginx:1.25', NEW_IMAGE).trim(), 'already listed: only the image moves');
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '2', 'one commit for both');
    assert.deepEqual(
      ledger.pending().map((r) => r.id),
      [ghost.id],
      'the refused record stays pending',
    );
    assert.ok(![web.id, api.id].some((id) => ledger.pending().some((r) => r.id === id)));
  });

  it('adds an images: entry to the overlay for a workload whose manifest lives in a remote base, proved on the base it fetched itself', async () => {
    // The base, in a repository of its own, public (anonymous clones) on a plain-http lab server the operator named.
    makeOrigin('remote-base', { 'deploy/kustomization.yaml': 'resources:\n  - web.yaml\n', 'deploy/web.yaml': WEB });
    const bases = await startGitHttpServer(work, {}, { anonymousRead: true });
    const overlay = `# prod overlay\nresources:\n  - ${bases.url}/remote-base.git//deploy?ref=main\nimages:\n  - name: redis\n    newTag: "7"\n`;
    const origin = makeOrigin('remote', { 'apps/kustomization.yaml': overlay, 'other/kustomization.yaml': 'resources:\n  - https://example.com/x.yaml\n' });
    const ledger = new Ledger(join(work, 'handoff-remote'));
    const { id } = await record(ledger, `file://${origin}`);
    const remote = { credentialScopes: [`${bases.url}/`] };
    try {
      const [outcome] = await rewriter(ledger.dir, 'commit', remote).processPending();
      assert.equal(outcome?.result, 'pushed', outcome?.error);
      assert.equal(
        git(origin, 'show', 'main:apps/kustomization.yaml'),
        `${overlay}  - name: nginx\n    newName: backup.io/m/docker.io/library/nginx\n    newTag: "1.25"\n    digest: ${DIGEST}`.trim(),
      );
      assert.equal(git(origin, 'show', 'main:other/kustomization.yaml'), 'resources:\n  - https://example.com/x.yaml', 'only the owner path is touched');
      unlinkSync(join(ledger.dir, `${id}.done`));
      const [again] = await rewriter(ledger.dir, 'commit', remote).processPending();
      assert.equal(again?.result, 'already-applied', 'the entry is recognised: no second entry, no second commit');
    } finally {
      await bases.stop();
    }
  });

  it('--git-signing-key-file signs every commit (git verify-commit accepts it with the public key as an allowed signer); a key with a passphrase is refused at start-up', async () => {
    const keys = join(work, 'signing');
    execFileSync('mkdir', ['-p', keys]);
    const key = join(keys, 'id_ed25519');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'image-clone signing', '-f', key]);
    const origin = makeOrigin('signed', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-signed'));
    await record(ledger, `file://${origin}`);
    const cli = join(import.meta.dirname, '../../src/cli.ts');
    const run = (signingKey: string) =>
      execFileSync(
        process.execPath,
        [
          cli,
          'rewriter',
          '--once',
          '--handoff-dir',
          ledger.dir,
          '--cache-dir',
          join(work, 'cache-signed'),
          '--git-mode',
          'commit',
          '--author-email',
          'bot@example.com',
          '--git-signing-key-file',
          signingKey,
          '--log-level',
          'warn',
        ],
        { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
      );
    // A key with a passphrase: refused before anything is done, the record left pending.
    const locked = join(keys, 'locked');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'a passphrase', '-f', locked]);
    assert.throws(
      () => run(locked),
      (error: { stderr?: string }) => /--git-signing-key-file .*locked: not an SSH private key usable without a passphrase/.test(error.stderr ?? ''),
    );
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '1');
    assert.match(run(key), /^pushed /);
    // Verified as a forge verifies it: the commit's SSH signature against the account's signing key.
    const signers = join(keys, 'allowed_signers');
    writeFileSync(signers, `bot@example.com ${readFileSync(`${key}.pub`, 'utf8')}`);
    const verified = execFileSync('git', ['-C', origin, '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', '--raw', 'main'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    assert.equal(verified, '');
    const status = execFileSync('git', ['-C', origin, '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'log', '-1', '--format=%G? %GS', 'main'], {
      encoding: 'utf8',
    });
    assert.equal(status.trim(), 'G bot@example.com');
    // Another account's key does not verify it: the signature is the key's, not a flag.
    const other = join(keys, 'other');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    writeFileSync(signers, `bot@example.com ${readFileSync(`${other}.pub`, 'utf8')}`);
    assert.throws(() => execFileSync('git', ['-C', origin, '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', 'main'], { stdio: 'ignore' }));
    // The key is in no commit, and not in the clone's tree.
    assert.equal(git(origin, 'log', '-p', 'main').includes(readFileSync(key, 'utf8').split('\n')[1]!), false);
  });

  it('pushes over SSH with a key and known_hosts from files, and trusts no other host', async () => {
    const origin = makeOrigin('ssh', { 'apps/web.yaml': WEB });
    const sshd = await startSshServer(join(work, 'sshd'));
    plantSshKey(sshd.clientKeyFile);
    const sshLog: string[] = [];
    const logger = createLogger({ write: (line) => void sshLog.push(line) });
    try {
      const ledger = new Ledger(join(work, 'handoff-ssh'));
      await record(ledger, sshd.urlFor(origin));
      const strangers = join(work, 'sshd', 'known_hosts_other');
      writeFileSync(strangers, `[127.0.0.1]:${sshd.port} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHN0cmFuZ2VyIGhvc3Qga2V5IGZvciB0aGlzIHRlc3Q=\n`);
      const [refused] = await rewriter(ledger.dir, 'commit', { logger, gitSsh: { keyFile: sshd.clientKeyFile, knownHostsFile: strangers } }).processPending();
      assert.equal(refused?.result, 'failed');
      assert.match(refused!.error!, /Host key verification failed|REMOTE HOST IDENTIFICATION|cannot fetch/);
      assert.equal(ledger.pending().length, 1);
      const [outcome] = await rewriter(ledger.dir, 'commit', {
        logger,
        gitSsh: { keyFile: sshd.clientKeyFile, knownHostsFile: sshd.knownHostsFile },
      }).processPending();
      assert.equal(outcome?.result, 'pushed', outcome?.error);
      assert.ok(git(origin, 'show', 'main:apps/web.yaml').includes(NEW_IMAGE));
      const seen = { logs: sshLog.join(''), errors: refused!.error!, commits: git(origin, 'log', '-p', '--all') };
      for (const [what, text] of Object.entries(seen)) assert.deepEqual(exhibit(`ssh-${what}`, text), [], `no line of the SSH key in the ${what}`);
    } finally {
      await sshd.stop();
    }
  });

  it('a managed workload whose chain ends outside Git is closed as unsupported-owner, never moved through the unmanaged repository', async () => {
    const unmanaged = makeOrigin('unmanaged-target', { 'apps/web.yaml': WEB });
    const ledger = new Ledger(join(work, 'handoff-unsupported'));
    const images = [
      { container: 'web', init: false, source: 'nginx:1.25', backup: 'backup.io/m/docker.io/library/nginx:1.25', digest: DIGEST, platforms: [], sizeBytes: 1 },
    ];
    const byHand = await ledger.write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'by-hand', uid: 'uid-by-hand' },
      images,
      owner: {
        tool: 'flux',
        kind: 'HelmRelease',
        namespace: 'shop',
        name: 'by-hand',
        sources: [],
        chain: ['HelmRelease shop/by-hand (chart web from HelmRepository flux-system/charts)'],
        unsupported: 'HelmRelease shop/by-hand takes its chart from a HelmRepository and was not applied from Git',
      },
    });
    // Written by a copier of before owners carried a reason: an Argo CD Application whose only source is a chart repository.
    const chart = await ledger.write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'chart-app', uid: 'uid-chart-app' },
      images,
      owner: {
        tool: 'argocd',
        kind: 'Application',
        namespace: 'argocd',
        name: 'ingress',
        sources: [{ repoURL: 'https://charts.example.com', path: undefined, revision: '4.10.0', chart: 'ingress-nginx' }],
      },
    });
    const r = rewriter(ledger.dir, 'commit', { cacheDir: join(work, 'cache-unsupported'), unmanaged: { repoURL: `file://${unmanaged}`, branch: 'main' } });
    const outcomes = await r.processPending();
    assert.deepEqual(outcomes.map((o) => [o.result, o.repoURL]).sort(), [
      ['unsupported-owner', 'argocd:Application/argocd/ingress'],
      ['unsupported-owner', 'flux:HelmRelease/shop/by-hand'],
    ]);
    assert.match(outcomes.find((o) => o.repoURL.startsWith('argocd'))!.error ?? '', /deploys a chart from a chart repository/);
    assert.equal(git(unmanaged, 'rev-list', '--count', 'main'), '1', 'nothing was pushed to the unmanaged repository');
    assert.deepEqual(ledger.pending(), [], 'said once, not retried');
    assert.match(readFileSync(join(ledger.dir, `${byHand.id}.done`), 'utf8'), /not proposed: HelmRelease shop\/by-hand takes its chart/);
    assert.ok(readdirSync(ledger.dir).includes(`${chart.id}.done`));
    assert.match(r.metrics.render(), /image_clone_rewrites_total\{result="unsupported-owner"\} 2/);
  });

  it('/healthz fails while a pass is stuck on a Git server that never answers, naming what it is stuck on, and recovers when the pass ends', async () => {
    const held: import('node:http').ServerResponse[] = [];
    const server = createServer((_req, res) => void held.push(res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as import('node:net').AddressInfo).port;
    const url = `http://127.0.0.1:${port}/stuck.git`;
    const ledger = new Ledger(join(work, 'handoff-stuck'));
    await record(ledger, url);
    const r = rewriter(ledger.dir, 'commit', { cacheDir: join(work, 'cache-stuck'), credentialScopes: [`http://127.0.0.1:${port}/`], stuckAfterMs: 500 });
    try {
      assert.equal(r.healthy().ok, true);
      const pass = r.processPending();
      for (const deadline = Date.now() + 20_000; r.healthy().ok && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 100));
      const health = r.healthy();
      assert.equal(health.ok, false, 'unhealthy while stuck');
      assert.match(health.detail, new RegExp(`^stuck: on http://127\\.0\\.0\\.1:${port}/stuck\\.git main \\(1 records\\) for \\d+ s, more than 0\\.5 s$`));
      // The server goes away: git fails, the pass ends, the record stays pending.
      for (const res of held) res.destroy();
      server.closeAllConnections();
      const outcomes = await pass;
      assert.equal(outcomes[0]?.result, 'failed');
      assert.deepEqual(r.healthy(), { ok: true, detail: 'idle, watching for records' });
      assert.equal(ledger.pendingIds().length, 1);
    } finally {
      server.close();
    }
  });
});
