/**
 * The direct-patch fallback against a real kube-apiserver: only the affected containers' images
 * change, managed workloads are left to Git, and a record whose workload was recreated (another
 * uid) patches nothing.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { installGitOpsCrds } from '../../devenv/gitops-crds.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import type { HandoffImage } from '../../src/handoff/schema.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Rewriter, type DirectPatchMode } from '../../src/rewriter/rewriter.ts';
import type { WorkloadRef } from '../../src/cluster/workloads.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
let work: string;
let cluster: Cluster;
let kc: KubeConfig;
let apps: AppsV1Api;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'image-clone-patch-'));
  cluster = await startCluster({ dir: join(work, 'cluster') });
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  apps = kc.makeApiClient(AppsV1Api);
  await kc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'shop' } } });
});
after(async () => {
  await cluster?.stop();
  rmSync(work, { recursive: true, force: true });
});

const image = (container: string, source: string, init = false): HandoffImage => ({
  container,
  init,
  source,
  backup: `backup.io/m/docker.io/library/${source}`,
  digest: DIGEST,
  platforms: [],
  sizeBytes: 1,
});

async function deployment(name: string): Promise<WorkloadRef> {
  const created = await apps.createNamespacedDeployment({
    namespace: 'shop',
    body: {
      metadata: { name },
      spec: {
        selector: { matchLabels: { app: name } },
        template: {
          metadata: { labels: { app: name } },
          spec: {
            initContainers: [{ name: 'migrate', image: 'busybox:1.36', command: ['true'] }],
            containers: [
              { name: 'web', image: 'nginx:1.25', ports: [{ containerPort: 80 }] },
              { name: 'cache', image: 'redis:7' },
            ],
          },
        },
      },
    },
  });
  return { kind: 'Deployment', namespace: 'shop', name, uid: created.metadata!.uid! };
}

function rewriter(handoffDir: string, mode: DirectPatchMode): Rewriter {
  return new Rewriter({
    handoffDir,
    cacheDir: join(work, 'cache'),
    mode: 'branch',
    author: { name: 'a', email: 'a@a' },
    logger: createLogger({ write: () => {} }),
    directPatch: { mode, kubeConfig: kc },
  });
}

describe('direct-patch fallback', () => {
  it('patches an Argo Rollout (a custom resource: a JSON patch that tests the uid and each container name), adding the pull Secret', async () => {
    await installGitOpsCrds(kc);
    const custom = kc.makeApiClient(CustomObjectsApi);
    const target = { group: 'argoproj.io', version: 'v1alpha1', namespace: 'shop', plural: 'rollouts' };
    const spec = {
      containers: [
        { name: 'web', image: 'nginx:1.25', ports: [{ containerPort: 80 }] },
        { name: 'cache', image: 'redis:7' },
      ],
    };
    const created = (await custom.createNamespacedCustomObject({
      ...target,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Rollout',
        metadata: { name: 'canary' },
        spec: { selector: { matchLabels: { app: 'canary' } }, template: { metadata: { labels: { app: 'canary' } }, spec } },
      },
    })) as { metadata: { uid: string } };
    const ledger = new Ledger(join(work, 'handoff-rollout'));
    await ledger.write({
      workload: { kind: 'Rollout', namespace: 'shop', name: 'canary', uid: created.metadata.uid },
      images: [image('cache', 'redis:7')],
      owner: undefined,
      pull: { via: 'secret', secret: 'backup-pull', listedBy: 'none' },
    });
    const [outcome] = await rewriter(ledger.dir, 'unmanaged').processPending();
    assert.equal(outcome?.result, 'patched', outcome?.error);
    const after = (
      (await custom.getNamespacedCustomObject({ ...target, name: 'canary' })) as {
        spec: { template: { spec: { containers: Array<{ name: string; image: string; ports?: unknown }>; imagePullSecrets?: unknown } } };
      }
    ).spec.template.spec;
    assert.deepEqual(
      after.containers.map((c) => [c.name, c.image]),
      [
        ['web', 'nginx:1.25'],
        ['cache', `backup.io/m/docker.io/library/redis:7@${DIGEST}`],
      ],
    );
    assert.deepEqual(after.containers[0]!.ports, [{ containerPort: 80 }]);
    assert.deepEqual(after.imagePullSecrets, [{ name: 'backup-pull' }]);

    // Recreated under the same name (another uid): the test op fails, nothing is patched.
    await custom.deleteNamespacedCustomObject({ ...target, name: 'canary' });
    await custom.createNamespacedCustomObject({
      ...target,
      body: {
        apiVersion: 'argoproj.io/v1alpha1',
        kind: 'Rollout',
        metadata: { name: 'canary' },
        spec: { selector: { matchLabels: { app: 'canary' } }, template: { metadata: { labels: { app: 'canary' } }, spec } },
      },
    });
    const stale = new Ledger(join(work, 'handoff-rollout-stale'));
    await stale.write({
      workload: { kind: 'Rollout', namespace: 'shop', name: 'canary', uid: created.metadata.uid },
      images: [image('web', 'nginx:1.25')],
      owner: undefined,
    });
    const [refused] = await rewriter(stale.dir, 'unmanaged').processPending();
    assert.equal(refused?.result, 'failed');
    const untouched = (
      (await custom.getNamespacedCustomObject({ ...target, name: 'canary' })) as { spec: { template: { spec: { containers: Array<{ image: string }> } } } }
    ).spec.template.spec;
    assert.deepEqual(
      untouched.containers.map((c) => c.image),
      ['nginx:1.25', 'redis:7'],
    );
  });

  it('patches only the affected containers of an unmanaged workload, then marks the record done', async () => {
    const ref = await deployment('plain');
    const ledger = new Ledger(join(work, 'handoff-plain'));
    await ledger.write({ workload: ref, images: [image('web', 'nginx:1.25'), image('migrate', 'busybox:1.36', true)], owner: undefined });
    const [outcome] = await rewriter(ledger.dir, 'unmanaged').processPending();
    assert.equal(outcome?.result, 'patched', outcome?.error);
    const spec = (await apps.readNamespacedDeployment({ name: 'plain', namespace: 'shop' })).spec!.template.spec!;
    assert.deepEqual(
      spec.containers.map((c) => [c.name, c.image]),
      [
        ['web', `backup.io/m/docker.io/library/nginx:1.25@${DIGEST}`],
        ['cache', 'redis:7'],
      ],
    );
    assert.equal(spec.containers[0]!.ports?.[0]?.containerPort, 80, 'the rest of the container is kept');
    assert.deepEqual(
      spec.initContainers?.map((c) => [c.name, c.image, c.command]),
      [['migrate', `backup.io/m/docker.io/library/busybox:1.36@${DIGEST}`, ['true']]],
    );
    assert.deepEqual(ledger.pending(), []);
  });

  it('--backup-pull secret:NAME: the patch adds the pull Secret to the list the workload has', async () => {
    const ref = await deployment('private');
    await apps.patchNamespacedDeployment(
      { name: 'private', namespace: 'shop', body: { spec: { template: { spec: { imagePullSecrets: [{ name: 'theirs' }] } } } } },
      setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch),
    );
    const ledger = new Ledger(join(work, 'handoff-private'));
    await ledger.write({
      workload: ref,
      images: [image('web', 'nginx:1.25')],
      owner: undefined,
      pull: { via: 'secret', secret: 'backup-pull', listedBy: 'none' },
    });
    const [outcome] = await rewriter(ledger.dir, 'unmanaged').processPending();
    assert.equal(outcome?.result, 'patched', outcome?.error);
    const spec = (await apps.readNamespacedDeployment({ name: 'private', namespace: 'shop' })).spec!.template.spec!;
    assert.deepEqual(spec.imagePullSecrets?.map((r) => r.name).sort(), ['backup-pull', 'theirs']);
    assert.equal(spec.containers[0]!.image, `backup.io/m/docker.io/library/nginx:1.25@${DIGEST}`);
  });

  it('patches a CronJob through its job template', async () => {
    const batch = kc.makeApiClient(BatchV1Api);
    const created = await batch.createNamespacedCronJob({
      namespace: 'shop',
      body: {
        metadata: { name: 'nightly' },
        spec: {
          schedule: '0 3 * * *',
          jobTemplate: { spec: { template: { spec: { restartPolicy: 'OnFailure', containers: [{ name: 'job', image: 'alpine:3.20' }] } } } },
        },
      },
    });
    const ledger = new Ledger(join(work, 'handoff-cron'));
    await ledger.write({
      workload: { kind: 'CronJob', namespace: 'shop', name: 'nightly', uid: created.metadata!.uid! },
      images: [image('job', 'alpine:3.20')],
      owner: undefined,
    });
    const [outcome] = await rewriter(ledger.dir, 'unmanaged').processPending();
    assert.equal(outcome?.result, 'patched', outcome?.error);
    const cron = await batch.readNamespacedCronJob({ name: 'nightly', namespace: 'shop' });
    assert.equal(cron.spec!.jobTemplate.spec!.template.spec!.containers[0]!.image, `backup.io/m/docker.io/library/alpine:3.20@${DIGEST}`);
  });

  it('never patches a workload recreated under the same name (another uid)', async () => {
    const ref = await deployment('recreated');
    const ledger = new Ledger(join(work, 'handoff-stale'));
    await ledger.write({ workload: { ...ref, uid: '00000000-0000-0000-0000-000000000000' }, images: [image('web', 'nginx:1.25')], owner: undefined });
    const [outcome] = await rewriter(ledger.dir, 'unmanaged').processPending();
    assert.equal(outcome?.result, 'failed');
    assert.match(outcome!.error!, /uid|UID|Precondition/i);
    assert.equal((await apps.readNamespacedDeployment({ name: 'recreated', namespace: 'shop' })).spec!.template.spec!.containers[0]!.image, 'nginx:1.25');
    assert.equal(ledger.pending().length, 1, 'the record stays pending');
  });

  it('leaves managed workloads to Git under "unmanaged", and patches them too under "always"', async () => {
    const ref = await deployment('managed');
    const owner = {
      tool: 'argocd' as const,
      kind: 'Application' as const,
      namespace: 'argocd',
      name: 'shop',
      sources: [{ repoURL: 'file:///nonexistent/repo.git', path: 'apps', revision: 'main' }],
    };
    const ledger = new Ledger(join(work, 'handoff-managed'));
    await ledger.write({ workload: ref, images: [image('web', 'nginx:1.25')], owner });
    await rewriter(ledger.dir, 'unmanaged').processPending();
    assert.equal((await apps.readNamespacedDeployment({ name: 'managed', namespace: 'shop' })).spec!.template.spec!.containers[0]!.image, 'nginx:1.25');
    const outcomes = await rewriter(ledger.dir, 'always').processPending();
    assert.equal(outcomes[0]?.result, 'patched');
    assert.equal(
      (await apps.readNamespacedDeployment({ name: 'managed', namespace: 'shop' })).spec!.template.spec!.containers[0]!.image,
      `backup.io/m/docker.io/library/nginx:1.25@${DIGEST}`,
    );
    assert.equal(outcomes[1]?.result, 'failed', 'the Git change is still attempted (this repository does not exist)');
    assert.equal(ledger.pending().length, 1, 'a managed record is done only when its Git change lands');
  });

  it('--dry-run shows the patch and patches nothing', async () => {
    const ref = await deployment('dry');
    const ledger = new Ledger(join(work, 'handoff-dry'));
    await ledger.write({ workload: ref, images: [image('web', 'nginx:1.25')], owner: undefined });
    const dry = new Rewriter({
      handoffDir: ledger.dir,
      cacheDir: join(work, 'cache'),
      mode: 'branch',
      author: { name: 'a', email: 'a@a' },
      logger: createLogger({ write: () => {} }),
      directPatch: { mode: 'unmanaged', kubeConfig: kc },
      dryRun: true,
    });
    const [outcome] = await dry.processPending();
    assert.equal(outcome?.result, 'would-change');
    assert.equal(outcome?.plan, `patch Deployment/shop/dry container web: nginx:1.25 -> backup.io/m/docker.io/library/nginx:1.25@${DIGEST}`);
    assert.equal((await apps.readNamespacedDeployment({ name: 'dry', namespace: 'shop' })).spec!.template.spec!.containers[0]!.image, 'nginx:1.25');
    assert.equal(ledger.pending().length, 1);
  });
});
