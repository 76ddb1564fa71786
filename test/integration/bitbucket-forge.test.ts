/**
 * The Bitbucket Cloud client against a stand-in held to Bitbucket's documented pull request API
 * (test/support/bitbucket-contract.ts), alone and as the rewriter's forge in pr mode: opened, updated
 * by a later batch, a declined pull request not proposed again, a fork's never taken for ours.
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
import { forgeRefusal, kindOf } from '../../src/rewriter/forges/forge.ts';
import { forgeFor } from '../../src/rewriter/forges/registry.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { startBitbucketStandIn, type BitbucketStandIn } from '../support/bitbucket-contract.ts';
import { bareRepository, git } from '../support/git.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${image}\n`;

let bitbucket: BitbucketStandIn;
let work: string;
before(async () => {
  bitbucket = await startBitbucketStandIn('acme', 'apps');
  work = mkdtempSync(join(tmpdir(), 'image-clone-bitbucket-'));
});
after(async () => {
  await bitbucket?.stop();
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

  it('is chosen for bitbucket.org with the API at api.bitbucket.org; a repository elsewhere is not one of its repositories', () => {
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
    const dir = bareRepository(join(work, 'apps.git'), { 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
    const repoURL = `file://${dir}`;
    const ledger = new Ledger(join(work, 'handoff'));
    const write = (name: string, source: string) =>
      ledger.write({
        workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
        images: [{ container: 'app', init: false, source, backup: `backup.io/m/${source}`, digest: DIGEST, platforms: [], sizeBytes: 1 }],
        owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'shop', sources: [{ repoURL, path: 'apps', revision: 'main' }] },
      });
    const rewriter = () =>
      new Rewriter({
        handoffDir: ledger.dir,
        cacheDir: join(work, 'cache'),
        mode: 'pr',
        author: { name: 'image-clone', email: 'bot@example.test' },
        logger: createLogger({ write: () => {} }),
        openForge: () => new BitbucketForge(bitbucket.api, 'acme', 'apps', 'bb-token'),
      });
    const calls = bitbucket.calls.length;
    const violations = bitbucket.violations.length;
    await write('web', 'nginx:1.25');
    const [first] = await rewriter().processPending();
    assert.equal(first!.result, 'pushed');
    await write('api', 'redis:7');
    const [second] = await rewriter().processPending();
    assert.equal(second!.result, 'pushed');
    assert.equal(first!.pullRequest, second!.pullRequest, 'the later batch updates the same pull request');
    assert.deepEqual(
      bitbucket.calls.slice(calls).filter((c) => c !== 'list'),
      ['create', 'update'],
    );
    assert.match(git(dir, 'show', `${first!.branch}:apps/api.yaml`), /backup\.io\/m\/redis/);
    // The reviewer declines it; the same change comes again and is not proposed again.
    bitbucket.setState(Number(/(\d+)$/.exec(first!.pullRequest!)![1]), 'DECLINED');
    for (const id of ledger.pendingIds()) assert.fail(`pending ${id}`);
    const id = (await write('web', 'nginx:1.25')).id;
    rmSync(join(ledger.dir, `${id}.done`), { force: true });
    const [third] = await rewriter().processPending();
    assert.equal(third!.result, 'not-reopened');
    assert.deepEqual(bitbucket.violations.slice(violations), []);
  });
});
