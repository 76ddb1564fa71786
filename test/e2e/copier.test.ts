/**
 * The copier end to end: a real kube-apiserver with etcd, real registries, real CRD objects for
 * Argo CD and Flux. Workloads are created through the API; the copier (in-process, as the CLI
 * wires it) must back their images up and write handoff records.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, BatchV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, RbacAuthorizationV1Api, type V1PodSpec } from '@kubernetes/client-node';
import { request } from 'undici';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { startFaultProxy, mostPullsInWindow } from '../../devenv/fault-proxy.ts';
import { createGitOpsObject, installGitOpsCrds } from '../../devenv/gitops-crds.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { run } from '../../devenv/process.ts';
import { referrersTools } from '../../devenv/referrers-registry.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { parseSignaturePolicy } from '../../src/image/signature-policy.ts';
import { Copier, IGNORE_ANNOTATION, type CopierConfig } from '../../src/copier/copier.ts';
import type { HandoffRecord } from '../../src/handoff/schema.ts';
import { parseBackupTarget } from '../../src/image/backup.ts';
import { createLogger } from '../../src/observability/log.ts';
import { startHealthServer, type HealthServer } from '../../src/observability/server.ts';
import { CredentialFiles } from '../../src/registry/credential-files.ts';
import { dockerConfigJson } from '../../devenv/docker-config.ts';
import { CANARIES, exhibit } from '../support/canaries.ts';

const CONTROLLER_NS = 'image-clone-namespace';
const PASSWORD = CANARIES.registryPassword;

let cluster: Cluster;
let kc: KubeConfig;
let core: CoreV1Api;
let apps: AppsV1Api;
let batch: BatchV1Api;
let source: RegistryServer;
let backup: RegistryServer;
let work: string;
const logLines: string[] = [];
const digests: Record<string, string> = {};

const podSpec = (images: Record<string, string>, init: Record<string, string> = {}): V1PodSpec => ({
  containers: Object.entries(images).map(([name, image]) => ({ name, image })),
  ...(Object.keys(init).length ? { initContainers: Object.entries(init).map(([name, image]) => ({ name, image })) } : {}),
});

async function deployment(
  namespace: string,
  name: string,
  spec: V1PodSpec,
  meta: { labels?: Record<string, string>; annotations?: Record<string, string> } = {},
) {
  await apps.createNamespacedDeployment({
    namespace,
    body: {
      metadata: { name, namespace, ...meta },
      spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec } },
    },
  });
}

async function namespace(name: string, annotations: Record<string, string> = {}) {
  // Made once, whichever test asks first (several share argocd).
  await core.createNamespace({ body: { metadata: { name, annotations } } }).catch((error: { code?: number }) => {
    if (error.code !== 409) throw error;
  });
}

function copierConfig(handoffDir: string, overrides: Partial<CopierConfig> = {}): CopierConfig {
  writeFileSync(join(work, 'auth.json'), dockerConfigJson({ [backup.address]: { username: 'pusher', password: PASSWORD } }));
  const credentials = new CredentialFiles({ authFile: join(work, 'auth.json'), logger: createLogger({ write: () => {} }) });
  return {
    kubeConfig: kc,
    backupTarget: parseBackupTarget(`${backup.address}/mirror`),
    handoffDir,
    controllerNamespace: CONTROLLER_NS,
    includeNamespaces: [],
    excludeNamespaces: [],
    registry: {
      insecureRegistries: [source.address, backup.address],
      credentials: () => credentials.current(),
      retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 },
    },
    logger: createLogger({ write: (line) => void logLines.push(line) }),
    // This backup registry wants credentials to pull; the tests of --backup-pull anonymous say so.
    backupPull: { via: 'node' },
    ...overrides,
  };
}

function records(dir: string): HandoffRecord[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as HandoffRecord);
}

function backupDigest(repository: string, tag: string): Promise<string | undefined> {
  return manifestDigestAt({ url: backup.url, authorization: `Basic ${Buffer.from(`pusher:${PASSWORD}`).toString('base64')}` }, repository, tag);
}

const mirrorOf = (repo: string) => `mirror/${source.address.replace(':', '_')}/${repo}`;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'image-clone-e2e-'));
  [cluster, source, backup] = await Promise.all([
    startCluster({ dir: join(work, 'cluster') }),
    startRegistryServer(),
    startRegistryServer({ auth: { kind: 'basic', users: { pusher: PASSWORD } } }),
  ]);
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  core = kc.makeApiClient(CoreV1Api);
  apps = kc.makeApiClient(AppsV1Api);
  batch = kc.makeApiClient(BatchV1Api);
  await installGitOpsCrds(kc);
  for (const [repo, tag] of [
    ['web', '1.0'],
    ['sidecar', '2.1'],
    ['init', '0.3'],
    ['db', '15'],
    ['job', '1'],
    ['agent', '3'],
    ['moving', 'latest'],
    ['argo-app', '1'],
    ['flux-app', '1'],
    ['helm-app', '1'],
    ['pull', '1'],
    ['canary', '2'],
    ['prom', '2.50'],
    ['reloader', '0.7'],
    ['kafka', '3'],
    ['signed', '1'],
    ['forged', '1'],
    ['unsigned', '1'],
  ] as const) {
    digests[`${repo}:${tag}`] = (
      await seedImage(
        { url: source.url },
        {
          repository: repo,
          tag,
          format: 'oci',
          layers: [
            { seed: 'e2e-base', size: 32 * 1024 },
            { seed: `${repo}:${tag}`, size: 1024 },
          ],
        },
      )
    ).digest;
  }
  for (const ns of ['team-a', 'team-b', CONTROLLER_NS]) await namespace(ns);
  await namespace('opted-out', { [IGNORE_ANNOTATION]: 'true' });
});

after(async () => {
  // For the suite's canary scan: every log line, and the Events the copier recorded.
  exhibit('e2e-copier-logs', logLines.join('\n'));
  if (core) exhibit('e2e-copier-events', JSON.stringify(await core.listEventForAllNamespaces().catch(() => ({}))));
  await Promise.all([cluster?.stop(), source?.stop(), backup?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

describe('copier against a real API server', () => {
  it('backs up every workload kind, init containers included, and skips what it must', async () => {
    const s = source.address;
    await deployment('team-a', 'web', podSpec({ web: `${s}/web:1.0`, sidecar: `${s}/sidecar:2.1` }, { setup: `${s}/init:0.3` }));
    await apps.createNamespacedStatefulSet({
      namespace: 'team-a',
      body: {
        metadata: { name: 'db' },
        spec: {
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: { metadata: { labels: { app: 'db' } }, spec: podSpec({ db: `${s}/db:15` }) },
        },
      },
    });
    await apps.createNamespacedDaemonSet({
      namespace: 'team-b',
      body: {
        metadata: { name: 'agent' },
        spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: podSpec({ agent: `${s}/agent:3` }) } },
      },
    });
    await batch.createNamespacedCronJob({
      namespace: 'team-b',
      body: {
        metadata: { name: 'nightly' },
        spec: { schedule: '0 3 * * *', jobTemplate: { spec: { template: { spec: { ...podSpec({ job: `${s}/job:1` }), restartPolicy: 'OnFailure' } } } } },
      },
    });
    // An Argo Rollout: a Deployment's pod template, as a custom resource.
    await createGitOpsObject(kc, 'Rollout', 'team-a', {
      metadata: { name: 'canary' },
      spec: {
        selector: { matchLabels: { app: 'canary' } },
        strategy: { canary: { steps: [{ setWeight: 20 }] } },
        template: { metadata: { labels: { app: 'canary' } }, spec: podSpec({ app: `${s}/canary:2` }) },
      },
    });
    // The same image twice, across namespaces: copied once.
    await deployment('team-b', 'web-copy', podSpec({ web: `${s}/web:1.0` }));
    // Never touched: kube-system, the controller's own namespace, an opted-out namespace and workload.
    await deployment('kube-system', 'system-thing', podSpec({ x: `${s}/web:1.0` }));
    await deployment(CONTROLLER_NS, 'itself', podSpec({ x: `${s}/web:1.0` }));
    await deployment('opted-out', 'quiet', podSpec({ x: `${s}/web:1.0` }));
    await deployment('team-a', 'optout', podSpec({ x: `${s}/web:1.0` }), { annotations: { [IGNORE_ANNOTATION]: 'true' } });

    const handoff = join(work, 'handoff-1');
    const copier = new Copier(copierConfig(handoff));
    const summary = await copier.runOnce();
    assert.deepEqual(summary.failedWorkloads, []);

    for (const [repo, tag] of [
      ['web', '1.0'],
      ['sidecar', '2.1'],
      ['init', '0.3'],
      ['db', '15'],
      ['agent', '3'],
      ['job', '1'],
      ['canary', '2'],
    ]) {
      assert.equal(await backupDigest(mirrorOf(repo!), tag!), digests[`${repo}:${tag}`], `${repo}:${tag} backed up with its digest`);
    }
    const written = records(handoff);
    const names = written.map((r) => `${r.workload.namespace}/${r.workload.kind}/${r.workload.name}`).sort();
    assert.deepEqual(names, [
      'team-a/Deployment/web',
      'team-a/Rollout/canary',
      'team-a/StatefulSet/db',
      'team-b/CronJob/nightly',
      'team-b/DaemonSet/agent',
      'team-b/Deployment/web-copy',
    ]);
    const web = written.find((r) => r.workload.name === 'web')!;
    assert.ok(web.workload.uid.length > 0);
    assert.deepEqual(web.images.map((i) => [i.container, i.init]).sort(), [
      ['setup', true],
      ['sidecar', false],
      ['web', false],
    ]);
    const webImage = web.images.find((i) => i.container === 'web')!;
    assert.equal(webImage.source, `${s}/web:1.0`);
    assert.equal(webImage.backup, `${backup.address}/${mirrorOf('web')}:1.0`);
    assert.equal(webImage.digest, digests['web:1.0']);
    assert.equal(web.owner, undefined, 'no GitOps owner: unmanaged');
    assert.deepEqual(web.pull, { via: 'node' }, 'the record says how the nodes pull');
    // Which cluster: named by its kube-system namespace's uid, where no --cluster-name is given.
    const kubeSystem = (await core.readNamespace({ name: 'kube-system' })).metadata!.uid!;
    assert.deepEqual(web.cluster, { name: kubeSystem.slice(0, 8), uid: kubeSystem });
    assert.equal(copier.metrics.render().match(/image_clone_copies_total\{outcome="copied"\} (\d+)/)?.[1], '7', 'seven distinct images, each copied once');

    const events = await core.listNamespacedEvent({ namespace: 'team-a', fieldSelector: 'involvedObject.name=web' });
    assert.ok(
      events.items.some((e) => e.reason === 'BackedUp' && e.type === 'Normal'),
      'an Event on the workload',
    );
    assert.ok(!logLines.join('\n').includes(PASSWORD), 'the registry password never appears in logs');
  });

  it('copies nothing twice after a restart, and re-checks latest by digest', async () => {
    const handoff = join(work, 'handoff-1');
    await deployment('team-a', 'moving', podSpec({ app: `${source.address}/moving:latest` }));
    const first = new Copier(copierConfig(handoff));
    await first.runOnce();
    assert.equal(await backupDigest(mirrorOf('moving'), 'latest'), digests['moving:latest']);
    const before = records(handoff).length;

    const again = new Copier(copierConfig(handoff));
    const summary = await again.runOnce();
    assert.equal(summary.recordsWritten, 0, 'the same records are not written again');
    assert.equal(records(handoff).length, before);
    const metrics = again.metrics.render();
    assert.equal(metrics.match(/outcome="copied"\} (\d+)/)?.[1], undefined, `nothing copied on restart:\n${metrics}`);
    assert.match(metrics, /outcome="present"\} 7/);
    assert.match(metrics, /outcome="unchanged"\} 1/);

    const moved = await seedImage({ url: source.url }, { repository: 'moving', tag: 'latest', format: 'oci', layers: [{ seed: 'moving-v2', size: 2048 }] });
    const third = new Copier(copierConfig(handoff));
    const after = await third.runOnce();
    assert.equal(await backupDigest(mirrorOf('moving'), 'latest'), moved.digest, 'latest follows the source digest');
    assert.equal(after.recordsWritten, 1, 'a new record for the workload whose image moved');
  });

  it("keeps within a registry's pull quota (Docker Hub's headers): 300 workloads over 120 images never pass it, finish as the window allows, and a re-check costs no manifest GET", async (t) => {
    // A source behind Docker Hub's limit as Docker documents it: 40 manifest GETs per 4 s window here.
    const quota = { limit: 40, windowSeconds: 4 };
    const upstream = await startRegistryServer();
    const hub = await startFaultProxy(upstream.url, { quota });
    try {
      const images = Array.from({ length: 120 }, (_, i) => ({ repository: `q/app-${i}`, tag: i < 20 ? 'latest' : '1' }));
      for (let i = 0; i < images.length; i += 20)
        await Promise.all(
          images
            .slice(i, i + 20)
            .map((image) => seedImage({ url: upstream.url }, { ...image, format: 'oci', layers: [{ seed: `quota-${image.repository}`, size: 1024 }] })),
        );
      await namespace('quota');
      for (let i = 0; i < 300; i += 25)
        await Promise.all(
          Array.from({ length: 25 }, (_, j) => i + j).map((n) => {
            const image = images[n % images.length]!;
            return deployment('quota', `w-${n}`, podSpec({ app: `${hub.address}/${image.repository}:${image.tag}` }));
          }),
        );
      const handoff = join(work, 'handoff-quota');
      const config = copierConfig(handoff, {
        includeNamespaces: ['quota'],
        registry: { ...copierConfig(handoff).registry, insecureRegistries: [hub.address, backup.address] },
      });
      const copier = new Copier(config);
      const started = Date.now();
      await copier.start();
      try {
        await waitUntil(() => existsSync(handoff) && records(handoff).length === 300, 'a record for each of the 300 workloads', 90_000).catch(
          (error: Error) => {
            throw new Error(
              `${error.message}: ${existsSync(handoff) ? records(handoff).length : 0} records, ${hub.pulls.allowed.length} GETs let through, ${hub.pulls.refused.length} refused; ${logLines.slice(-5).join('\n')}`,
            );
          },
        );
      } finally {
        await copier.stop();
      }
      const took = Date.now() - started;
      t.diagnostic(
        `quota: 300 workloads recorded in ${took} ms; ${hub.pulls.allowed.length} manifest GETs, at most ${mostPullsInWindow(hub.pulls.allowed, quota.windowSeconds * 1000)} in any ${quota.windowSeconds} s window (limit ${quota.limit}), ${hub.pulls.refused.length} refused`,
      );
      assert.equal(hub.pulls.refused.length, 0, 'no GET went past the quota: none was answered 429');
      assert.equal(hub.pulls.allowed.length, 120, 'one manifest GET per image, each image once for its workloads');
      assert.ok(mostPullsInWindow(hub.pulls.allowed, quota.windowSeconds * 1000) <= quota.limit);
      assert.ok(took >= 2 * quota.windowSeconds * 1000, `120 pulls at 40 per window need at least three windows (took ${took} ms)`);
      assert.match(copier.metrics.render(), /^image_clone_copies_deferred_total\{registry="127\.0\.0\.1:\d+"\} [1-9]\d*$/m);
      assert.match(copier.metrics.render(), /^image_clone_registry_pulls_remaining\{registry="127\.0\.0\.1:\d+"\} \d+$/m);
      const events = await core.listNamespacedEvent({ namespace: 'quota' });
      const limited = events.items.filter((e) => e.reason === 'RateLimited');
      assert.ok(limited.length > 0);
      assert.match(limited[0]!.message ?? '', /not backed up yet, and not failed: app: .*pull quota spent \(40 per 4 s, as it says\); .*tried again at /);

      // A re-check: the 100 immutable tags are trusted, the 20 mutable ones asked by HEAD only.
      const before = hub.pulls.allowed.length;
      const heads = hub.log.filter((line) => line.startsWith('HEAD ') && line.includes('/manifests/')).length;
      const summary = await new Copier(config).runOnce();
      assert.deepEqual([summary.failedWorkloads, summary.deferredWorkloads], [[], []]);
      assert.equal(hub.pulls.allowed.length - before, 0, 'no manifest GET at the source');
      assert.ok(hub.log.filter((line) => line.startsWith('HEAD ') && line.includes('/manifests/')).length - heads >= 20);
    } finally {
      // Its 300 workloads are not for the tests after it (an API server alone never empties a deleted namespace).
      await apps.deleteCollectionNamespacedDeployment({ namespace: 'quota' });
      await hub.stop();
      await upstream.stop();
    }
  });

  it('backs up but does not hand off an image the nodes could not pull without credentials (--backup-pull anonymous)', async () => {
    await namespace('pull-check');
    await deployment('pull-check', 'private', podSpec({ app: `${source.address}/pull:1` }));
    const handoff = join(work, 'handoff-pull');
    const copier = new Copier(copierConfig(handoff, { includeNamespaces: ['pull-check'], backupPull: { via: 'anonymous' } }));
    const summary = await copier.runOnce();
    assert.equal(await backupDigest(mirrorOf('pull'), '1'), digests['pull:1'], 'backed up all the same');
    assert.deepEqual(records(handoff), [], 'nothing handed off: a change would leave the Pods in ImagePullBackOff');
    assert.deepEqual(summary.failedWorkloads, [], 'not a failure of the backup');
    assert.match(copier.metrics.render(), /^image_clone_workloads_not_pullable 1$/m);
    const events = await core.listNamespacedEvent({ namespace: 'pull-check', fieldSelector: 'involvedObject.name=private' });
    const event = events.items.find((e) => e.reason === 'BackupNotPullable');
    assert.equal(event?.type, 'Warning');
    assert.match(
      event?.message ?? '',
      /backed up, but not proposed: its nodes could not pull .*mirror\/.*\/pull:1@sha256:[0-9a-f]{64} \(app: an anonymous pull was refused: .*401.*\)\. If the nodes hold credentials for the backup registry, set --backup-pull node/,
    );

    // The same backups in a registry that serves anonymous pulls: handed off, and the record says so.
    const open = await startRegistryServer();
    try {
      const openHandoff = join(work, 'handoff-pull-open');
      await new Copier(
        copierConfig(openHandoff, {
          includeNamespaces: ['pull-check'],
          backupPull: { via: 'anonymous' },
          backupTarget: parseBackupTarget(`${open.address}/mirror`),
          registry: { insecureRegistries: [source.address, open.address] },
        }),
      ).runOnce();
      assert.deepEqual(
        records(openHandoff).map((r) => [r.workload.name, r.pull]),
        [['private', { via: 'anonymous' }]],
      );
    } finally {
      await open.stop();
    }
  });

  it('--verify-signature: a backup is proposed only when its signature verifies at the backup with the key; one signed with another key, or not at all, is not, with the reason', async () => {
    await namespace('signed-check');
    const keys = join(work, 'keys');
    const env = { ...process.env, COSIGN_PASSWORD: '', COSIGN_YES: 'true' };
    const cosign = (cwd: string, ...args: string[]) => run(referrersTools().cosign, args, undefined, { env, cwd });
    for (const dir of [keys, join(keys, 'other')]) {
      mkdirSync(dir, { recursive: true });
      await cosign(dir, 'generate-key-pair');
    }
    const signing = ['--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry'];
    await cosign(keys, 'sign', '--key', 'cosign.key', ...signing, `${source.address}/signed@${digests['signed:1']}`);
    await cosign(join(keys, 'other'), 'sign', '--key', 'cosign.key', ...signing, `${source.address}/forged@${digests['forged:1']}`);
    for (const repo of ['signed', 'forged', 'unsigned']) await deployment('signed-check', repo, podSpec({ app: `${source.address}/${repo}:1` }));
    const handoff = join(work, 'handoff-signed');
    const copier = new Copier(
      copierConfig(handoff, {
        includeNamespaces: ['signed-check'],
        signatures: parseSignaturePolicy([`${source.address}/*=key:${join(keys, 'cosign.pub')}`]),
      }),
    );
    await copier.runOnce();
    const handed = records(handoff);
    assert.deepEqual(
      handed.map((r) => [r.workload.name, r.images.map((i) => i.signature)]),
      [['signed', [{ key: join(keys, 'cosign.pub'), scheme: 'sigstore bundle' }]]],
      'only the image whose signature verifies is handed off, the record saying with which key',
    );
    assert.match(copier.metrics.render(), /^image_clone_signature_verifications_total\{result="not-verified"\} 2$/m);
    assert.match(copier.metrics.render(), /^image_clone_workloads_not_verified 2$/m);
    const events = await core.listNamespacedEvent({ namespace: 'signed-check' });
    const said = (name: string) => events.items.find((e) => e.involvedObject.name === name && e.reason === 'SignatureNotVerified')?.message ?? '';
    assert.match(
      said('forged'),
      /not proposed: the signature --verify-signature asks for does not verify at the backup .*\/forged:1@sha256:[0-9a-f]{64} \(app: 1 signature at the backup, none verified with .*cosign\.pub/,
    );
    assert.match(said('unsigned'), /\(app: no signature at the backup /);
    assert.equal(said('signed'), '');
    // Not for the tests after it, which run over every namespace.
    await apps.deleteCollectionNamespacedDeployment({ namespace: 'signed-check' });
  });

  it("backs up only what is anonymously public: another team's private image on a host the operator holds credentials for is never read with them", async () => {
    // A private image on the backup registry's host, outside the backup prefix: the copier holds
    // credentials for that host, and before, copied it with them (then republished it under mirror/).
    const auth = `Basic ${Buffer.from(`pusher:${PASSWORD}`).toString('base64')}`;
    await seedImage(
      { url: backup.url, authorization: auth },
      { repository: 'team-b/secret', tag: '1', format: 'oci', layers: [{ seed: 'private', size: 1024 }] },
    );
    await namespace('public-check');
    await deployment('public-check', 'mixed', podSpec({ private: `${backup.address}/team-b/secret:1`, public: `${source.address}/web:1.0` }));
    const handoff = join(work, 'handoff-public');
    const copier = new Copier(copierConfig(handoff, { includeNamespaces: ['public-check'] }));
    await copier.runOnce();
    const mirrored = `mirror/${backup.address.replace(':', '_')}/team-b/secret`;
    assert.equal(await backupDigest(mirrored, '1'), undefined, 'the private image was not copied');
    assert.equal(await backupDigest(mirrorOf('web'), '1.0'), digests['web:1.0'], 'the public one in the same pass was');
    const [record] = records(handoff);
    assert.deepEqual(
      record?.images.map((i) => i.container),
      ['public'],
      'only the public image is handed off',
    );
    assert.match(logLines.join('\n'), /image skipped: not public.*team-b\/secret:1.*an anonymous pull was refused/);
  });

  it('keeps each namespace to its share and refuses an image over --max-image-size: a BackupRefused Event and a metric each, others unaffected', async () => {
    for (const [repo, size] of [
      ['share-a', 1024],
      ['share-b', 1024],
      ['share-c', 1024],
      ['oversized', 96 * 1024],
    ] as const)
      await seedImage({ url: source.url }, { repository: repo, tag: '1', format: 'oci', layers: [{ seed: `${repo}-layer`, size }] });
    await namespace('greedy');
    await namespace('modest');
    await namespace('bulky');
    await deployment('greedy', 'two', podSpec({ a: `${source.address}/share-a:1`, b: `${source.address}/share-b:1` }));
    await deployment('bulky', 'big', podSpec({ big: `${source.address}/oversized:1` }));
    await deployment('modest', 'one', podSpec({ c: `${source.address}/share-c:1` }));
    const handoff = join(work, 'handoff-shares');
    const base = copierConfig(handoff, { includeNamespaces: ['greedy', 'modest', 'bulky'], namespaceLimits: { images: 1, bytes: 1024 ** 3 } });
    const copier = new Copier({ ...base, registry: { ...base.registry, maxImageBytes: 64 * 1024 } });
    const summary = await copier.runOnce();
    assert.deepEqual([...summary.failedWorkloads].sort(), ['Deployment/bulky/big', 'Deployment/greedy/two'], 'the refused workloads are not done');
    assert.deepEqual(
      records(handoff).map((r) => `${r.workload.namespace}/${r.workload.name}`),
      ['modest/one'],
      "the other namespace's workload had its own share",
    );
    const shared = await Promise.all(['share-a', 'share-b'].map((repo) => backupDigest(mirrorOf(repo), '1')));
    assert.equal(shared.filter((digest) => digest !== undefined).length, 1, "one of greedy/two's images fit its share, the other waits");
    assert.equal(await backupDigest(mirrorOf('oversized'), '1'), undefined, 'the oversized image was not copied');
    const metrics = copier.metrics.render();
    // Counted at each attempt (a refused workload is retried with its backoff).
    assert.match(metrics, /^image_clone_copies_refused_total\{reason="namespace-images"\} [1-9]\d*$/m);
    assert.match(metrics, /^image_clone_copies_refused_total\{reason="image-too-large"\} [1-9]\d*$/m);
    const refusals = async (namespace: string) =>
      (await core.listNamespacedEvent({ namespace })).items.filter((e) => e.reason === 'BackupRefused').map((e) => `${e.involvedObject.name}: ${e.message}`);
    const said = [...(await refusals('bulky')), ...(await refusals('greedy'))];
    assert.equal(said.length, 2, said.join('\n'));
    assert.deepEqual(await refusals('modest'), []);
    assert.match(
      said[0]!,
      /^big: not backed up now: big: .*oversized:1: its manifests declare \d+\.\d KiB, more than --max-image-size \(64\.0 KiB\); not copied/,
    );
    assert.match(
      said[1]!,
      /^two: not backed up now: [ab]: this namespace has copied 1 images in this \d+-minute interval, its share \(--namespace-max-images\)/,
    );
  });

  it('--backup-pull secret:NAME records whether the pod template or its service account lists the Secret', async () => {
    await namespace('pull-secret');
    await core.createNamespacedServiceAccount({
      namespace: 'pull-secret',
      body: { metadata: { name: 'with-secret' }, imagePullSecrets: [{ name: 'backup-pull' }] },
    });
    const s = source.address;
    await deployment('pull-secret', 'listed', { ...podSpec({ app: `${s}/pull:1` }), imagePullSecrets: [{ name: 'other' }, { name: 'backup-pull' }] });
    await deployment('pull-secret', 'via-account', { ...podSpec({ app: `${s}/pull:1` }), serviceAccountName: 'with-secret' });
    await deployment('pull-secret', 'bare', { ...podSpec({ app: `${s}/pull:1` }), imagePullSecrets: [{ name: 'other' }] });
    await deployment('pull-secret', 'no-account', { ...podSpec({ app: `${s}/pull:1` }), serviceAccountName: 'missing' });
    const handoff = join(work, 'handoff-pull-secret');
    await new Copier(copierConfig(handoff, { includeNamespaces: ['pull-secret'], backupPull: { via: 'secret', secret: 'backup-pull' } })).runOnce();
    const listed = Object.fromEntries(records(handoff).map((r) => [r.workload.name, r.pull]));
    assert.deepEqual(listed, {
      listed: { via: 'secret', secret: 'backup-pull', listedBy: 'pod' },
      'via-account': { via: 'secret', secret: 'backup-pull', listedBy: 'service-account' },
      bare: { via: 'secret', secret: 'backup-pull', listedBy: 'none' },
      'no-account': { via: 'secret', secret: 'backup-pull', listedBy: 'none' },
    });
  });

  it("moves an operator's StatefulSet through its Prometheus, verified as that resource's owner lists it, and never proposes or patches what an unknown controller owns", async () => {
    await namespace('monitoring');
    await namespace('argocd');
    const s = source.address;
    await createGitOpsObject(kc, 'Application', 'argocd', {
      metadata: { name: 'stack' },
      spec: {
        source: { repoURL: 'https://git.example.com/platform/monitoring.git', path: 'prod', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'monitoring' },
      },
      // Argo CD applies the Prometheus, never the StatefulSet its operator makes from it.
      status: { resources: [{ group: 'monitoring.coreos.com', version: 'v1', kind: 'Prometheus', namespace: 'monitoring', name: 'k8s' }] },
    });
    const prometheus = (await createGitOpsObject(kc, 'Prometheus', 'monitoring', {
      metadata: { name: 'k8s', annotations: { 'argocd.argoproj.io/tracking-id': 'stack:monitoring.coreos.com/Prometheus:monitoring/k8s' } },
      spec: { image: `${s}/prom:2.50` },
    })) as { metadata: { uid: string } };
    const statefulSet = async (
      name: string,
      owner: { apiVersion: string; kind: string; name: string; uid: string },
      spec: V1PodSpec,
      labels: Record<string, string> = {},
    ) =>
      apps.createNamespacedStatefulSet({
        namespace: 'monitoring',
        body: {
          // What the operator copies onto it: the resource's own marks, which the StatefulSet's owner does not list.
          metadata: { name, labels, ownerReferences: [{ ...owner, controller: true, blockOwnerDeletion: true }] },
          spec: { serviceName: name, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec } },
        },
      });
    await statefulSet(
      'prometheus-k8s',
      { apiVersion: 'monitoring.coreos.com/v1', kind: 'Prometheus', name: 'k8s', uid: prometheus.metadata.uid },
      podSpec({ prometheus: `${s}/prom:2.50`, 'config-reloader': `${s}/reloader:0.7` }),
      { 'app.kubernetes.io/instance': 'stack' },
    );
    // A tenant's workload naming the Prometheus with a uid that is not its own: not that resource's, so moved by nobody.
    await statefulSet(
      'claims-prometheus',
      { apiVersion: 'monitoring.coreos.com/v1', kind: 'Prometheus', name: 'k8s', uid: '00000000-0000-0000-0000-0000000000ff' },
      podSpec({ prometheus: `${s}/prom:2.50` }),
    );
    // A reference to a resource that is not there: named as controlled, not retried for ever.
    await statefulSet(
      'ghost-prometheus',
      { apiVersion: 'monitoring.coreos.com/v1', kind: 'Prometheus', name: 'ghost', uid: '00000000-0000-0000-0000-0000000000ee' },
      podSpec({ prometheus: `${s}/prom:2.50` }),
    );
    await statefulSet(
      'kafka-a',
      { apiVersion: 'kafka.strimzi.io/v1beta2', kind: 'Kafka', name: 'a', uid: '00000000-0000-0000-0000-00000000000a' },
      podSpec({ kafka: `${s}/kafka:3` }),
    );
    const handoff = join(work, 'handoff-controlled');
    await new Copier(copierConfig(handoff, { includeNamespaces: ['monitoring'] })).runOnce();
    const all = records(handoff);
    const claimed = all.find((r) => r.workload.name === 'claims-prometheus');
    assert.deepEqual(claimed?.controller, { kind: 'Prometheus', name: 'k8s' }, "a uid that is not the resource's: named, not followed");
    const ghost = all.find((r) => r.workload.name === 'ghost-prometheus');
    assert.deepEqual(ghost?.controller, { kind: 'Prometheus', name: 'ghost' }, 'a resource that is not there: named, not followed');
    const byKind = Object.fromEntries(all.filter((r) => r !== claimed && r !== ghost).map((r) => [r.workload.kind, r]));
    assert.deepEqual(Object.keys(byKind).sort(), ['Prometheus', 'StatefulSet']);
    // The operator's resource is the record's subject, with the container its spec.image sets; the reloader's image is the operator's own.
    const prom = byKind.Prometheus!;
    assert.deepEqual(prom.workload, { kind: 'Prometheus', namespace: 'monitoring', name: 'k8s', uid: prometheus.metadata.uid });
    assert.deepEqual(
      prom.images.map((i) => [i.container, i.source]),
      [['prometheus', `${s}/prom:2.50`]],
    );
    assert.equal(prom.owner?.kind, 'Application');
    assert.equal(prom.owner?.name, 'stack');
    assert.equal(prom.owner?.notVerified, undefined, 'the Application lists the Prometheus');
    assert.equal(prom.controller, undefined);
    // An unknown controller: backed up, said on the workload, and named in the record, which routes nowhere.
    const kafka = byKind.StatefulSet!;
    assert.deepEqual(kafka.controller, { kind: 'Kafka', name: 'a' });
    assert.equal(kafka.owner, undefined);
    assert.ok(await backupDigest(mirrorOf('kafka'), '3'));
    const events = await core.listNamespacedEvent({ namespace: 'monitoring' });
    assert.ok(
      events.items.some((e) => e.reason === 'ControlledByOperator' && e.involvedObject.name === 'kafka-a' && /Kafka a controls it/.test(e.message ?? '')),
      JSON.stringify(events.items.map((e) => [e.reason, e.involvedObject.name, e.message])),
    );
    assert.ok(!events.items.some((e) => e.reason === 'OwnerNotVerified'), 'the copied marks of a controlled workload are not judged as its own');
  });

  it('resolves Argo CD and Flux owners from real CRD objects', async () => {
    const _custom = kc.makeApiClient(CustomObjectsApi);
    await namespace('argocd');
    await namespace('flux-system');
    await createGitOpsObject(kc, 'Application', 'argocd', {
      metadata: { name: 'shop' },
      spec: {
        source: { repoURL: 'https://git.example.com/platform/apps.git', path: './shop/overlays/prod', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'team-a' },
      },
      // What Argo CD records it manages: only argo-web.
      status: { resources: [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'team-a', name: 'argo-web' }] },
    });
    await createGitOpsObject(kc, 'GitRepository', 'flux-system', {
      metadata: { name: 'fleet' },
      spec: { url: 'ssh://git@git.example.com/fleet.git', ref: { branch: 'release' } },
    });
    await createGitOpsObject(kc, 'Kustomization', 'flux-system', {
      metadata: { name: 'apps' },
      spec: { path: './clusters/prod/apps', sourceRef: { kind: 'GitRepository', name: 'fleet' } },
      // What kustomize-controller applied: flux-web, and the HelmRelease cache.
      status: {
        inventory: {
          entries: [
            { id: 'team-a_flux-web_apps_Deployment', v: 'v1' },
            { id: 'team-b_cache_helm.toolkit.fluxcd.io_HelmRelease', v: 'v2' },
          ],
        },
      },
    });
    // A tenant's own Argo CD Application (apps in any namespace) and Kustomization, each listing the
    // tenant's workload as managed, but one in a namespace Argo CD's trust does not cover, the other
    // taking its manifests from another namespace's repository.
    await createGitOpsObject(kc, 'Application', 'team-a', {
      metadata: { name: 'tenant-app' },
      spec: {
        source: { repoURL: 'https://git.example.com/team-b/apps.git', path: '.', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'team-a' },
      },
      status: { resources: [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'team-a', name: 'in-tenant-app' }] },
    });
    await createGitOpsObject(kc, 'Kustomization', 'team-a', {
      metadata: { name: 'tenant-ks' },
      spec: { path: './', sourceRef: { kind: 'GitRepository', name: 'fleet', namespace: 'flux-system' } },
      status: { inventory: { entries: [{ id: 'team-a_cross-ns_apps_Deployment', v: 'v1' }] } },
    });
    await createGitOpsObject(kc, 'HelmRelease', 'team-b', {
      // Applied by the Kustomization apps (which lists it), as kustomize-controller labels it.
      metadata: { name: 'cache', labels: { 'kustomize.toolkit.fluxcd.io/name': 'apps', 'kustomize.toolkit.fluxcd.io/namespace': 'flux-system' } },
      spec: { chart: { spec: { chart: './charts/cache', sourceRef: { kind: 'GitRepository', name: 'fleet', namespace: 'flux-system' } } } },
    });

    const s = source.address;
    await deployment('team-a', 'argo-web', podSpec({ app: `${s}/argo-app:1` }), {
      annotations: { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:team-a/argo-web' },
    });
    await deployment('team-a', 'flux-web', podSpec({ app: `${s}/flux-app:1` }), {
      labels: { 'kustomize.toolkit.fluxcd.io/name': 'apps', 'kustomize.toolkit.fluxcd.io/namespace': 'flux-system' },
    });
    await deployment('team-b', 'helm-web', podSpec({ app: `${s}/helm-app:1` }), {
      labels: { 'helm.toolkit.fluxcd.io/name': 'cache', 'helm.toolkit.fluxcd.io/namespace': 'team-b' },
    });
    // A tenant of team-a writing marks that claim other owners: none of these owners lists the workload.
    const claims: Record<string, { labels?: Record<string, string>; annotations?: Record<string, string> }> = {
      'copied-tracking': { annotations: { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:team-a/argo-web' } },
      'own-tracking': { annotations: { 'argocd.argoproj.io/tracking-id': 'shop:apps/Deployment:team-a/own-tracking' } },
      'label-only': { labels: { 'app.kubernetes.io/instance': 'shop' } },
      'claims-kustomization': { labels: { 'kustomize.toolkit.fluxcd.io/name': 'apps', 'kustomize.toolkit.fluxcd.io/namespace': 'flux-system' } },
      'claims-release': { labels: { 'helm.toolkit.fluxcd.io/name': 'cache', 'helm.toolkit.fluxcd.io/namespace': 'team-b' } },
      'in-tenant-app': { annotations: { 'argocd.argoproj.io/tracking-id': 'team-a_tenant-app:apps/Deployment:team-a/in-tenant-app' } },
      'cross-ns': { labels: { 'kustomize.toolkit.fluxcd.io/name': 'tenant-ks', 'kustomize.toolkit.fluxcd.io/namespace': 'team-a' } },
    };
    for (const [name, marks] of Object.entries(claims)) await deployment('team-a', name, podSpec({ app: `${s}/argo-app:1` }), marks);

    const handoff = join(work, 'handoff-owners');
    const copier = new Copier(copierConfig(handoff, { includeNamespaces: ['team-a', 'team-b'] }));
    await copier.runOnce();
    const byName = new Map(records(handoff).map((r) => [r.workload.name, r]));
    const why: Record<string, RegExp> = {
      'copied-tracking': /its tracking-id names apps\/Deployment team-a\/argo-web, not apps\/Deployment team-a\/copied-tracking/,
      'own-tracking': /Application argocd\/shop does not list apps\/Deployment team-a\/own-tracking in its status\.resources/,
      'label-only': /Application argocd\/shop does not list apps\/Deployment team-a\/label-only in its status\.resources/,
      'claims-kustomization': /Kustomization flux-system\/apps does not list apps\/Deployment team-a\/claims-kustomization in its status\.inventory/,
      'claims-release': /HelmRelease team-b\/cache installs into namespace team-b, not team-a/,
      'in-tenant-app': /Application team-a\/tenant-app is outside the Argo CD namespace the controller trusts \(argocd\)/,
      'cross-ns': /Kustomization team-a\/tenant-ks takes its manifests from namespace flux-system, not its own/,
    };
    for (const [name, reason] of Object.entries(why)) {
      const owner = byName.get(name)?.owner;
      assert.deepEqual(owner?.sources, [], `${name}: no repository of the claimed owner`);
      assert.match(owner?.notVerified ?? '', reason, name);
      assert.match(owner?.unsupported ?? '', /the owner its marks name is not verified/, `${name}: never proposed, never the unmanaged fallback`);
    }
    assert.match(copier.metrics.render(), /^image_clone_owners_not_verified_total 7$/m);
    const events = (await core.listNamespacedEvent({ namespace: 'team-a' })).items.filter((e) => e.reason === 'OwnerNotVerified');
    assert.deepEqual(events.map((e) => e.involvedObject.name).sort(), Object.keys(why).sort());
    assert.deepEqual(byName.get('argo-web')?.owner, {
      tool: 'argocd',
      kind: 'Application',
      namespace: 'argocd',
      name: 'shop',
      sources: [{ repoURL: 'https://git.example.com/platform/apps.git', path: 'shop/overlays/prod', revision: 'main' }],
      chain: ['Application argocd/shop (https://git.example.com/platform/apps.git, path shop/overlays/prod)'],
    });
    assert.deepEqual(byName.get('flux-web')?.owner, {
      tool: 'flux',
      kind: 'Kustomization',
      namespace: 'flux-system',
      name: 'apps',
      sources: [{ repoURL: 'ssh://git@git.example.com/fleet.git', revision: 'release', path: 'clusters/prod/apps' }],
      chain: ['Kustomization flux-system/apps (GitRepository flux-system/fleet, path clusters/prod/apps)'],
    });
    assert.deepEqual(byName.get('helm-web')?.owner, {
      tool: 'flux',
      kind: 'HelmRelease',
      namespace: 'team-b',
      name: 'cache',
      sources: [{ repoURL: 'ssh://git@git.example.com/fleet.git', revision: 'release', path: 'charts/cache', chart: './charts/cache' }],
      chain: ['HelmRelease team-b/cache (chart ./charts/cache from GitRepository flux-system/fleet)'],
    });
  });

  it('recovers when the API server restarts under its watches', async () => {
    const handoff = join(work, 'handoff-watch');
    await namespace('watched');
    const copier = new Copier(copierConfig(handoff, { includeNamespaces: ['watched'] }));
    await copier.start();
    try {
      await deployment('watched', 'before', podSpec({ app: `${source.address}/web:1.0` }));
      await waitUntil(() => records(handoff).some((r) => r.workload.name === 'before'), 'a record for the deployment made before the cut');
      await cluster.restartApiServer();
      await deployment('watched', 'after', podSpec({ app: `${source.address}/db:15` }));
      await waitUntil(
        () => records(handoff).some((r) => r.workload.name === 'after'),
        'a record for the deployment made after the API server restarted',
        60_000,
      );
    } finally {
      await copier.stop();
    }
  });

  it('takes rotated credentials from disk without a restart', async () => {
    await namespace('rotation');
    await seedImage({ url: source.url }, { repository: 'rotated', tag: 'v1', format: 'docker', layers: [{ seed: 'rotated', size: 1024 }] });
    await deployment('rotation', 'app', podSpec({ app: `${source.address}/rotated:v1` }));
    const authFile = join(work, 'rotating-auth.json');
    writeFileSync(authFile, dockerConfigJson({ [backup.address]: { username: 'pusher', password: 'old-wrong-password' } }));
    const credentials = new CredentialFiles({ authFile, logger: createLogger({ write: () => {} }) });
    await credentials.watch();
    const handoff = join(work, 'handoff-rotation');
    const base = copierConfig(handoff, { includeNamespaces: ['rotation'] });
    const copier = new Copier({ ...base, registry: { ...base.registry, credentials: () => credentials.current() } });
    await copier.start();
    try {
      await waitUntil(() => /image_clone_workloads_failing 1/.test(copier.metrics.render()), 'the wrong password makes the backup fail');
      writeFileSync(authFile, dockerConfigJson({ [backup.address]: { username: 'pusher', password: PASSWORD } }));
      await waitUntil(() => records(handoff).some((r) => r.workload.name === 'app'), 'the rotated password is used on the retry', 30_000);
    } finally {
      await copier.stop();
      await credentials.close();
    }
  });

  it('runs two replicas safely: one leads on a Lease, the other takes over when it stops', async () => {
    await namespace('leader-test');
    await deployment('leader-test', 'app', podSpec({ app: `${source.address}/agent:3` }));
    const handoff = join(work, 'handoff-leader');
    const config = copierConfig(handoff, { includeNamespaces: ['leader-test'], controllerNamespace: CONTROLLER_NS });
    const a = new Copier({ ...config, leaderElection: { leaseName: 'copier-test', identity: 'replica-a' } });
    const b = new Copier({ ...config, leaderElection: { leaseName: 'copier-test', identity: 'replica-b' } });
    const servers = new Map<Copier, HealthServer>();
    await a.start();
    await waitUntil(() => /image_clone_leader 1/.test(a.metrics.render()), 'replica a leads');
    await b.start();
    try {
      await waitUntil(() => records(handoff).length === 1, 'the leader wrote the record');
      await new Promise((r) => setTimeout(r, 2500));
      assert.match(b.metrics.render(), /image_clone_leader 0/, 'only one leader');
      const lease = await kc
        .makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api)
        .readNamespacedLease({ name: 'copier-test', namespace: CONTROLLER_NS });
      assert.equal(lease.spec?.holderIdentity, 'replica-a');

      // Served as the copier command serves them.
      for (const copier of [a, b])
        servers.set(
          copier,
          await startHealthServer({ address: '127.0.0.1:0', metrics: copier.metrics, healthy: () => copier.healthy(), ready: () => copier.readiness() }),
        );
      const health = async (copier: Copier, path: string) => {
        const response = await request(`http://127.0.0.1:${servers.get(copier)!.port}${path}`);
        return { status: response.statusCode, body: await response.body.text() };
      };
      assert.equal((await health(a, '/healthz')).status, 200);
      assert.deepEqual(await health(a, '/readyz'), { status: 200, body: 'ok: every workload decided\n' });
      assert.match((await health(b, '/readyz')).body, /standby/);
      const metrics = await health(a, '/metrics');
      for (const name of [
        'image_clone_copies_total',
        'image_clone_queue_depth',
        'image_clone_copy_duration_seconds_bucket',
        'image_clone_handoff_records_total',
        'image_clone_leader',
      ])
        assert.ok(metrics.body.includes(name), name);

      await a.stop();
      await waitUntil(() => /image_clone_leader 1/.test(b.metrics.render()), 'replica b takes over after a releases the lease', 20_000);
    } finally {
      await a.stop().catch(() => undefined);
      await b.stop();
      await Promise.all([...servers.values()].map((server) => server.close()));
    }
  });

  it('runs as the command line does: copier --once exits 0 and honours --exclude-namespace', async () => {
    await namespace('cli-a');
    await namespace('cli-b');
    await deployment('cli-a', 'app', podSpec({ app: `${source.address}/web:1.0` }));
    await deployment('cli-b', 'app', podSpec({ app: `${source.address}/web:1.0` }));
    const handoff = join(work, 'handoff-cli');
    writeFileSync(join(work, 'cli-auth.json'), dockerConfigJson({ [backup.address]: { username: 'pusher', password: PASSWORD } }));
    const { execFile } = await import('node:child_process');
    const args = [
      join(import.meta.dirname, '../../src/cli.ts'),
      'copier',
      '--once',
      '--kubeconfig',
      cluster.kubeconfig,
      '--backup-registry',
      `${backup.address}/mirror`,
      '--handoff-dir',
      handoff,
      '--insecure-registry',
      source.address,
      '--insecure-registry',
      backup.address,
      '--auth-file',
      join(work, 'cli-auth.json'),
      '--controller-namespace',
      CONTROLLER_NS,
      '--exclude-namespace',
      'cli-b',
      '--exclude-namespace',
      'team-a',
      '--exclude-namespace',
      'team-b',
      '--exclude-namespace',
      'leader-test',
      '--exclude-namespace',
      'rotation',
      '--exclude-namespace',
      'watched',
      '--exclude-namespace',
      'pull-check',
      '--exclude-namespace',
      'pull-secret',
      '--exclude-namespace',
      'public-check',
      '--exclude-namespace',
      'greedy',
      '--exclude-namespace',
      'modest',
      '--exclude-namespace',
      'bulky',
      '--exclude-namespace',
      'monitoring',
      '--backup-pull',
      'node',
      '--cluster-name',
      'east-1',
    ];
    const result = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, args, { timeout: 120_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /pass complete: \d+ workloads decided in [\d.]+ s; 1 handoff records written; 0 failed; 0 not pullable by the nodes/);
    assert.deepEqual(
      records(handoff).map((r) => `${r.workload.namespace}/${r.workload.name}`),
      ['cli-a/app'],
    );
    assert.equal(records(handoff)[0]!.cluster?.name, 'east-1', '--cluster-name names the cluster in the record');
    for (const line of result.stderr.trim().split('\n')) assert.doesNotThrow(() => JSON.parse(line), `a JSON log line: ${line}`);
    assert.ok(!result.stderr.includes(PASSWORD) && !result.stdout.includes(PASSWORD));

    // By default a backup must be pullable without credentials; this registry's are not: exit 1.
    const strict = [
      ...args.slice(0, 2),
      '--once',
      '--kubeconfig',
      cluster.kubeconfig,
      '--backup-registry',
      `${backup.address}/mirror`,
      '--handoff-dir',
      join(work, 'handoff-cli-strict'),
      '--insecure-registry',
      source.address,
      '--insecure-registry',
      backup.address,
      '--auth-file',
      join(work, 'cli-auth.json'),
      '--controller-namespace',
      CONTROLLER_NS,
      '--include-namespace',
      'pull-check',
    ];
    const refused = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, strict, { timeout: 120_000 }, (error, stdout, stderr) =>
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stdout, /0 handoff records written; 0 failed; 1 not pullable by the nodes/);
    assert.match(refused.stderr, /workload backed up but not handed off: its nodes could not pull the backup \(see --backup-pull\)/);
  });

  it('names the missing RBAC permission when the service account may not list', async () => {
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createClusterRole({
      body: {
        metadata: { name: 'half-copier' },
        rules: [
          { apiGroups: [''], resources: ['namespaces'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: ['get', 'list', 'watch'] },
        ],
      },
    });
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: 'half-copier' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'half-copier' },
        subjects: [{ kind: 'User', name: 'half-copier', apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    const limited = new KubeConfig();
    limited.loadFromFile(await cluster.kubeconfigFor('half-copier'));
    const copier = new Copier(copierConfig(join(work, 'handoff-rbac'), { kubeConfig: limited }));
    await assert.rejects(copier.runOnce(), (error: Error) => {
      assert.match(error.message, /lacks RBAC permission/);
      assert.match(error.message, /daemonsets/);
      assert.match(error.message, /cannot list resource "daemonsets"/);
      return true;
    });
    await copier.stop();
  });
});

async function waitUntil(condition: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
