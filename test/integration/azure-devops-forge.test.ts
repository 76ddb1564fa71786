/**
 * The Azure DevOps client against a stand-in held to Azure DevOps's documented pull request API
 * (test/support/azure-devops-contract.ts), alone and as the rewriter's forge in pr mode: opened,
 * updated by a later batch, an abandoned pull request not proposed again, a fork's never taken for
 * ours; a change too long for Azure's 4,000-character descriptions keeps its rows in a property.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { AzureDevOpsForge, DESCRIPTION_MAX_CHARS, ROWS_PROPERTY } from '../../src/rewriter/forges/azure-devops.ts';
import { MARKER_PREFIX, pullRequestBody, rowsFromDescription, type DescribedImage } from '../../src/rewriter/forges/description.ts';
import { forgeRefusal, kindOf, repositoryPath } from '../../src/rewriter/forges/forge.ts';
import { forgeFor } from '../../src/rewriter/forges/registry.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { startAzureDevOpsStandIn, type AzureDevOpsStandIn } from '../support/azure-devops-contract.ts';
import { exhibit, plantCanary } from '../support/canaries.ts';
import { bareRepository, git } from '../support/git.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
const PROJECT = 'Platform Team';
const TOKEN = 'canary-azure-pat-4b7e91c2d0';
const REFUSED_TOKEN = 'canary-azure-expired-pat-70c3a1';
const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${image}\n`;
const rows = (count: number, from = 0): DescribedImage[] =>
  Array.from({ length: count }, (_, i) => ({
    workload: `shop/Deployment/service-${String(i + from).padStart(3, '0')}`,
    container: 'app',
    from: `docker.io/library/nginx:1.${i + from}`,
    to: `backup.example/mirror/library/nginx:1.${i + from}`,
    digest: `sha256:${(i + from).toString(16).padStart(64, '0')}`,
    platforms: ['linux/amd64', 'linux/arm64'],
    sizeBytes: 52_428_800 + i,
  }));

let azure: AzureDevOpsStandIn;
let work: string;
const forge = () => new AzureDevOpsForge(azure.api, PROJECT, 'apps', TOKEN);
before(async () => {
  plantCanary(TOKEN);
  plantCanary(Buffer.from(`:${TOKEN}`).toString('base64'));
  plantCanary(REFUSED_TOKEN);
  azure = await startAzureDevOpsStandIn('/acme', PROJECT, 'apps', [REFUSED_TOKEN]);
  work = mkdtempSync(join(tmpdir(), 'image-clone-azure-'));
});
after(async () => {
  await azure?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('Azure DevOps pull requests, checked against the documented API', () => {
  it('lists in every state, opens a draft with labels, updates; abandoned counts as closed, completed as merged, an unknown state is an error', async () => {
    const client = forge();
    assert.deepEqual(await client.pullRequests('image-clone/main-1', 'main'), []);
    const body = pullRequestBody(rows(1), ['apps/web.yaml']);
    const opened = await client.open({ head: 'image-clone/main-1', base: 'main', title: 'Move 1 workload', body, draft: true, labels: ['image-clone'] });
    assert.deepEqual([opened.number, opened.state, opened.url], [1, 'open', `${azure.api}/Platform%20Team/_git/apps/pullrequest/1`]);
    const stored = azure.pull(1)!;
    assert.deepEqual([stored.isDraft, stored.labels], [true, ['image-clone']]);
    // The marker is in the property, not in the description a reviewer reads.
    assert.ok(!stored.description.includes(MARKER_PREFIX));
    assert.ok(String(stored.properties.get(ROWS_PROPERTY)).startsWith(MARKER_PREFIX));
    const [listed] = await client.pullRequests('image-clone/main-1', 'main');
    assert.deepEqual(rowsFromDescription(listed!.body), rows(1));
    const updated = await client.update(listed!, { title: 'Move 2 workloads', body: pullRequestBody(rows(2), ['apps/web.yaml']) });
    assert.equal(updated.title, 'Move 2 workloads');
    assert.deepEqual(rowsFromDescription((await client.pullRequests('image-clone/main-1', 'main'))[0]!.body), rows(2));
    azure.setStatus(1, 'abandoned');
    assert.equal((await client.pullRequests('image-clone/main-1', 'main'))[0]?.state, 'closed');
    const again = await client.open({ head: 'image-clone/main-1', base: 'main', title: 'Move 1 workload', body: 'table' });
    azure.setStatus(again.number, 'completed');
    assert.deepEqual(
      (await client.pullRequests('image-clone/main-1', 'main')).map((p) => [p.number, p.state, p.head, p.base]),
      [
        [2, 'merged', 'image-clone/main-1', 'main'],
        [1, 'closed', 'image-clone/main-1', 'main'],
      ],
    );
    // Without our property, the body is the description alone.
    assert.equal((await client.pullRequests('image-clone/main-1', 'main'))[0]?.body, 'table');
    // Neither into another base nor from a branch whose name merely starts the same.
    assert.deepEqual(await client.pullRequests('image-clone/main-1', 'release'), []);
    assert.deepEqual(await client.pullRequests('image-clone/main', 'main'), []);
    // A state Azure has but that says nothing (notSet) is not taken for active, nor for abandoned.
    azure.setStatus(2, 'notSet');
    await assert.rejects(client.pullRequests('image-clone/main-1', 'main'), /pull request #2 in a state it does not document: "notSet"/);
    azure.setStatus(2, 'completed');
    assert.deepEqual(azure.violations, []);
  });

  it("never takes a fork's pull request from a branch of the same name for ours, though Azure lists it with ours", async () => {
    const client = forge();
    const listed = azure.forksListed;
    azure.openFromFork('image-clone/main-fork', 'main', `${MARKER_PREFIX} {"rows":[]} -->`);
    assert.deepEqual(await client.pullRequests('image-clone/main-fork', 'main'), []);
    assert.equal(azure.forksListed, listed + 1, "the fork's pull request was in the answer");
    // Ours opens beside it (Azure refuses only a second active one of this repository's own).
    const ours = await client.open({ head: 'image-clone/main-fork', base: 'main', title: 't', body: pullRequestBody(rows(1), []) });
    assert.deepEqual(
      (await client.pullRequests('image-clone/main-fork', 'main')).map((p) => p.number),
      [ours.number],
    );
    assert.deepEqual(azure.violations, []);
  });

  it('has teeth: requests off the documented API are refused and recorded', async () => {
    const before = azure.violations.length;
    const auth = { authorization: `Basic ${Buffer.from(':pat').toString('base64')}` };
    const pulls = `${azure.api}/Platform%20Team/_apis/git/repositories/apps/pullrequests`;
    const send = async (url: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}) => {
      const response = await request(url, {
        method: (init.method ?? 'GET') as 'GET',
        headers: init.headers ?? auth,
        ...(init.body ? { body: init.body } : {}),
      });
      await response.body.dump();
      return response.statusCode;
    };
    const json = { ...auth, 'content-type': 'application/json' };
    assert.equal(await send(`${pulls}?searchCriteria.status=all`), 400);
    assert.equal(await send(`${pulls}?searchCriteria.status=closed&api-version=7.1`), 400);
    assert.equal(await send(`${pulls}?top=10&api-version=7.1`), 400);
    assert.equal(await send(`${pulls}?api-version=7.1`, { headers: { authorization: `Basic ${Buffer.from('me:pat').toString('base64')}` } }), 400);
    assert.equal(await send(`${pulls}?api-version=7.1`, { headers: { authorization: 'Bearer pat' } }), 400);
    const create = (fields: object) => send(`${pulls}?api-version=7.1`, { method: 'POST', headers: json, body: JSON.stringify(fields) });
    assert.equal(await create({ sourceRefName: 'refs/heads/x', targetRefName: 'refs/heads/main', title: 't', description: 'd'.repeat(4001) }), 400);
    assert.equal(await create({ sourceRefName: 'refs/heads/x', targetRefName: 'refs/heads/main', title: 't', draft: true }), 400);
    assert.equal(await create({ sourceRefName: 'refs/heads/x', targetRefName: 'refs/heads/main', title: 't', labels: ['x'] }), 400);
    const properties = `${pulls}/1/properties?api-version=7.1`;
    const patch = JSON.stringify([{ op: 'add', path: `/${ROWS_PROPERTY}`, value: 'v' }]);
    assert.equal(await send(properties, { method: 'PATCH', headers: json, body: patch }), 400);
    assert.equal(await send(properties, { method: 'PATCH', headers: { ...auth, 'content-type': 'application/json-patch+json' }, body: '{"x":"v"}' }), 400);
    assert.equal(await send(`${pulls}/1?api-version=7.1`, { method: 'PATCH', headers: json, body: JSON.stringify({ sourceRefName: 'refs/heads/y' }) }), 400);
    assert.match(
      azure.violations.slice(before).join('\n'),
      new RegExp(
        [
          'no api-version',
          'searchCriteria.status=closed is not one of its documented values',
          'unknown query parameter top',
          'no personal access token as Basic with an empty user name',
          'no personal access token as Basic with an empty user name',
          'a description of 4001 characters',
          'draft is not a field of this call',
          'labels are \\{name\\} objects',
          'a body of application/json, not application/json-patch\\+json',
          'a JSON Patch document is a non-empty array of operations',
          'sourceRefName is not a field of this call',
        ].join('[^]*'),
      ),
    );
  });

  it('reads every page of a busy branch (never taking "not on the first page" for "none"), and fails rather than read past ten', async () => {
    const client = forge();
    const before = azure.violations.length;
    azure.addMany('image-clone/busy', 'main', 250, 'abandoned');
    const open = await client.open({ head: 'image-clone/busy', base: 'main', title: 't', body: pullRequestBody(rows(1), []) });
    azure.addMany('image-clone/busy', 'main', 49, 'completed');
    const seen = await client.pullRequests('image-clone/busy', 'main');
    assert.equal(seen.length, 300);
    assert.equal(seen.find((p) => p.state === 'open')?.number, open.number);
    assert.deepEqual(rowsFromDescription(seen.find((p) => p.state === 'open')?.body), rows(1));
    azure.addMany('image-clone/busy', 'main', 700, 'abandoned');
    await assert.rejects(client.pullRequests('image-clone/busy', 'main'), /Azure DevOps lists more than 1000 pull requests from image-clone\/busy into main/);
    assert.deepEqual(azure.violations.slice(before), []);
  });

  it("keeps a long change's rows in a property: the description stays within 4,000 characters and says what it leaves out; the rows round-trip", async () => {
    const client = forge();
    const before = azure.violations.length;
    const files = Array.from({ length: 80 }, (_, i) => `apps/service-${i}/deployment.yaml`);
    const body = pullRequestBody(rows(80), files);
    assert.ok(body.length > 3 * DESCRIPTION_MAX_CHARS, 'a body far over the limit');
    const opened = await client.open({ head: 'image-clone/long', base: 'main', title: 'Move 80 workloads', body });
    const description = azure.pull(opened.number)!.description;
    assert.ok(description.length <= DESCRIPTION_MAX_CHARS, `${description.length} characters`);
    assert.ok(!description.includes(MARKER_PREFIX));
    const shown = description.split('\n').filter((line) => line.startsWith('| shop/Deployment/')).length;
    assert.ok(shown > 0);
    // Eighty files make the text after the table too long itself: cut at a line, the rows left out counted.
    const note = description.split('\n').find((line) => line.startsWith('_… '))!;
    assert.match(
      note,
      new RegExp(`^_… ${80 - shown} more rows of the table and the rest of the description are not shown: Azure DevOps keeps at most 4,000 characters`),
    );
    assert.match(note, /The pull request's files hold every change/);
    // Few files: rows dropped from the table's end, what follows it kept for the reviewer.
    const few = await client.open({
      head: 'image-clone/long-few',
      base: 'main',
      title: 'Move 80 workloads',
      body: pullRequestBody(rows(80), files.slice(0, 2)),
    });
    const fewDescription = azure.pull(few.number)!.description;
    assert.ok(fewDescription.length <= DESCRIPTION_MAX_CHARS);
    const fewShown = fewDescription.split('\n').filter((line) => line.startsWith('| shop/Deployment/')).length;
    assert.match(fewDescription, new RegExp(`\n_… ${80 - fewShown} more rows not shown: `));
    assert.match(fewDescription, /\*\*Why this is safe\.\*\*[\s\S]*\*\*Files changed:\*\*/);
    assert.deepEqual(rowsFromDescription((await client.pullRequests('image-clone/long-few', 'main'))[0]!.body), rows(80));
    // Every row read back, through the property.
    const [read] = await client.pullRequests('image-clone/long', 'main');
    assert.deepEqual(rowsFromDescription(read!.body), rows(80));
    // A later batch: more rows, still within the limit, all read back.
    await client.update(read!, { title: 'Move 120 workloads', body: pullRequestBody([...rows(80), ...rows(40, 80)], files) });
    assert.ok(azure.pull(opened.number)!.description.length <= DESCRIPTION_MAX_CHARS);
    assert.equal(rowsFromDescription((await client.pullRequests('image-clone/long', 'main'))[0]!.body).length, 120);
    // A marker typed into the description is not read over ours: ours comes last in the body.
    azure.editDescription(opened.number, `${azure.pull(opened.number)!.description}\n${MARKER_PREFIX} {"rows":[]} -->`);
    assert.match(azure.pull(opened.number)!.description, /\{"rows":\[\]\} -->$/);
    const [again] = await client.pullRequests('image-clone/long', 'main');
    assert.equal(rowsFromDescription(again!.body).length, 120);
    assert.ok(again!.body.lastIndexOf(MARKER_PREFIX) > again!.body.indexOf('{"rows":[]}'));
    // A short body is left whole, but for its marker.
    const short = pullRequestBody(rows(1), ['apps/web.yaml']);
    const small = await client.open({ head: 'image-clone/short', base: 'main', title: 't', body: short });
    assert.equal(azure.pull(small.number)!.description, short.slice(0, short.indexOf(MARKER_PREFIX)).trimEnd());
    assert.deepEqual(azure.violations.slice(before), []);
  });

  it('sends the token only as Basic with an empty user name, and never shows it in an error', async () => {
    const refused = new AzureDevOpsForge(azure.api, PROJECT, 'apps', REFUSED_TOKEN);
    const error = await refused.pullRequests('image-clone/main-1', 'main').then(
      () => assert.fail('a refused token was accepted'),
      (e: Error) => e,
    );
    assert.match(
      error.message,
      /Azure DevOps GET .* answered HTTP 401: TF400813: The user is not authorized .*check the personal access token: it needs Code \(Read & Write\)/,
    );
    const basic = Buffer.from(`:${REFUSED_TOKEN}`).toString('base64');
    for (const text of [error.message, String(error.stack)]) {
      assert.ok(!text.includes(REFUSED_TOKEN) && !text.includes(basic));
    }
    assert.deepEqual(exhibit('azure-devops-refused-token', `${error.message}\n${error.stack}`), []);
    // An error's words are Azure's `message`, cut to 300 characters.
    const missing = await forge()
      .update({ number: 99_999, url: '', state: 'open', head: 'h', base: 'main', title: 't', body: '' }, { title: 't', body: 'b' })
      .catch((e: Error) => e);
    assert.match((missing as Error).message, /HTTP 404: TF401180: The requested pull request was not found\.$/);
  });

  it('finds the repository in its URL shapes (dev.azure.com, user info, visualstudio.com, a server collection), and refuses others', async () => {
    for (const url of [
      'https://dev.azure.com/acme/Platform%20Team/_git/apps',
      'https://acme@dev.azure.com/acme/Platform%20Team/_git/apps',
      'https://acme.visualstudio.com/Platform%20Team/_git/apps',
    ])
      assert.equal(kindOf(url, {}), 'azure-devops', url);
    assert.equal(kindOf('https://tfs.corp.example/DefaultCollection/Platform/_git/apps', {}), 'gitea', 'a server is named with --forge');
    const at = (url: string, apiBase?: string) => {
      const found = repositoryPath(url, 'azure-devops', apiBase);
      return [found.origin + found.root, found.owner, found.name];
    };
    assert.deepEqual(at('https://dev.azure.com/acme/Platform%20Team/_git/apps'), ['https://dev.azure.com/acme/', 'Platform Team', 'apps']);
    assert.deepEqual(at('https://acme@dev.azure.com/acme/Platform/_git/apps.config'), ['https://dev.azure.com/acme/', 'Platform', 'apps.config']);
    assert.deepEqual(at('https://acme.visualstudio.com/Platform/_git/apps'), ['https://acme.visualstudio.com/', 'Platform', 'apps']);
    assert.deepEqual(at('https://acme.visualstudio.com/DefaultCollection/Platform/_git/apps'), [
      'https://acme.visualstudio.com/DefaultCollection/',
      'Platform',
      'apps',
    ]);
    assert.deepEqual(at('https://tfs.corp.example/tfs/DefaultCollection/Platform/_git/apps'), [
      'https://tfs.corp.example/tfs/DefaultCollection/',
      'Platform',
      'apps',
    ]);
    assert.deepEqual(at('https://tfs.corp.example/tfs/DefaultCollection/Platform/_git/apps', 'https://tfs.corp.example/tfs/DefaultCollection'), [
      'https://tfs.corp.example/tfs/DefaultCollection/',
      'Platform',
      'apps',
    ]);
    const refusal = (url: string, apiBase?: string) => forgeRefusal(url, { kind: 'azure-devops', ...(apiBase ? { apiBase } : {}) }) ?? '';
    assert.match(refusal('https://dev.azure.com/acme/_git/apps'), /<organization>\/<project>\/_git\/<repository> under https:\/\/dev\.azure\.com expected/);
    assert.match(refusal('https://dev.azure.com/acme/Platform/apps'), /<organization or collection>\/<project>\/_git\/<repository> expected/);
    assert.match(refusal('https://dev.azure.com/acme/Platform/_git/apps/pullrequest/1'), /_git\/<repository> expected/);
    assert.match(
      refusal('https://dev.azure.com/acme/team-b/Platform/_git/apps'),
      /<organization>\/<project>\/_git\/<repository> under https:\/\/dev\.azure\.com expected/,
    );
    assert.match(refusal('https://dev.azure.com/_git/apps'), /<organization or collection>\/<project>\/_git\/<repository> expected/);
    assert.match(refusal('https://dev.azure.com/acme/Platform/_git/team%2Fapps'), /not an azure-devops name: "team\/apps"/);
    assert.match(refusal('https://dev.azure.com/acme/Platform%20%20Team/_git/apps'), /not an azure-devops name: "Platform {2}Team"/);
    assert.match(refusal('https://dev.azure.com/acme/%3Cb%3E/_git/apps'), /not an azure-devops name: "<b>"/);
    assert.match(refusal('https://dev.azure.com/ac%20me/Platform/_git/apps'), /not an azure-devops name: "ac me"/);
    assert.match(refusal('https://tfs.corp.example/Platform/_git/apps'), /<collection>\/<project>\/_git\/<repository> expected/);
    assert.match(
      refusal('https://dev.azure.com/acme/Platform/_git/apps', 'https://dev.azure.com/other'),
      /<project>\/_git\/<repository> under https:\/\/dev\.azure\.com\/other\/ \(--forge-api\) expected/,
    );
    assert.match(
      refusal('https://dev.azure.com/acme/Platform/_git/apps', 'https://tfs.corp.example/tfs'),
      /not on the forge whose API is https:\/\/tfs\.corp\.example/,
    );
    assert.match(
      refusal('https://evil.example/acme/Platform/_git/apps', 'https://dev.azure.com/acme'),
      /not on the forge whose API is https:\/\/dev\.azure\.com/,
    );
    assert.match(forgeRefusal('git@ssh.dev.azure.com:v3/acme/Platform/apps', {}) ?? '', /need an http\(s\) repository URL/);
    // Through the registry, the API derived from a server URL (a collection, the project's space as %20) and given with --forge-api.
    const before = azure.violations.length;
    const serverURL = `${azure.url}/acme/Platform%20Team/_git/apps`;
    for (const options of [{ kind: 'azure-devops' as const }, { kind: 'azure-devops' as const, apiBase: azure.api }]) {
      const client = forgeFor(serverURL, { token: TOKEN, ...options });
      assert.equal(client.kind, 'azure-devops');
      const [first] = await client.pullRequests('image-clone/main-1', 'main');
      assert.equal(first?.url, `${azure.api}/Platform%20Team/_git/apps/pullrequest/${first?.number}`);
    }
    assert.deepEqual(azure.violations.slice(before), []);
  });

  it('as the rewriter forge: opens, adds a later batch, and does not propose again what a reviewer abandoned', async () => {
    const dir = bareRepository(join(work, 'azure.git'), { 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/api.yaml': deployment('api', 'redis:7') });
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
        openForge: forge,
      });
    const calls = azure.calls.length;
    const violations = azure.violations.length;
    await write('web', 'nginx:1.25');
    const [first] = await rewriter().processPending();
    assert.equal(first!.result, 'pushed');
    await write('api', 'redis:7');
    const [second] = await rewriter().processPending();
    assert.equal(second!.result, 'pushed');
    assert.equal(first!.pullRequest, second!.pullRequest, 'the later batch updates the same pull request');
    assert.deepEqual(
      azure.calls.slice(calls).filter((c) => c === 'create' || c === 'update'),
      ['create', 'update'],
    );
    const id = Number(/(\d+)$/.exec(first!.pullRequest!)![1]);
    assert.deepEqual(
      rowsFromDescription(String(azure.pull(id)!.properties.get(ROWS_PROPERTY))).map((r) => r.workload),
      ['shop/Deployment/api', 'shop/Deployment/web'],
    );
    assert.match(git(dir, 'show', `${first!.branch}:apps/api.yaml`), /backup\.io\/m\/redis/);
    // The reviewer abandons it; the same change comes again and is not proposed again.
    azure.setStatus(id, 'abandoned');
    const again = (await write('web', 'nginx:1.25')).id;
    rmSync(join(ledger.dir, `${again}.done`), { force: true });
    const [third] = await rewriter().processPending();
    assert.equal(third!.result, 'not-reopened');
    assert.deepEqual(azure.violations.slice(violations), []);
  });
});
