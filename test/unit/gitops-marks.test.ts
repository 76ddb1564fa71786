import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { argoSources, trackedObject, trackingApplication } from '../../src/cluster/gitops.ts';

describe('Argo CD tracking marks', () => {
  it('reads the application from the tracking id, before the first colon', () => {
    const annotations = { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:shop/web' };
    assert.deepEqual(trackingApplication({ annotations }, 'argocd'), { namespace: 'argocd', name: 'shop' });
    // A cluster-scoped or core-group object: the group part is empty.
    assert.deepEqual(trackingApplication({ annotations: { 'argocd.argoproj.io/tracking-id': 'infra:/Namespace:/shop' } }, 'gitops'), {
      namespace: 'gitops',
      name: 'infra',
    });
  });

  it('an application outside Argo CD’s namespace is `<namespace>_<name>`', () => {
    const annotations = { 'argocd.argoproj.io/tracking-id': 'team-a_shop:apps/Deployment:shop/web' };
    assert.deepEqual(trackingApplication({ annotations }, 'argocd'), { namespace: 'team-a', name: 'shop' });
  });

  it('falls back to the instance label, and prefers the tracking id over it', () => {
    assert.deepEqual(trackingApplication({ labels: { 'app.kubernetes.io/instance': 'team-b_web' } }, 'argocd'), { namespace: 'team-b', name: 'web' });
    assert.deepEqual(
      trackingApplication(
        { labels: { 'app.kubernetes.io/instance': 'helm-release' }, annotations: { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:shop/web' } },
        'argocd',
      ),
      { namespace: 'argocd', name: 'shop' },
    );
  });

  it('no marks, or an empty one, is no application', () => {
    assert.equal(trackingApplication({}, 'argocd'), undefined);
    assert.equal(trackingApplication({ labels: { app: 'web' } }, 'argocd'), undefined);
    assert.equal(trackingApplication({ annotations: { 'argocd.argoproj.io/tracking-id': '' } }, 'argocd'), undefined);
  });
});

describe('Argo CD application sources', () => {
  it('reads spec.source, normalising the path and keeping the revision', () => {
    assert.deepEqual(argoSources({ spec: { source: { repoURL: 'https://git.example/apps.git', path: './shop/', targetRevision: 'main' } } }), [
      { repoURL: 'https://git.example/apps.git', path: 'shop', revision: 'main' },
    ]);
    assert.deepEqual(argoSources({ spec: { source: { repoURL: 'https://git.example/apps.git', path: '.' } } }), [
      { repoURL: 'https://git.example/apps.git', path: undefined, revision: undefined },
    ]);
  });

  it('reads spec.sources in order (it wins over spec.source), chart sources marked, sources without repoURL skipped', () => {
    const app = {
      spec: {
        source: { repoURL: 'https://ignored.example/x.git' },
        sources: [
          { repoURL: 'https://charts.example', chart: 'redis', targetRevision: '18.1.0' },
          { path: 'values' },
          { repoURL: 'https://git.example/values.git', path: 'env/prod', targetRevision: 'v2', ref: 'values' },
        ],
      },
    };
    assert.deepEqual(argoSources(app), [
      { repoURL: 'https://charts.example', path: undefined, revision: '18.1.0', chart: 'redis' },
      { repoURL: 'https://git.example/values.git', path: 'env/prod', revision: 'v2' },
    ]);
  });

  it('an application without sources has none', () => {
    assert.deepEqual(argoSources({ spec: {} }), []);
    assert.deepEqual(argoSources({}), []);
  });
});

describe('trackedObject', () => {
  it('reads the object a tracking-id names, core kinds with an empty group', () => {
    assert.deepEqual(trackedObject('shop:apps/Deployment:team-a/web'), { group: 'apps', kind: 'Deployment', namespace: 'team-a', name: 'web' });
    assert.deepEqual(trackedObject('infra:/Namespace:/shop'), { group: '', kind: 'Namespace', namespace: '', name: 'shop' });
    assert.equal(trackedObject('shop'), undefined);
    assert.equal(trackedObject('shop:apps/Deployment'), undefined);
  });
});
