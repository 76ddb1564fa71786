/** The GitLab client against a stand-in held to GitLab's documented merge request API. */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { forgeFor } from '../../src/rewriter/forges/registry.ts';
import { GitLabForge } from '../../src/rewriter/forges/gitlab.ts';
import { startGitLabStandIn, type GitLabStandIn } from '../support/gitlab-contract.ts';

let gitlab: GitLabStandIn;
before(async () => {
  gitlab = await startGitLabStandIn('platform/team/apps');
});
after(() => gitlab?.stop());

it('lists, opens (draft, labels), updates and sees a merge, within the documented parameters', async () => {
  const forge = new GitLabForge(gitlab.url, 'platform/team/apps', 'glpat-token');
  assert.deepEqual(await forge.pullRequests('image-clone/main-1', 'main'), []);
  const opened = await forge.open({
    head: 'image-clone/main-1',
    base: 'main',
    title: 'Move 1 workload',
    body: 'table',
    draft: true,
    labels: ['backup', 'images'],
  });
  assert.equal(opened.number, 1);
  assert.equal(opened.title, 'Draft: Move 1 workload');
  assert.equal(opened.state, 'open');
  const updated = await forge.update(opened, { title: 'Move 2 workloads', body: 'bigger' });
  assert.equal(updated.title, 'Draft: Move 2 workloads', 'a draft stays a draft');
  gitlab.merge(1);
  assert.equal((await forge.pullRequests('image-clone/main-1', 'main'))[0]?.state, 'merged');
  assert.deepEqual(gitlab.violations, []);
  assert.deepEqual(gitlab.calls, ['list', 'create', 'update', 'list']);
  assert.equal(forgeFor('https://gitlab.com/platform/team/apps.git', { token: 't' }).kind, 'gitlab');
});

it('has teeth: an undocumented parameter or a missing required one is refused', async () => {
  const forge = new GitLabForge(gitlab.url, 'platform/team/apps', 'glpat-token');
  await assert.rejects(
    forge.open({ head: '', base: 'main', title: 't', body: '' }),
    /GitLab POST .* answered HTTP 400: missing required parameter source_branch/,
  );
  assert.ok(gitlab.violations.length > 0);
});

it("never takes a fork's merge request from a branch of the same name for ours, open or closed", async () => {
  const forge = new GitLabForge(gitlab.url, 'platform/team/apps', 'glpat-token');
  const violations = gitlab.violations.length;
  gitlab.fromFork('image-clone/main-2', 'main', 'closed', '<!-- image-clone-controller: {"rows":[]} -->');
  gitlab.fromFork('image-clone/main-2', 'main', 'opened', '<!-- image-clone-controller: {"rows":[]} -->');
  assert.deepEqual(await forge.pullRequests('image-clone/main-2', 'main'), []);
  const ours = await forge.open({ head: 'image-clone/main-2', base: 'main', title: 'Move 1 workload', body: 'table' });
  assert.deepEqual(
    (await forge.pullRequests('image-clone/main-2', 'main')).map((p) => p.number),
    [ours.number],
  );
  assert.deepEqual(gitlab.violations.slice(violations), []);
});
