/** Values overrides for Argo CD Applications whose source is a chart: the key found in the chart, written in the file's form. */
import assert from 'node:assert/strict';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileTree } from '../support/file-tree.ts';
import { parse } from 'yaml';
import { imageKeys, planApplicationValues, planValueFiles } from '../../src/rewriter/edit/argo-application.ts';

const repo = (files: Record<string, string>) => fileTree(files, 'argo-app-');

const DIGEST = `sha256:${'ef'.repeat(32)}`;
const app = { kind: 'Application' as const, namespace: 'argocd', name: 'ingress' };
const APP = (helm: string) => `apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: ingress
  namespace: argocd
spec:
  project: default
  source:
    repoURL: https://charts.example.com
    chart: ingress-nginx
    targetRevision: 4.10.0
${helm}  destination:
    namespace: ingress
`;
const move = (source: string, backup: string) => ({ source, backup, digest: DIGEST });
const plan = (root: string, chart: { values: unknown; appVersion?: string }, ...replacements: ReturnType<typeof move>[]) =>
  planApplicationValues(root, 'apps', app, chart, replacements);
const afterText = (root: string, p: ReturnType<typeof plan>) => p.files.get(join(root, 'apps/ingress.yaml'))?.after;
const spec = (text: string | undefined) => (parse(text ?? '') as { spec: { source: { helm: Record<string, unknown> } } }).spec.source.helm;

const INGRESS_NGINX = {
  values: {
    controller: {
      image: {
        registry: 'registry.k8s.io',
        image: 'ingress-nginx/controller',
        tag: 'v1.10.0',
        digest: `sha256:${'42'.repeat(32)}`,
        pullPolicy: 'IfNotPresent',
      },
    },
  },
};
const NGINX_RUNNING = `registry.k8s.io/ingress-nginx/controller:v1.10.0@sha256:${'42'.repeat(32)}`;

describe('imageKeys', () => {
  it('finds each convention real charts use, composing as their templates do', () => {
    const keys = imageKeys(
      {
        image: { repository: 'ghcr.io/stefanprodan/podinfo', tag: '' },
        bitnami: { image: { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2.4', digest: '' } },
        controller: INGRESS_NGINX.values.controller,
        sidecar: { image: 'busybox:1.36' },
      },
      '6.5.0',
    );
    assert.deepEqual(
      keys.map((k) => [k.path.join('.'), k.convention, k.image]),
      [
        // An empty tag: the appVersion, as is or with a `v` (metrics-server's `printf "v%s" .Chart.AppVersion`).
        ['image', 'repository', 'ghcr.io/stefanprodan/podinfo:6.5.0'],
        ['image', 'repository', 'ghcr.io/stefanprodan/podinfo:v6.5.0'],
        ['bitnami.image', 'repository', 'docker.io/bitnami/redis:7.2.4'],
        ['controller.image', 'image', NGINX_RUNNING],
        ['sidecar.image', 'string', 'busybox:1.36'],
      ],
    );
  });
});

describe('planApplicationValues', () => {
  it('adds helm.valuesObject with the ingress-nginx keys (registry, image, digest) when the Application has no helm section', () => {
    const root = repo({ 'apps/ingress.yaml': APP('') });
    const p = plan(root, INGRESS_NGINX, move(NGINX_RUNNING, 'backup.example.com/m/registry.k8s.io/ingress-nginx/controller:v1.10.0'));
    assert.equal(p.refused, undefined);
    const text = afterText(root, p)!;
    assert.deepEqual(spec(text), {
      valuesObject: { controller: { image: { registry: 'backup.example.com', image: 'm/registry.k8s.io/ingress-nginx/controller', digest: DIGEST } } },
    });
    assert.ok(text.startsWith(APP('').split('  destination:')[0]!.trimEnd()), 'nothing before the insertion changed');
    assert.match(p.changes[0]!.what, /Application argocd\/ingress Helm value controller\.image/);
  });

  it('extends an existing valuesObject in place, setting keys it has and adding those it lacks', () => {
    const helm =
      '    helm:\n      releaseName: edge\n      valuesObject:\n        controller:\n          replicaCount: 2\n          image:\n            registry: registry.k8s.io   # upstream\n';
    const root = repo({ 'apps/ingress.yaml': APP(helm) });
    const text = afterText(root, plan(root, INGRESS_NGINX, move(NGINX_RUNNING, 'backup.example.com/m/ingress/controller:v1.10.0')))!;
    assert.match(text, /registry: backup\.example\.com {3}# upstream/);
    assert.deepEqual(spec(text).valuesObject, {
      controller: { replicaCount: 2, image: { registry: 'backup.example.com', image: 'm/ingress/controller', digest: DIGEST } },
    });
  });

  it('edits inside a values: | block, keeping its indentation, when that is the form the file uses', () => {
    const helm = '    helm:\n      values: |\n        image:\n          repository: ghcr.io/stefanprodan/podinfo\n        replicaCount: 3\n';
    const root = repo({ 'apps/ingress.yaml': APP(helm) });
    const chart = { values: { image: { repository: 'nginx', tag: '' } }, appVersion: '6.5.0' };
    const text = afterText(root, plan(root, chart, move('ghcr.io/stefanprodan/podinfo:6.5.0', 'backup.example.com/m/ghcr.io/stefanprodan/podinfo:6.5.0')))!;
    assert.equal(text, APP(helm.replace('repository: ghcr.io/stefanprodan/podinfo', 'repository: backup.example.com/m/ghcr.io/stefanprodan/podinfo')));
  });

  it('adds keys inside a values: | block that lacks them', () => {
    const helm = '    helm:\n      values: |\n        replicaCount: 3\n';
    const root = repo({ 'apps/ingress.yaml': APP(helm) });
    const chart = { values: { image: { registry: 'docker.io', repository: 'bitnami/redis', tag: '7.2.4', digest: '' } } };
    const text = afterText(root, plan(root, chart, move('docker.io/bitnami/redis:7.2.4', 'backup.example.com/m/docker.io/bitnami/redis:7.2.4')))!;
    assert.deepEqual(parse(spec(text).values as string), {
      replicaCount: 3,
      image: { registry: 'backup.example.com', repository: 'm/docker.io/bitnami/redis', digest: DIGEST },
    });
  });

  it('changes the parameter that sets the key; with parameters only, adds parameters', () => {
    const helm = '    helm:\n      parameters:\n        - name: image\n          value: busybox:1.36\n';
    const root = repo({ 'apps/ingress.yaml': APP(helm) });
    const text = afterText(
      root,
      plan(root, { values: { image: 'busybox:1.35' } }, move('busybox:1.36', 'backup.example.com/m/docker.io/library/busybox:1.36')),
    )!;
    assert.deepEqual(spec(text).parameters, [{ name: 'image', value: `backup.example.com/m/docker.io/library/busybox@${DIGEST}` }]);

    const other = '    helm:\n      parameters:\n        - name: replicaCount\n          value: "2"\n';
    const root2 = repo({ 'apps/ingress.yaml': APP(other) });
    const text2 = afterText(
      root2,
      plan(root2, { values: { image: { repository: 'nginx', tag: '1.25' } } }, move('nginx:1.25', 'backup.example.com/m/docker.io/library/nginx:1.25')),
    )!;
    assert.deepEqual(spec(text2).parameters, [
      { name: 'replicaCount', value: '2' },
      { name: 'image.repository', value: 'backup.example.com/m/docker.io/library/nginx' },
    ]);
  });

  it('finds the change already there, and hands an image no convention composes to the render (with the values the chart is given)', () => {
    const helm = '    helm:\n      valuesObject:\n        image:\n          repository: backup.example.com/m/docker.io/library/nginx\n';
    const root = repo({ 'apps/ingress.yaml': APP(helm) });
    const done = plan(
      root,
      { values: { image: { repository: 'nginx', tag: '1.25' } } },
      move('nginx:1.25', 'backup.example.com/m/docker.io/library/nginx:1.25'),
    );
    assert.equal(done.refused, undefined);
    assert.equal(done.files.size, 0);
    assert.equal(done.changes.length, 1);
    const hard = plan(root, { values: { replicaCount: 1 } }, move('quay.io/x/y:1', 'backup.example.com/m/quay.io/x/y:1'));
    assert.match(hard.refused ?? '', /no value of the chart of Application argocd\/ingress composes quay\.io\/x\/y:1 by the known conventions/);
    assert.deepEqual(hard.byRendering, {
      values: { replicaCount: 1, image: { repository: 'backup.example.com/m/docker.io/library/nginx' } },
      sources: ['quay.io/x/y:1'],
    });
  });

  it('refuses when no file declares the Application, or when it reads valueFiles', () => {
    const root = repo({ 'apps/other.yaml': APP('').replace('name: ingress', 'name: other') });
    assert.match(
      plan(root, INGRESS_NGINX, move(NGINX_RUNNING, 'b.example.com/x:1')).refused ?? '',
      /no file under apps .* declares Application argocd\/ingress/,
    );
    const root2 = repo({ 'apps/ingress.yaml': APP('    helm:\n      valueFiles:\n        - values-prod.yaml\n') });
    assert.match(plan(root2, INGRESS_NGINX, move(NGINX_RUNNING, 'b.example.com/x:1')).refused ?? '', /valueFiles/);
  });
});

describe('planValueFiles (multi-source Applications)', () => {
  const chart = { values: { image: { repository: 'ghcr.io/stefanprodan/podinfo', tag: '' } }, appVersion: '6.5.0' };
  const podinfo = move('ghcr.io/stefanprodan/podinfo:6.5.0', 'backup.example.com/m/ghcr.io/stefanprodan/podinfo:6.5.0');

  it('edits the last value file (the one that wins), adding the key in its style', () => {
    const root = repo({ 'envs/common.yaml': 'image:\n  tag: ""\n', 'envs/prod.yaml': '# prod\nreplicaCount: 2\n' });
    const p = planValueFiles(root, ['envs/common.yaml', 'envs/prod.yaml'], app, chart, [podinfo]);
    assert.equal(p.refused, undefined);
    assert.deepEqual([...p.files.keys()], [join(root, 'envs/prod.yaml')]);
    assert.equal(
      p.files.get(join(root, 'envs/prod.yaml'))!.after,
      '# prod\nreplicaCount: 2\nimage:\n  repository: backup.example.com/m/ghcr.io/stefanprodan/podinfo\n',
    );
  });

  it('refuses a value file that is missing, outside the repository or reached through a link', () => {
    const root = repo({ 'envs/prod.yaml': 'replicaCount: 2\n' });
    symlinkSync(join(root, 'envs'), join(root, 'linked'));
    assert.match(planValueFiles(root, ['envs/missing.yaml'], app, chart, [podinfo]).refused ?? '', /envs\/missing\.yaml, which does not exist/);
    assert.match(planValueFiles(root, ['../outside.yaml'], app, chart, [podinfo]).refused ?? '', /leads outside the repository/);
    assert.match(planValueFiles(root, ['linked/prod.yaml'], app, chart, [podinfo]).refused ?? '', /symbolic link/);
  });
});
