import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { HandoffRecord } from '../../src/handoff/schema.ts';
import { branchFor, groupNames, groupOf, parseNaming, titleFor } from '../../src/rewriter/grouping.ts';

const D = `sha256:${'e'.repeat(64)}`;
const record = (over: Partial<HandoffRecord> = {}): HandoffRecord => ({
  version: 1,
  id: 'r',
  createdAt: '',
  workload: { kind: 'Deployment', namespace: 'shop', name: 'web', uid: 'u' },
  images: [
    { container: 'web', init: false, source: 'nginx:1.25', backup: 'b.io/nginx:1.25', digest: D, platforms: [], sizeBytes: 1 },
    { container: 'proxy', init: false, source: 'ghcr.io/acme/proxy:2', backup: 'b.io/proxy:2', digest: D, platforms: [], sizeBytes: 1 },
  ],
  owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'Shop', sources: [] },
  ...over,
});

describe('--group-by and the branch and title templates', () => {
  it('keeps the branch every earlier version named by default, with or without --branch-prefix', () => {
    const names = (naming = parseNaming({})) => branchFor(naming, groupNames(naming, 'https://git.test/org/apps.git', 'main', '', [record()]));
    // sha256("https://git.test/org/apps.git"), its first 8 characters: what branchName() gave.
    assert.equal(names(), 'image-clone/main-d5a2ac50');
    assert.equal(names(parseNaming({ branchPrefix: 'backups/' })), 'backups/main-d5a2ac50');
  });

  it('groups a record by repository, owner, namespace or its images', () => {
    assert.equal(groupOf(record(), 'repository'), '');
    assert.equal(groupOf(record(), 'application'), 'application/argocd/shop');
    // Read back one way only: shop/payments-api and shop-payments/api are two groups.
    const ks = (namespace: string, name: string) =>
      groupOf(record({ owner: { tool: 'flux', kind: 'Kustomization', namespace, name, sources: [] } }), 'application');
    assert.notEqual(ks('shop', 'payments-api'), ks('shop-payments', 'api'));
    assert.equal(groupOf(record({ owner: undefined }), 'application'), 'unmanaged');
    assert.equal(groupOf(record(), 'namespace'), 'shop');
    assert.equal(groupOf(record(), 'image'), 'docker.io/library/nginx+ghcr.io/acme/proxy');
  });

  it('fills the templates, each value made safe for a ref; distinct groups get distinct hashes', () => {
    const naming = parseNaming({
      groupBy: 'application',
      branchTemplate: 'ic/{{cluster}}/{{owner}}/{{group}}-{{hash}}',
      titleTemplate: '{{owner}}: {{count}} on {{base}} ({{group}})',
    });
    const hostile = record({
      owner: { tool: 'flux', kind: 'Kustomization', namespace: 'x', name: '../../etc passwd;$(x)', sources: [] },
      cluster: { name: 'east', uid: 'u' },
    });
    const names = groupNames(naming, 'https://git.test/org/apps', 'main', groupOf(hostile, 'application'), [hostile]);
    // A group other than the repository gets 16 hex characters of hash: its value is a tenant's to choose.
    assert.match(branchFor(naming, names), /^ic\/east\/etc-passwd-x\/kustomization-x-.-.-etc-passwd-x-[0-9a-f]{16}$/);
    assert.equal(titleFor(naming, names, 3), '../../etc passwd;$(x): 3 on main (kustomization/x/../../etc passwd;$(x))');
    const byImage = parseNaming({ groupBy: 'image', branchTemplate: 'ic/{{group}}-{{hash}}' });
    const images = groupNames(byImage, 'https://git.test/org/apps', 'main', groupOf(hostile, 'image'), [hostile]);
    assert.match(branchFor(byImage, images), /^ic\/docker\.io-library-nginx-ghcr\.io-acme-proxy-[0-9a-f]{16}$/);
    const other = groupNames(byImage, 'https://git.test/org/apps', 'main', 'docker.io/library/redis', [hostile]);
    assert.notEqual(other.hash, images.hash);
    // The names depend on the group, not on which records it holds this pass: a record from before
    // clusters were named changes nothing; outside --group-by application, {{owner}} is the repository's.
    const byRepository = parseNaming({});
    const one = groupNames(byRepository, 'https://git.test/org/apps.git', 'main', '', [record({ cluster: { name: 'a', uid: '1' } })]);
    const more = groupNames(byRepository, 'https://git.test/org/apps.git', 'main', '', [
      record({ cluster: { name: 'a', uid: '1' } }),
      record({ owner: undefined }),
    ]);
    assert.deepEqual(one, more);
    assert.deepEqual([one.cluster, one.owner], ['a', 'apps']);
    assert.equal(titleFor(parseNaming({}), names, 3), undefined, 'no template: the default title');
  });

  it('refuses at start-up what would misname or merge changes, naming the flag', () => {
    assert.throws(() => parseNaming({ groupBy: 'team' }), /--group-by "team": expected one of repository, application, namespace, image/);
    assert.throws(() => parseNaming({ branchTemplate: 'ic/{{base}}' }), /must contain \{\{hash\}\}/);
    assert.throws(() => parseNaming({ branchTemplate: 'ic/{{hash}}/{{team}}' }), /unknown variable \{\{team\}\}/);
    assert.throws(() => parseNaming({ branchTemplate: 'ic/{{count}}-{{hash}}' }), /unknown variable \{\{count\}\}/);
    assert.throws(() => parseNaming({ branchTemplate: 'ic..x/{{hash}}' }), /not a branch name git takes/);
    assert.throws(() => parseNaming({ branchTemplate: '-{{hash}}' }), /not a branch name git takes/);
    assert.throws(() => parseNaming({ branchTemplate: 'a/{{hash}}', branchPrefix: 'b/' }), /both given/);
    assert.throws(() => parseNaming({ titleTemplate: '  ' }), /--title-template is empty/);
    assert.throws(() => parseNaming({ titleTemplate: 'x {{who}}' }), /--title-template .*unknown variable \{\{who\}\}/);
  });
});
