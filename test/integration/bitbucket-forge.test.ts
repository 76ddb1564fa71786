/**
 * The Bitbucket Cloud and Data Center clients against stand-ins held to Bitbucket's documented pull
 * request APIs (test/support/bitbucket-contract.ts, bitbucket-server-contract.ts), alone and as the
 * rewriter's forge in pr mode: opened, updated by a later batch, a declined pull request not proposed
 * again, a fork's never taken for ours; on Data Center, an update names the version it read.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { BitbucketForge } from '../../src/rewriter/forges/bitbucket.ts';
import { BitbucketServerForge } from '../../src/rewriter/forges/bitbucket-server.ts';
import { forgeRefusal, kindOf } from '../../src/rewriter/forges/forge.ts';
import { forgeFor } from '../../src/rewriter/forges/registry.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { startBitbucketStandIn, type BitbucketStandIn } from '../support/bitbucket-contract.ts';
import { startBitbucketServerStandIn, type BitbucketServerStandIn } from '../support/bitbucket-server-contract.ts';
import { bareRepository, git } from '../support/git.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${image}\n`;

let bitbucket: BitbucketStandIn;
let server: BitbucketServerStandIn;
let work: string;
before(async () => {
  bitbucket = await startBitbucketStandIn('acme', 'apps');
  server = await startBitbucketServerStandIn('PLAT', 'apps');
  work = mkdtempSync(join(tmpdir(), 'image-clone-bitbucket-'));
});
after(async () => {
  await bitbucket?.stop();
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('Bitbucket Cloud pull requests, checked against the documented API', () => {
  it('lists in every state, opens a draft, updates; a declined one counts as closed, a merged one as merged', async () => {
    const forge = new BitbucketForge(bitbucket.api, 'acme', 'apps', 'bb-token');
    assert.deepEqual(await forge.pullRequests('image-clone/main-1', 'main'), []);
    const opened = await forge.open({ head: 'image-clone/main-1', base: 'main', title: 'Move 1 workload', body: 'table', draft: true, labels: ['ignored'] });
    assert.deepEqual([opened.number, opened.state, opened.url], [1, 'open', 'https://bitbucket.org/acme/apps/pull-requests/1']);
    const updated = await forge.update(opened, { title: 'Move 2 workloads', body: 'bigger "table"' });
    assert.equal(updated.body, 'bigger "table"');
    bitbucket.setState(1, 'DECLINED');
    assert.equal((await forge.pullRequests('image-clone/main-1', 'main'))[0]?.state, 'closed');
    const again = await forge.open({ head: 'image-clone/main-1', base: 'main', title: 'Move 1 workload', body: 'table' });
    bitbucket.setState(again.number, 'MERGED');
    assert.deepEqual(
      (await forge.pullRequests('image-clone/main-1', 'main')).map((p) => [p.number, p.state]),
      [
        [2, 'merged'],
        [1, 'closed'],
      ],
    );
    // A branch name with a quote is filtered as itself, not as BBQL.
    assert.deepEqual(await forge.pullRequests('image-clone/"x" OR "1"="1', 'main'), []);
    assert.deepEqual(bitbucket.violations, []);
  });

  it("never takes a fork's pull request from a branch of the same name for ours", async () => {
    const forge = new BitbucketForge(bitbucket.api, 'acme', 'apps', 'bb-token');
    bitbucket.openFromFork('image-clone/main-fork', 'main', '<!-- image-clone-controller: {"rows":[]} -->');
    assert.deepEqual(await forge.pullRequests('image-clone/main-fork', 'main'), []);
    assert.deepEqual(bitbucket.violations, []);
  });

  it('has teeth: a request off the documented API is refused and recorded', async () => {
    const before = bitbucket.violations.length;
    const response = await request(`${bitbucket.api}/repositories/acme/apps/pullrequests`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'x', source: { branch: { name: 'b' } }, labels: ['x'] }),
    });
    await response.body.dump();
    assert.equal(response.statusCode, 400);
    assert.match(bitbucket.violations.slice(before).join('\n'), /labels is not a writable field/);
  });

  it('reads every page of a busy branch (never taking "not on the first page" for "none"), and never follows a page link elsewhere', async () => {
    const forge = new BitbucketForge(bitbucket.api, 'acme', 'apps', 'bb-token');
    const violations = bitbucket.violations.length;
    bitbucket.addMany('image-clone/busy', 'main', 120, 'DECLINED');
    const open = await forge.open({ head: 'image-clone/busy', base: 'main', title: 't', body: 'b' });
    bitbucket.addMany('image-clone/busy', 'main', 60, 'SUPERSEDED');
    const seen = await forge.pullRequests('image-clone/busy', 'main');
    assert.equal(seen.length, 181);
    assert.equal(seen.find((p) => p.state === 'open')?.number, open.number);
    bitbucket.linkElsewhere();
    await assert.rejects(forge.pullRequests('image-clone/busy', 'main'), /Bitbucket linked a next page outside its API/);
    assert.deepEqual(bitbucket.violations.slice(violations), []);
  });

  it('is chosen for bitbucket.org with the API at api.bitbucket.org; a repository elsewhere is not one of its repositories', () => {
    // Even without --forge-api: its API is at one place, so another host's path is never taken for a bitbucket.org repository.
    assert.match(
      forgeRefusal('https://git.team-b.example/team-a/x.git', { kind: 'bitbucket' }) ?? '',
      /not on the forge whose API is https:\/\/api\.bitbucket\.org/,
    );
    assert.throws(() => forgeFor('https://git.team-b.example/team-a/x.git', { token: 't', kind: 'bitbucket' }), /not on the forge whose API is/);
    assert.equal(kindOf('https://bitbucket.org/acme/apps.git', {}), 'bitbucket');
    assert.equal(forgeFor('https://bitbucket.org/acme/apps.git', { token: 't' }).kind, 'bitbucket');
    assert.equal(forgeRefusal('https://bitbucket.org/acme/apps.git', { kind: 'bitbucket', apiBase: 'https://api.bitbucket.org/2.0' }), undefined);
    assert.match(
      forgeRefusal('https://evil.example/acme/apps.git', { kind: 'bitbucket', apiBase: 'https://api.bitbucket.org/2.0' }) ?? '',
      /not on the forge whose API is/,
    );
    assert.match(forgeRefusal('https://bitbucket.org/acme/team/apps.git', { kind: 'bitbucket' }) ?? '', /owner\/name under/);
  });

  it('as the rewriter forge: opens, adds a later batch, and does not propose again what a reviewer declined', async () => {
    await rewriterFlow(
      'cloud',
      () => new BitbucketForge(bitbucket.api, 'acme', 'apps', 'bb-token'),
      bitbucket,
      (id) => bitbucket.setState(id, 'DECLINED'),
    );
  });
});

describe('Bitbucket Data Center pull requests, checked against the documented API', () => {
  it('lists outgoing ones in every state, opens, updates with the version read; a stale version is refused, not overwritten', async () => {
    const forge = new BitbucketServerForge(server.api, 'PLAT', 'apps', 'bbs-token');
    assert.deepEqual(await forge.pullRequests('image-clone/main-1', 'main'), []);
    const opened = await forge.open({ head: 'image-clone/main-1', base: 'main', title: 'Move 1 workload', body: 'table', draft: true, labels: ['ignored'] });
    assert.deepEqual([opened.number, opened.state, opened.version], [1, 'open', 0]);
    const updated = await forge.update(opened, { title: 'Move 2 workloads', body: 'bigger table' });
    assert.equal(updated.version, 1);
    // Another writer changed it since our read: refused, not overwritten.
    server.edit(1, 'theirs');
    await assert.rejects(
      forge.update(updated, { title: 't', body: 'ours' }),
      /HTTP 409: You are attempting to modify a pull request based on out-of-date information/,
    );
    assert.equal((await forge.pullRequests('image-clone/main-1', 'main'))[0]?.body, 'theirs');
    server.setState(1, 'DECLINED');
    assert.equal((await forge.pullRequests('image-clone/main-1', 'main'))[0]?.state, 'closed');
    server.openFromFork('image-clone/main-fork', 'main', '<!-- image-clone-controller: {"rows":[]} -->');
    assert.deepEqual(await forge.pullRequests('image-clone/main-fork', 'main'), []);
    // From our branch into another repository: listed as outgoing, not ours.
    server.addMany('image-clone/main-fork', 'main', 1, 'OPEN', true);
    assert.deepEqual(await forge.pullRequests('image-clone/main-fork', 'main'), []);
    // A busy branch: every page read.
    server.addMany('image-clone/busy', 'main', 250, 'DECLINED');
    const open = await forge.open({ head: 'image-clone/busy', base: 'main', title: 't', body: 'b' });
    const seen = await forge.pullRequests('image-clone/busy', 'main');
    assert.equal(seen.length, 251);
    assert.equal(seen.find((p) => p.state === 'open')?.number, open.number);
    assert.deepEqual(server.violations, []);
  });

  it('has teeth, and finds the repository in a clone URL (scm/<project>/<repository>, under a context path)', async () => {
    const response = await request(`${server.api}/projects/PLAT/repos/apps/pull-requests?state=CLOSED`, { headers: { authorization: 'Bearer t' } });
    await response.body.dump();
    assert.equal(response.statusCode, 400);
    assert.match(server.violations.join('\n'), /state=CLOSED is not one of its documented values/);
    const options = { kind: 'bitbucket-server' as const, apiBase: 'https://git.corp.example/bitbucket/rest/api/1.0' };
    assert.equal(forgeRefusal('https://git.corp.example/bitbucket/scm/PLAT/apps.git', options), undefined);
    assert.equal(forgeFor('https://git.corp.example/bitbucket/scm/PLAT/apps.git', { token: 't', ...options }).kind, 'bitbucket-server');
    assert.match(forgeRefusal('https://git.corp.example/bitbucket/projects/PLAT/repos/apps', options) ?? '', /scm\/<project>\/<repository> under/);
    assert.match(forgeRefusal('https://other.example/bitbucket/scm/PLAT/apps.git', options) ?? '', /not on the forge whose API is/);
  });

  it('as the rewriter forge: opens, adds a later batch, and does not propose again what a reviewer declined', async () => {
    await rewriterFlow(
      'server',
      () => new BitbucketServerForge(server.api, 'PLAT', 'apps', 'bbs-token'),
      server,
      (id) => server.setState(id, 'DECLINED'),
    );
  });
});

/** The rewriter in pr mode with `forge`: a change opened, a later batch added to it, a declined one not proposed again. */
async function rewriterFlow(
  name: string,
  forge: () => BitbucketForge | BitbucketServerForge,
  standIn: { calls: string[]; violations: string[] },
  decline: (id: number) => void,
): Promise<void> {
  {
    const dir = bareRepository(join(work, `${name}.git`), { 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    const repoURL = `file://${dir}`;
    const ledger = new Ledger(join(work, `handoff-${name}`));
    const write = (name: string, source: string) =>
      ledger.write({
        workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
        images: [{ container: 'app', init: false, source, backup: `backup.io/m/${source}`, digest: DIGEST, platforms: [], sizeBytes: 1 }],
        owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path: 'apps', revision: 'main' }] },
      });
    const rewriter = () =>
      new Rewriter({
        handoffDir: ledger.dir,
        cacheDir: join(work, `cache-${name}`),
        mode: 'pr',
        author: { name: 'image-clone', email: 'bot@example.test' },
        logger: createLogger({ write: () => {} }),
        openForge: forge,
      });
    const calls = standIn.calls.length;
    const violations = standIn.violations.length;
    await write('web', 'nginx:1.25');
    const [first] = await rewriter().processPending();
    assert.equal(first!.result, 'pushed');
    await write('api', 'redis:7');
    const [second] = await rewriter().processPending();
    assert.equal(second!.result, 'pushed');
    assert.equal(first!.pullRequest, second!.pullRequest, 'the later batch updates the same pull request');
    assert.deepEqual(
      standIn.calls.slice(calls).filter((c) => c !== 'list'),
      ['create', 'update'],
    );
    assert.match(git(dir, 'show', `${first!.branch}:apps/api.yaml`), /backup\.io\/m\/redis/);
    // The reviewer declines it; the same change comes again and is not proposed again.
    decline(Number(/(\d+)$/.exec(first!.pullRequest!)![1]));
    for (const id of ledger.pendingIds()) assert.fail(`pending ${id}`);
    const id = (await write('web', 'nginx:1.25')).id;
    rmSync(join(ledger.dir, `${id}.done`), { force: true });
    const [third] = await rewriter().processPending();
    assert.equal(third!.result, 'not-reopened');
    assert.deepEqual(standIn.violations.slice(violations), []);
  }
}
