import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { GitOpsOwner } from '../../src/handoff/schema.ts';
import type { HandoffRecord } from '../../src/handoff/schema.ts';
import { RECORD_VERSION } from '../../src/handoff/schema.ts';
import { groupByTarget, routeRecord, type RoutingSettings } from '../../src/rewriter/routing.ts';

const record = (name: string, owner?: GitOpsOwner): HandoffRecord => ({
  version: RECORD_VERSION,
  id: `shop.deployment.${name}.0`,
  createdAt: '2026-12-01T00:00:00Z',
  workload: { kind: 'Deployment', namespace: 'shop', name, uid: name },
  images: [],
  owner,
});
const argo = (sources: GitOpsOwner['sources'], more: Partial<GitOpsOwner> = {}): GitOpsOwner => ({
  tool: 'argocd',
  kind: 'Application',
  namespace: 'argocd',
  name: 'shop',
  sources,
  ...more,
});
const GIT = 'https://git.example/team/apps.git';
const never: RoutingSettings = { directPatch: 'never' };
const unmanagedRepo: RoutingSettings = { directPatch: 'never', unmanaged: { repoURL: 'https://git.example/team/rest.git', branch: 'prod', path: 'k8s' } };

describe('record routing', () => {
  it('never patches what a controller owns or what is not a workload, and proposes nothing for an unknown controller', () => {
    const always: RoutingSettings = { directPatch: 'always', unmanaged: unmanagedRepo.unmanaged! };
    const controlled: HandoffRecord = {
      ...record('prometheus-k8s'),
      workload: { kind: 'StatefulSet', namespace: 'monitoring', name: 'kafka-a', uid: 'u' },
      controller: { kind: 'Kafka', name: 'a' },
    };
    assert.deepEqual(routeRecord(controlled, always), {
      patch: 'none',
      git: { kind: 'not-proposed', reason: 'it is controlled by Kafka monitoring/a, whose controller sets its images: move them where that Kafka is declared' },
    });
    // An operator's resource (moved in Git through its image field) is never patched either.
    const resource: HandoffRecord = { ...record('k8s'), workload: { kind: 'Prometheus', namespace: 'monitoring', name: 'k8s', uid: 'u' } };
    assert.equal(routeRecord(resource, always).patch, 'none');
    assert.equal(routeRecord(resource, always).git.kind, 'change');
    assert.equal(routeRecord(record('web'), always).patch, 'only');
  });

  it("a managed workload goes to its owner's source: revision as the base (HEAD and none are main), path kept", () => {
    assert.deepEqual(routeRecord(record('web', argo([{ repoURL: GIT, path: 'apps', revision: 'release' }])), never), {
      patch: 'none',
      git: { kind: 'change', target: { repoURL: GIT, base: 'release', path: 'apps' } },
    });
    for (const revision of ['HEAD', undefined]) {
      const route = routeRecord(record('web', argo([{ repoURL: GIT, path: 'apps', revision }])), never);
      assert.equal(route.git.kind === 'change' && route.git.target.base, 'main');
    }
  });

  it('an unmanaged workload goes to the unmanaged repository, or stays pending without one', () => {
    assert.deepEqual(routeRecord(record('web'), unmanagedRepo).git, {
      kind: 'change',
      target: { repoURL: 'https://git.example/team/rest.git', base: 'prod', path: 'k8s' },
    });
    assert.deepEqual(routeRecord(record('web'), never).git, { kind: 'no-repository' });
  });

  it('a managed workload whose chain ends outside Git is not proposed, and never handed to the unmanaged repository', () => {
    const cases: Array<[GitOpsOwner, RegExp]> = [
      [argo([]), /Application argocd\/shop has no Git source/],
      [argo([{ repoURL: 'https://charts.example', path: undefined, revision: '1.0.0', chart: 'web' }]), /deploys a chart from a chart repository/],
      [argo([{ repoURL: GIT, path: 'apps', revision: undefined }], { unsupported: 'its Kustomization reads an S3 bucket' }), /S3 bucket/],
    ];
    for (const [owner, reason] of cases) {
      const route = routeRecord(record('web', owner), unmanagedRepo);
      assert.equal(route.git.kind, 'not-proposed');
      assert.match(route.git.kind === 'not-proposed' ? route.git.reason : '', reason);
    }
  });

  it('a Flux owner whose source names a chart still changes its Git source; an Argo CD chart source is skipped for a Git one', () => {
    const flux: GitOpsOwner = {
      tool: 'flux',
      kind: 'Kustomization',
      namespace: 'flux-system',
      name: 'apps',
      sources: [{ repoURL: GIT, path: 'apps', revision: 'main', chart: 'web' }],
    };
    assert.equal(routeRecord(record('web', flux), never).git.kind, 'change');
    const mixed = argo([
      { repoURL: 'https://charts.example', path: undefined, revision: '1.0.0', chart: 'web' },
      { repoURL: GIT, path: 'values', revision: 'main' },
    ]);
    const route = routeRecord(record('web', mixed), never);
    assert.equal(route.git.kind === 'change' && route.git.target.path, 'values');
  });

  it('the direct patch: only for unmanaged workloads under `unmanaged`, also for managed ones under `always`', () => {
    const managed = record('web', argo([{ repoURL: GIT, path: 'apps', revision: undefined }]));
    const plain = record('api');
    assert.deepEqual(
      [managed, plain].map((r) => routeRecord(r, { directPatch: 'unmanaged' }).patch),
      ['none', 'only'],
    );
    assert.deepEqual(
      [managed, plain].map((r) => routeRecord(r, { directPatch: 'always' }).patch),
      ['also', 'only'],
    );
    assert.deepEqual(
      [managed, plain].map((r) => routeRecord(r, never).patch),
      ['none', 'none'],
    );
  });

  it('groups by repository and base branch, in first-seen order, each record keeping its path', () => {
    const a = { repoURL: GIT, base: 'main', path: 'apps' };
    const b = { repoURL: GIT, base: 'main', path: 'infra' };
    const c = { repoURL: GIT, base: 'release', path: 'apps' };
    const groups = groupByTarget([
      { record: record('x'), target: a },
      { record: record('y'), target: c },
      { record: record('z'), target: b },
    ]);
    assert.deepEqual(
      groups.map((g) => [g.target.base, g.records.map((r) => `${r.record.workload.name}:${r.path}`)]),
      [
        ['main', ['x:apps', 'z:infra']],
        ['release', ['y:apps']],
      ],
    );
  });
});
