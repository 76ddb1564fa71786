/**
 * Argo CD in a hub, the workloads in a spoke: the copier runs in the spoke (as `image-clone copier`,
 * a process) and reads the hub's Applications through a kubeconfig whose user may only get
 * Applications in the hub's argocd namespace (`--argocd-kubeconfig`, `--argocd-destination east`).
 * Two real kube-apiservers. A workload whose Application deploys to this spoke is owned by it; one
 * that claims an Application deploying to another spoke (which lists a workload of the same name
 * there) is not: its owner is not verified, with the reason.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { createGitOpsObject, installGitOpsCrds } from '../../devenv/gitops-crds.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { seedImage } from '../../devenv/seed.ts';
import type { HandoffRecord } from '../../src/handoff/schema.ts';
import { deploymentObject } from '../support/installation.ts';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');
const REPO = 'https://git.example.test/platform/apps.git';

describe('Argo CD in a hub: a spoke copier reads its Applications there, and only those deploying to it own its workloads', () => {
  let work: string;
  let hub: Cluster;
  let spoke: Cluster;
  let source: RegistryServer;
  let backup: RegistryServer;
  let hubAccess: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'image-clone-hub-'));
    [hub, spoke, source, backup] = await Promise.all([
      startCluster({ dir: join(work, 'hub') }),
      startCluster({ dir: join(work, 'spoke') }),
      startRegistryServer(),
      startRegistryServer(),
    ]);
    const hubKc = new KubeConfig();
    hubKc.loadFromFile(hub.kubeconfig);
    await installGitOpsCrds(hubKc);
    await hubKc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'argocd' } } });
    // What the README's hub RBAC for a spoke lists: get Applications in Argo CD's namespace, nothing else.
    const rbac = hubKc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: 'argocd',
      body: { metadata: { name: 'image-clone-spoke' }, rules: [{ apiGroups: ['argoproj.io'], resources: ['applications'], verbs: ['get'] }] },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: 'argocd',
      body: {
        metadata: { name: 'image-clone-spoke-east' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'image-clone-spoke' },
        subjects: [{ kind: 'User', name: 'image-clone-spoke-east', apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    hubAccess = await hub.kubeconfigFor('image-clone-spoke-east');

    // An Application deploying to the hub itself, listing a HelmRelease shop/charts there.
    await createGitOpsObject(hubKc, 'Application', 'argocd', {
      metadata: { name: 'hub-platform' },
      spec: {
        source: { repoURL: 'https://git.example.test/platform/hub.git', path: 'releases', targetRevision: 'main' },
        destination: { name: 'in-cluster', namespace: 'shop' },
      },
      status: { resources: [{ group: 'helm.toolkit.fluxcd.io', version: 'v2', kind: 'HelmRelease', namespace: 'shop', name: 'charts' }] },
    });
    // Two Applications in the hub, one per spoke, each listing a Deployment shop/… in its own spoke.
    for (const [name, destination, workload] of [
      ['east-shop', 'east', 'web'],
      ['west-shop', 'west', 'rogue'],
    ] as const)
      await createGitOpsObject(hubKc, 'Application', 'argocd', {
        metadata: { name },
        spec: { source: { repoURL: REPO, path: `clusters/${destination}`, targetRevision: 'main' }, destination: { name: destination, namespace: 'shop' } },
        status: { resources: [{ group: 'apps', version: 'v1', kind: 'Deployment', namespace: 'shop', name: workload }] },
      });

    // The spoke: web, tracked by east-shop; rogue, claiming west-shop (whose destination is another spoke).
    const spokeKc = new KubeConfig();
    spokeKc.loadFromFile(spoke.kubeconfig);
    await installGitOpsCrds(spokeKc);
    const core = spokeKc.makeApiClient(CoreV1Api);
    for (const namespace of ['shop', 'image-clone']) await core.createNamespace({ body: { metadata: { name: namespace } } });
    const apps = spokeKc.makeApiClient(AppsV1Api);
    for (const [workload, app] of [
      ['web', 'east-shop'],
      ['rogue', 'west-shop'],
    ] as const) {
      await seedImage(
        { url: source.url },
        { repository: `team/${workload}`, tag: '1.0', format: 'oci', layers: [{ seed: `hub-${workload}`, size: 8 * 1024 }] },
      );
      const body = deploymentObject({ namespace: 'shop', name: workload }, `${source.address}/team/${workload}:1.0`);
      // Argo CD's mark, naming the Application (the spoke's tenant writes it: the hub's Application decides).
      body.metadata.annotations = { 'argocd.argoproj.io/tracking-id': `${app}:apps/Deployment:shop/${workload}` };
      await apps.createNamespacedDeployment({ namespace: 'shop', body });
    }
    // A spoke tenant's HelmRelease of the same name, claiming the hub's own Application, and its Deployment.
    await createGitOpsObject(spokeKc, 'HelmRepository', 'shop', { metadata: { name: 'charts' }, spec: { url: 'https://charts.example.test' } });
    await createGitOpsObject(spokeKc, 'HelmRelease', 'shop', {
      metadata: { name: 'charts', annotations: { 'argocd.argoproj.io/tracking-id': 'hub-platform:helm.toolkit.fluxcd.io/HelmRelease:shop/charts' } },
      spec: { chart: { spec: { chart: 'web', sourceRef: { kind: 'HelmRepository', name: 'charts' } } } },
    });
    await seedImage({ url: source.url }, { repository: 'team/charts', tag: '1.0', format: 'oci', layers: [{ seed: 'hub-charts', size: 8 * 1024 }] });
    const released = deploymentObject({ namespace: 'shop', name: 'charts-web' }, `${source.address}/team/charts:1.0`);
    released.metadata = {
      name: 'charts-web',
      namespace: 'shop',
      labels: { 'helm.toolkit.fluxcd.io/name': 'charts', 'helm.toolkit.fluxcd.io/namespace': 'shop' },
    } as never;
    await apps.createNamespacedDeployment({ namespace: 'shop', body: released });
  });

  after(async () => {
    await Promise.all([hub?.stop(), spoke?.stop(), source?.stop(), backup?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  const copier = (...extra: string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(
        process.execPath,
        [
          CLI,
          'copier',
          '--once',
          '--kubeconfig',
          spoke.kubeconfig,
          '--backup-registry',
          `${backup.address}/backup`,
          '--handoff-dir',
          join(work, 'handoff'),
          '--insecure-registry',
          source.address,
          '--insecure-registry',
          backup.address,
          '--controller-namespace',
          'image-clone',
          '--backup-pull',
          'node',
          '--cluster-name',
          'east',
          ...extra,
        ],
        { timeout: 120_000 },
        (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );

  it('refuses --argocd-kubeconfig without --argocd-destination, naming what is missing', async () => {
    const result = await copier('--argocd-kubeconfig', hubAccess);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /--argocd-kubeconfig needs --argocd-destination/);
  });

  it("owns the workload whose hub Application deploys here, and not the one claiming another spoke's", async () => {
    const result = await copier('--argocd-kubeconfig', hubAccess, '--argocd-destination', 'east');
    assert.equal(result.code, 0, result.stderr);
    const dir = join(work, 'handoff');
    const records = readdirSync(dir)
      .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
      .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as HandoffRecord);
    const by = new Map(records.map((r) => [r.workload.name, r]));
    assert.deepEqual(by.get('web')?.owner, {
      tool: 'argocd',
      kind: 'Application',
      namespace: 'argocd',
      name: 'east-shop',
      sources: [{ repoURL: REPO, path: 'clusters/east', revision: 'main' }],
      chain: [`Application argocd/east-shop (${REPO}, path clusters/east)`],
    });
    assert.equal(by.get('web')?.cluster?.name, 'east');
    const rogue = by.get('rogue')?.owner;
    assert.match(rogue?.notVerified ?? '', /^Application argocd\/west-shop deploys to "west", not to this cluster \(east; see --argocd-destination\)$/);
    // A HelmRelease in the spoke is applied here: its Application must deploy here too, not to the hub.
    assert.match(by.get('charts-web')?.owner?.notVerified ?? '', /Application argocd\/hub-platform deploys to "in-cluster", not to this cluster \(east/);
    assert.doesNotMatch(result.stderr, /forbidden/i, 'the hub user needs nothing but get on Applications');
  });

  it("the spoke's user in the hub can do nothing but get Applications in Argo CD's namespace", async () => {
    const limited = new KubeConfig();
    limited.loadFromFile(hubAccess);
    const core = limited.makeApiClient(CoreV1Api);
    await assert.rejects(core.listNamespacedSecret({ namespace: 'argocd' }), /403|forbidden/i);
    await assert.rejects(core.listNamespace(), /403|forbidden/i);
    const { CustomObjectsApi } = await import('@kubernetes/client-node');
    const custom = limited.makeApiClient(CustomObjectsApi);
    await assert.rejects(
      custom.listNamespacedCustomObject({ group: 'argoproj.io', version: 'v1alpha1', namespace: 'argocd', plural: 'applications' }),
      /403|forbidden/i,
    );
    const app = (await custom.getNamespacedCustomObject({
      group: 'argoproj.io',
      version: 'v1alpha1',
      namespace: 'argocd',
      plural: 'applications',
      name: 'east-shop',
    })) as {
      metadata: { name: string };
    };
    assert.equal(app.metadata.name, 'east-shop');
  });
});
