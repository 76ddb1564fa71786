/**
 * GitHub App authentication against the GitHub stand-in held to GitHub's OpenAPI description, which
 * here also holds the App to GitHub's JWT rules (RS256 with the App's key, issued by its id, for at
 * most 10 minutes) and takes, for the repository's API, only the installation tokens it issued while
 * they live. The tokens: found per repository, scoped to it with contents and pull requests write,
 * reused, made again before they expire. Then the rewriter as the command line runs it, against a
 * GitHub Enterprise-shaped origin (API under /api/v3, Git beside it, a real git http-backend that
 * takes only the live installation token): it pushes and opens the pull request with the token alone.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startGitHttpServer, type GitHttpServer } from '../../devenv/git-http-server.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { GitHubForge } from '../../src/rewriter/forges/github.ts';
import { checkGitHubApp, GitHubAppTokens } from '../../src/rewriter/forges/github-app.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { plantCanary } from '../support/canaries.ts';
import { startGitHubStandIn, type GitHubStandIn } from '../support/github-contract.ts';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');
const APP_ID = '424242';
const INSTALLATION = 77;
const DIGEST = `sha256:${'e'.repeat(64)}`;
const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
// As GitHub hands an App's key out: PKCS#1.
const KEY = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();

describe('GitHub App authentication', () => {
  let work: string;
  let github: GitHubStandIn;
  const asked: Array<{ repositories?: string[]; permissions?: Record<string, string> }> = [];
  const tokens: string[] = [];

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'image-clone-ghapp-'));
    plantCanary(KEY.split('\n')[5]!);
    github = await startGitHubStandIn({
      id: APP_ID,
      publicKey,
      installationId: INSTALLATION,
      onToken(token, request) {
        plantCanary(token);
        tokens.push(token);
        asked.push(request);
      },
    });
  });
  after(async () => {
    await github?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('makes an installation token for the repository alone, with what the change needs, reuses it, and makes another before it expires', async () => {
    let now = Date.now();
    const app = new GitHubAppTokens({ appId: APP_ID, privateKey: KEY }, github.url, undefined, () => now);
    const first = await app.tokenFor('octo', 'apps');
    assert.match(first, /^ghs_/);
    assert.deepEqual(asked.at(-1), { repositories: ['apps'], permissions: { contents: 'write', pull_requests: 'write' } });
    assert.deepEqual(github.calls.slice(-2), ['apps/get-repo-installation', 'apps/create-installation-access-token']);
    // Reused while it has more than 5 minutes to live.
    assert.equal(await app.tokenFor('octo', 'apps'), first);
    assert.equal(github.calls.filter((c) => c === 'apps/create-installation-access-token').length, 1);
    // The token opens pull requests; one the stand-in did not issue does not.
    const opened = await new GitHubForge(github.url, 'octo', 'apps', first).open({ head: 'image-clone/main-app', base: 'main', title: 't', body: 'b' });
    assert.equal(opened.number, 1);
    await assert.rejects(new GitHubForge(github.url, 'octo', 'apps', 'ghp_personal').pullRequests('x', 'main'), /HTTP 422: not a live installation token/);
    // 56 minutes later: made again (the installation already known: one call).
    now += 56 * 60_000;
    const second = await app.tokenFor('octo', 'apps');
    assert.notEqual(second, first);
    assert.deepEqual(github.calls.slice(-1), ['apps/create-installation-access-token']);
    assert.deepEqual(
      github.violations.filter((v) => !v.includes('not a live installation token')),
      [],
    );
  });

  it("refuses what GitHub would: another key's JWT, with what to check; and at start-up a key that is not the App's kind", async () => {
    const other = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const before = github.violations.length;
    await assert.rejects(
      new GitHubAppTokens({ appId: APP_ID, privateKey: other }, github.url).tokenFor('octo', 'apps'),
      /GitHub GET \/repos\/octo\/apps\/installation answered HTTP 422: the App's JWT is refused: bad signature/,
    );
    assert.match(github.violations.slice(before).join('\n'), /bad signature/);
    const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    assert.throws(
      () => checkGitHubApp({ appId: APP_ID, privateKey: ec }, '/keys/app.pem'),
      /--github-app-key-file \/keys\/app\.pem: not a PEM RSA private key \(it is an ec key/,
    );
    assert.throws(() => checkGitHubApp({ appId: APP_ID, privateKey: 'junk' }, '/keys/app.pem'), /not a PEM RSA private key/);
    assert.throws(() => checkGitHubApp({ appId: 'my-app', privateKey: KEY }, '/keys/app.pem'), /--github-app-id "my-app": expected the App's numeric id/);
  });

  it("never makes or sends a token for a repository on another host than the App's GitHub, whatever a tenant's owner names", async () => {
    const handoff = mkdtempSync(join(work, 'handoff-evil-'));
    // A tenant's Application names a look-alike path on another host (no call goes there: it is refused first).
    await new Ledger(handoff).write({
      workload: { kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'uid-evil' },
      images: [{ container: 'app', init: false, source: 'nginx:1.25', backup: 'backup.example/m/nginx:1.25', digest: DIGEST, platforms: [], sizeBytes: 1 }],
      owner: {
        tool: 'argocd',
        kind: 'Application',
        namespace: 'argocd',
        name: 'shop',
        sources: [{ repoURL: 'https://evil.example/octo/apps.git', path: 'apps', revision: 'main' }],
      },
    });
    const app = new GitHubAppTokens({ appId: APP_ID, privateKey: KEY }, github.url);
    const minted = github.calls.filter((c) => c.startsWith('apps/')).length;
    for (const mode of ['branch', 'pr'] as const) {
      const rewriter = new Rewriter({
        handoffDir: handoff,
        cacheDir: join(work, `cache-evil-${mode}`),
        mode,
        author: { name: 'image-clone', email: 'bot@example.test' },
        logger: createLogger({ write: () => {} }),
        githubApp: app,
        forge: { token: '', kind: 'github', apiBase: github.url },
      });
      const [outcome] = await rewriter.processPending();
      assert.equal(outcome!.result, 'failed');
      assert.match(outcome!.error!, /the repository https:\/\/evil\.example is not on the forge whose API is http:\/\/127\.0\.0\.1:\d+/);
    }
    assert.equal(github.calls.filter((c) => c.startsWith('apps/')).length, minted, 'no token made for it');
  });

  describe('the rewriter with a GitHub App, on a GitHub Enterprise-shaped origin', () => {
    let git: GitHttpServer;
    let enterprise: GitHubStandIn;
    // The Git server takes the installation token the App was last given, and nothing else.
    const users: Record<string, string> = {};

    before(async () => {
      const root = join(work, 'git');
      const bare = join(root, 'octo', 'apps.git');
      mkdirSync(bare, { recursive: true });
      execFileSync('git', ['init', '-q', '--bare', '--initial-branch=main', bare]);
      execFileSync('git', ['config', 'http.receivepack', 'true'], { cwd: bare });
      const seed = join(work, 'seed');
      execFileSync('git', ['clone', '-q', bare, seed]);
      mkdirSync(join(seed, 'apps'));
      writeFileSync(
        join(seed, 'apps', 'web.yaml'),
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: nginx:1.25\n',
      );
      execFileSync('git', ['add', '-A'], { cwd: seed });
      execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.test', 'commit', '-qm', 'seed'], { cwd: seed });
      execFileSync('git', ['push', '-q', 'origin', 'HEAD:main'], { cwd: seed });
      git = await startGitHttpServer(root, users);
      enterprise = await startGitHubStandIn(
        {
          id: APP_ID,
          publicKey,
          installationId: INSTALLATION,
          onToken(token) {
            plantCanary(token);
            users['x-access-token'] = token;
          },
        },
        { gitUpstream: git.url },
      );
    });
    after(async () => {
      await enterprise?.stop();
      await git?.stop();
    });

    it('pushes and opens the pull request with the installation token alone, which never shows', async () => {
      const handoff = join(work, 'handoff');
      const repoURL = `${enterprise.url}/octo/apps.git`;
      await new Ledger(handoff).write({
        workload: { kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'uid-web' },
        images: [{ container: 'app', init: false, source: 'nginx:1.25', backup: 'backup.example/m/nginx:1.25', digest: DIGEST, platforms: [], sizeBytes: 1 }],
        owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path: 'apps', revision: 'main' }] },
      });
      const keyFile = join(work, 'app.pem');
      writeFileSync(keyFile, KEY, { mode: 0o600 });
      const args = [
        CLI,
        'rewriter',
        '--once',
        '--handoff-dir',
        handoff,
        '--cache-dir',
        join(work, 'cache'),
        '--git-mode',
        'pr',
        '--github-app-id',
        APP_ID,
        '--github-app-key-file',
        keyFile,
        '--forge',
        'github',
        '--forge-api',
        `${enterprise.url}/api/v3`,
        '--credentials-for',
        `${enterprise.url}/octo/`,
        '--health-address',
        '',
      ];
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(process.execPath, args, { timeout: 120_000 }, (error, stdout, stderr) =>
          done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /pushed/);
      assert.deepEqual(enterprise.violations, []);
      assert.deepEqual(
        enterprise.calls.filter((c) => c.startsWith('apps/')),
        ['apps/get-repo-installation', 'apps/create-installation-access-token'],
      );
      assert.ok(enterprise.calls.includes('pulls/create'), enterprise.calls.join(', '));
      // Every push and fetch carried the token as x-access-token; none went without it.
      assert.ok(git.log.some((l) => l.path.endsWith('/git-receive-pack') && l.authorized));
      assert.ok(git.log.filter((l) => l.path.endsWith('/git-receive-pack')).every((l) => l.authorized));
      const token = users['x-access-token']!;
      for (const text of [result.stdout, result.stderr]) {
        assert.ok(!text.includes(token), 'the installation token never shows');
        assert.ok(!text.includes(KEY.split('\n')[5]!), "the App's key never shows");
      }
    });
  });
});
