/**
 * The GitHub client against a stand-in held to GitHub's official OpenAPI description: every
 * request must be an operation of the description with parameters and a body its schemas accept.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { GitHubForge } from '../../src/rewriter/forges/github.ts';
import { forgeFor } from '../../src/rewriter/forges/registry.ts';
import { startGitHubStandIn, type GitHubStandIn } from '../support/github-contract.ts';

let github: GitHubStandIn;
before(async () => {
  github = await startGitHubStandIn();
});
after(() => github?.stop());

describe('GitHub pull requests, checked against the OpenAPI description', () => {
  it('lists, opens with labels and a draft, updates, and sees a merge', async () => {
    const forge = new GitHubForge(github.url, 'octo', 'apps', 'ghp_token');
    assert.deepEqual(await forge.pullRequests('image-clone/main-1', 'main'), []);
    const opened = await forge.open({ head: 'image-clone/main-1', base: 'main', title: 'Move 1 workload', body: 'table', draft: true, labels: ['backup'] });
    assert.equal(opened.number, 1);
    assert.equal(opened.state, 'open');
    assert.equal(opened.url, 'https://github.com/octo/apps/pull/1');
    const updated = await forge.update(opened, { title: 'Move 2 workloads', body: 'bigger table' });
    assert.equal(updated.title, 'Move 2 workloads');
    assert.equal((await forge.pullRequests('image-clone/main-1', 'main'))[0]?.body, 'bigger table');
    github.merge(1);
    assert.equal((await forge.pullRequests('image-clone/main-1', 'main'))[0]?.state, 'merged');
    assert.deepEqual(github.violations, []);
    assert.deepEqual(github.calls, ['pulls/list', 'pulls/create', 'issues/add-labels', 'pulls/update', 'pulls/list', 'pulls/list']);
  });

  it("never takes a fork's pull request from a branch of the same name for ours", async () => {
    const forge = new GitHubForge(github.url, 'octo', 'apps', 'ghp_token');
    github.openFromFork('image-clone/main-fork', 'main', '<!-- image-clone-controller: {"rows":[]} -->');
    assert.deepEqual(await forge.pullRequests('image-clone/main-fork', 'main'), []);
    const ours = await forge.open({ head: 'image-clone/main-fork', base: 'main', title: 'Move 1 workload', body: 'table' });
    assert.deepEqual(
      (await forge.pullRequests('image-clone/main-fork', 'main')).map((p) => p.number),
      [ours.number],
    );
    assert.deepEqual(github.violations, []);
  });

  it('has teeth: a request off the contract is refused and recorded', async () => {
    const before = github.violations.length;
    const response = await request(`${github.url}/repos/octo/apps/pulls`, {
      method: 'POST',
      headers: { authorization: 'Bearer t', 'x-github-api-version': '2022-11-28', 'content-type': 'application/json' },
      body: JSON.stringify({ head: 'x', base: 'main', draft: 'yes' }),
    });
    await response.body.dump();
    assert.equal(response.statusCode, 422);
    assert.match(github.violations.slice(before).join('\n'), /does not match the schema/);
  });

  it('is chosen for github.com, with the API at api.github.com, and for GitHub Enterprise by configuration', () => {
    assert.equal(forgeFor('https://github.com/octo/apps.git', { token: 't' }).kind, 'github');
    assert.equal(forgeFor('https://git.corp.example/octo/apps.git', { token: 't', kind: 'github' }).kind, 'github');
    assert.equal(forgeFor('https://git.corp.example/octo/apps.git', { token: 't' }).kind, 'gitea');
    assert.equal(forgeFor('https://gitlab.com/octo/apps.git', { token: 't' }).kind, 'gitlab');
  });
});
