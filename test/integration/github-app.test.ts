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

    let bare: string;
    // The key GitHub signs an App's API commits with (its web-flow key; here an SSH one, so git can check it).
    let webFlowKey: string;

    before(async () => {
      webFlowKey = join(work, 'web-flow');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'web-flow', '-f', webFlowKey]);
      const root = join(work, 'git');
      bare = join(root, 'octo', 'apps.git');
      mkdirSync(bare, { recursive: true });
      execFileSync('git', ['init', '-q', '--bare', '--initial-branch=main', bare]);
      execFileSync('git', ['config', 'http.receivepack', 'true'], { cwd: bare });
      const seed = join(work, 'seed');
      execFileSync('git', ['clone', '-q', bare, seed]);
      mkdirSync(join(seed, 'apps'));
      writeFileSync(
        join(seed, 'apps', 'api.yaml'),
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: redis:7\n',
      );
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
        { gitUpstream: git.url, gitDir: bare, webFlowKey },
      );
    });
    /** `image-clone rewriter --once` in pr mode as the App, against the Enterprise-shaped origin. */
    const rewriterOnce = (handoff: string, cache: string, keyFile: string, ...extra: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(
          process.execPath,
          [
            CLI,
            'rewriter',
            '--once',
            '--handoff-dir',
            handoff,
            '--cache-dir',
            join(work, cache),
            '--git-mode',
            'pr',
            '--github-app-id',
            APP_ID,
            '--github-app-key-file',
            keyFile,
            ...extra,
            '--forge',
            'github',
            '--forge-api',
            `${enterprise.url}/api/v3`,
            '--credentials-for',
            `${enterprise.url}/octo/`,
            '--health-address',
            '',
          ],
          { timeout: 120_000 },
          (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );

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
      const result = await rewriterOnce(handoff, 'cache', keyFile);
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

    it("--github-app-signed-commits: the change is committed through the API on the tree git made, signed as GitHub signs an App's, the branch moved by compare-and-swap", async () => {
      const handoff = join(work, 'handoff-signed');
      const repoURL = `${enterprise.url}/octo/apps.git`;
      await new Ledger(handoff).write({
        workload: { kind: 'Deployment', namespace: 'shop', name: 'api', uid: 'uid-api' },
        images: [{ container: 'app', init: false, source: 'redis:7', backup: 'backup.example/m/redis:7', digest: DIGEST, platforms: [], sizeBytes: 1 }],
        owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path: 'apps', revision: 'main' }] },
      });
      const keyFile = join(work, 'app-signed.pem');
      writeFileSync(keyFile, KEY, { mode: 0o600 });
      const branchesBefore = execFileSync('git', ['-C', bare, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/image-clone/'], {
        encoding: 'utf8',
      }).trim();
      const calls = enterprise.calls.length;
      const pushesBefore = git.log.length;
      const result = await rewriterOnce(handoff, 'cache-signed', keyFile, '--github-app-signed-commits');
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(enterprise.violations, []);
      const made = enterprise.calls.slice(calls);
      assert.ok(!made.includes('git/create-blob'), 'a manifest goes inside the tree request');
      for (const call of ['git/create-tree', 'git/create-commit', 'repos/get', 'graphql']) assert.ok(made.includes(call), `${call} in ${made.join(', ')}`);
      // Our branch (the pull request the first test opened) moved forward by one commit: the API's, no push of ours.
      const [ref, previous] = branchesBefore.split(' ') as [string, string];
      const tip = execFileSync('git', ['-C', bare, 'rev-parse', ref], { encoding: 'utf8' }).trim();
      assert.equal(execFileSync('git', ['-C', bare, 'rev-parse', `${tip}^`], { encoding: 'utf8' }).trim(), previous, 'a fast-forward of the branch');
      assert.match(execFileSync('git', ['-C', bare, 'show', `${tip}:apps/api.yaml`], { encoding: 'utf8' }), /image: backup\.example\/m\/redis:7@sha256:e{64}/);
      assert.match(
        execFileSync('git', ['-C', bare, 'log', '-1', '--format=%an|%cn|%s', tip], { encoding: 'utf8' }).trim(),
        new RegExp(`^${APP_ID}\\[bot\\]\\|GitHub\\|image-clone: move shop/api`),
      );
      assert.match(result.stdout, new RegExp(`pushed .* ${tip.slice(0, 12)}`), 'the commit reported is the one the branch holds');
      // Signed, and the signature verifies against the web-flow key (as GitHub shows "Verified").
      const signers = join(work, 'web-flow-signers');
      writeFileSync(signers, `noreply@github.com ${execFileSync('cat', [`${webFlowKey}.pub`], { encoding: 'utf8' })}`);
      execFileSync('git', ['-C', bare, '-c', `gpg.ssh.allowedSignersFile=${signers}`, 'verify-commit', tip], { stdio: 'ignore' });
      assert.deepEqual(
        git.log.slice(pushesBefore).filter((l) => l.path.endsWith('/git-receive-pack')),
        [],
        'nothing pushed with git',
      );
    });

    it("the API's compare-and-swap: a branch that moved is not overwritten, a stale lease is refused, and only a restart from the base forces", async () => {
      const { GitHubApiCommits } = await import('../../src/rewriter/forges/github-commits.ts');
      const token = await new GitHubAppTokens({ appId: APP_ID, privateKey: KEY }, `${enterprise.url}/api/v3`).tokenFor('octo', 'apps');
      const commits = new GitHubApiCommits(`${enterprise.url}/api/v3`, 'octo', 'apps', token);
      const at = (ref: string) => execFileSync('git', ['-C', bare, 'rev-parse', ref], { encoding: 'utf8' }).trim();
      const main = at('refs/heads/main');
      // A local commit on main: one file changed, its blob written where git would have it.
      const content = Buffer.from('kind: ConfigMap\nmetadata:\n  name: cas\n');
      const blob = execFileSync('git', ['-C', bare, 'hash-object', '--stdin'], { input: content, encoding: 'utf8' }).trim();
      const index = join(work, 'cas-index');
      const env = { ...process.env, GIT_INDEX_FILE: index };
      execFileSync('git', ['-C', bare, 'read-tree', 'main'], { env });
      execFileSync('git', ['-C', bare, 'update-index', '--add', '--cacheinfo', `100644,${blob},apps/cas.yaml`], { env });
      execFileSync('git', ['-C', bare, 'hash-object', '-w', '--stdin'], { input: content });
      const tree = execFileSync('git', ['-C', bare, 'write-tree'], { env, encoding: 'utf8' }).trim();
      const history = {
        commits: [
          { sha: 'local', tree, parent: main, parentTree: at('main^{tree}'), message: 'cas', changes: [{ path: 'apps/cas.yaml', mode: '100644', blob }] },
        ],
        blob: async () => content,
      };
      // A new branch: made when it does not exist; refused when it does (the lease "none").
      const made = await commits.publish(history, 'image-clone/cas', undefined, false);
      assert.notEqual(made, 'rejected');
      const first = (made as { pushed: string }).pushed;
      assert.equal(at('refs/heads/image-clone/cas'), first);
      assert.equal(await commits.publish(history, 'image-clone/cas', undefined, false), 'rejected');
      // Built on a tip the branch is no longer at: refused, nothing moved.
      assert.equal(await commits.publish(history, 'image-clone/cas', main, false), 'rejected');
      assert.equal(at('refs/heads/image-clone/cas'), first);
      // Not a fast-forward, without force, from the right tip: GitHub's refusal reported (no other writer to make it again for).
      const again = { ...history, commits: [{ ...history.commits[0]!, message: 'cas, made again from the base' }] };
      await assert.rejects(commits.publish(again, 'image-clone/cas', first, false), /GitHub refused to move image-clone\/cas: .*not a fast-forward/);
      assert.equal(at('refs/heads/image-clone/cas'), first);
      // Our branch restarted from the base, with the tip read as lease: replaced.
      const restarted = await commits.publish(again, 'image-clone/cas', first, true);
      assert.notEqual(restarted, 'rejected');
      assert.equal(at('refs/heads/image-clone/cas'), (restarted as { pushed: string }).pushed);
      assert.deepEqual(enterprise.violations, []);
      // The stand-in's teeth: a document GitHub's schema does not allow is refused as GitHub would.
      const bogus = await fetch(`${enterprise.url}/api/graphql`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: 'mutation { updateRefs(input: {repositoryId: "x", refUpdates: [{name: "refs/heads/x", afterOid: "0"}]}) { ref } }' }),
      });
      assert.match(JSON.stringify(await bogus.json()), /not valid against GitHub's schema: Cannot query field \\"ref\\" on type \\"UpdateRefsPayload\\"/);
      assert.equal(enterprise.violations.splice(0).length, 1);
      // A deletion and a file that is not text (sent as a blob of its own) come out as git's very tree.
      const bytes = Buffer.from([0xff, 0xfe, 0x00, 0x01, 0x80]);
      const binary = execFileSync('git', ['-C', bare, 'hash-object', '-w', '--stdin'], { input: bytes, encoding: 'utf8' }).trim();
      const index2 = join(work, 'cas-index-2');
      const env2 = { ...process.env, GIT_INDEX_FILE: index2 };
      const scratch = mkdtempSync(join(work, 'cas-tree-'));
      execFileSync('git', ['-C', bare, 'read-tree', 'main'], { env: env2 });
      execFileSync('git', ['-C', bare, '--work-tree', scratch, 'update-index', '--force-remove', '--', 'apps/api.yaml'], { env: env2 });
      execFileSync('git', ['-C', bare, 'update-index', '--add', '--cacheinfo', `100644,${binary},apps/logo.bin`], { env: env2 });
      const tree2 = execFileSync('git', ['-C', bare, 'write-tree'], { env: env2, encoding: 'utf8' }).trim();
      const mixed = {
        commits: [
          {
            sha: 'local-2',
            tree: tree2,
            parent: main,
            parentTree: at('main^{tree}'),
            message: 'delete and add bytes',
            changes: [
              { path: 'apps/api.yaml', mode: '100644', blob: null },
              { path: 'apps/logo.bin', mode: '100644', blob: binary },
            ],
          },
        ],
        blob: async () => bytes,
      };
      const calls2 = enterprise.calls.length;
      const published = await commits.publish(mixed, 'image-clone/cas-2', undefined, false);
      assert.notEqual(published, 'rejected');
      assert.equal(at(`${(published as { pushed: string }).pushed}^{tree}`), tree2);
      assert.deepEqual(
        enterprise.calls.slice(calls2).filter((c) => c === 'git/create-blob'),
        ['git/create-blob'],
        'the bytes alone as a blob',
      );
      assert.deepEqual(enterprise.violations, []);
    });
  });
});
