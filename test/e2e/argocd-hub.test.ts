/**
 * Argo CD in a hub, the workloads in a spoke, two real kube-apiservers, both topologies:
 * - the copier in the spoke (as `image-clone copier`, a process) reads the hub's Applications through
 *   a kubeconfig whose user may only get Applications in the hub's argocd namespace
 *   (`--argocd-kubeconfig`, `--argocd-destination east`);
 * - the copier in the hub (`--argocd-cluster-secret`) reaches the spoke through Argo CD's cluster
 *   Secret, as the hub's service account with the RBAC of overlays/argocd-hub, and the spoke with a
 *   token of kustomize/argocd-spoke-access's service account.
 * Either way, a workload whose Application deploys to this spoke is owned by it; one that claims an
 * Application deploying to another spoke (which lists a workload of the same name there) is not:
 * its owner is not verified, with the reason.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AppsV1Api,
  AuthorizationV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  RbacAuthorizationV1Api,
  type KubernetesObject,
  type RbacV1Subject,
  type V1PolicyRule,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { BIN_DIR } from '../../devenv/cache.ts';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { createGitOpsObject, installGitOpsCrds } from '../../devenv/gitops-crds.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { seedImage } from '../../devenv/seed.ts';
import { freePort } from '../../devenv/process.ts';
import type { HandoffRecord } from '../../src/handoff/schema.ts';
import { deploymentObject, deploymentYaml } from '../support/installation.ts';
import { startGitea, type Gitea } from '../../devenv/gitea.ts';
import { plantCanary } from '../support/canaries.ts';
import { rowsFromDescription } from '../../src/rewriter/forges/description.ts';

const CLI = resolve(import.meta.dirname, '../../src/cli.ts');
const ROOT = resolve(import.meta.dirname, '../..');

function render(path: string): KubernetesObject[] {
  const text = execFileSync(join(BIN_DIR, 'kustomize'), ['build', join(ROOT, path)], { encoding: 'utf8' });
  return parseAllDocuments(text).map((d) => d.toJS() as KubernetesObject);
}

/** A kubeconfig file for a service account of `cluster`, from a token the apiserver issues (TokenRequest). */
async function serviceAccountKubeconfig(cluster: Cluster, admin: KubeConfig, namespace: string, name: string, file: string): Promise<string> {
  const token = await issueToken(admin, namespace, name);
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, caData: readFileSync(cluster.caFile).toString('base64'), skipTLSVerify: false }],
    users: [{ name: 'u', token }],
    contexts: [{ name: 'c', cluster: 'c', user: 'u' }],
    currentContext: 'c',
  });
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

async function issueToken(admin: KubeConfig, namespace: string, name: string): Promise<string> {
  const request = await admin
    .makeApiClient(CoreV1Api)
    .createNamespacedServiceAccountToken({ namespace, name, body: { spec: { audiences: [], expirationSeconds: 3600 } } });
  return request.status!.token!;
}

/** A Role of `rules` in `namespace` and its binding (`binding`, the Role's name unless told) to `subject`. */
async function grant(kc: KubeConfig, namespace: string, name: string, rules: V1PolicyRule[], subject: RbacV1Subject, binding = name): Promise<void> {
  const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
  await rbac.createNamespacedRole({ namespace, body: { metadata: { name }, rules } });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: { metadata: { name: binding }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [subject] },
  });
}

/** Whether a service account may do `verb` (SubjectAccessReview). */
async function can(admin: KubeConfig, account: string, verb: string, group: string, resource: string, namespace?: string, name?: string): Promise<boolean> {
  const [ns, sa] = account.split('/') as [string, string];
  const review = await admin.makeApiClient(AuthorizationV1Api).createSubjectAccessReview({
    body: {
      spec: {
        user: `system:serviceaccount:${ns}:${sa}`,
        groups: ['system:serviceaccounts', `system:serviceaccounts:${ns}`],
        resourceAttributes: { verb, group, resource, ...(namespace ? { namespace } : {}), ...(name ? { name } : {}) },
      },
    },
  });
  return review.status?.allowed === true;
}

describe('Argo CD in a hub: a spoke copier reads its Applications there, and only those deploying to it own its workloads', () => {
  let work: string;
  let hub: Cluster;
  let spoke: Cluster;
  let source: RegistryServer;
  let backup: RegistryServer;
  let hubAccess: string;
  let hubKc: KubeConfig;
  let spokeKc: KubeConfig;
  /** The Applications' repository, on a real Gitea: the hub installation's pull request opens there. */
  let gitea: Gitea;
  let REPO: string;

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'image-clone-hub-'));
    [hub, spoke, source, backup, gitea] = await Promise.all([
      startCluster({ dir: join(work, 'hub') }),
      startCluster({ dir: join(work, 'spoke') }),
      startRegistryServer(),
      startRegistryServer(),
      startGitea(join(work, 'gitea')),
    ]);
    plantCanary(gitea.token);
    plantCanary(gitea.password);
    REPO = await gitea.createRepository('apps');
    await gitea.api('POST', `/repos/${gitea.user}/apps/contents/clusters/east/web.yaml`, {
      message: 'east: web',
      content: Buffer.from(deploymentYaml({ namespace: 'shop', name: 'web' }, `${source.address}/team/web:1.0`)).toString('base64'),
    });
    hubKc = new KubeConfig();
    hubKc.loadFromFile(hub.kubeconfig);
    await installGitOpsCrds(hubKc);
    await hubKc.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: 'argocd' } } });
    // What the README's hub RBAC for a spoke lists: get Applications in Argo CD's namespace, nothing else.
    await grant(
      hubKc,
      'argocd',
      'image-clone-spoke',
      [{ apiGroups: ['argoproj.io'], resources: ['applications'], verbs: ['get'] }],
      {
        kind: 'User',
        name: 'image-clone-spoke-east',
        apiGroup: 'rbac.authorization.k8s.io',
      },
      'image-clone-spoke-east',
    );
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
    spokeKc = new KubeConfig();
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
    await Promise.all([hub?.stop(), spoke?.stop(), source?.stop(), backup?.stop(), gitea?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** `image-clone copier` against the two registries, with `args` saying where it runs. */
  const copierArgs = (args: readonly string[]) => [
    CLI,
    'copier',
    '--backup-registry',
    `${backup.address}/backup`,
    '--insecure-registry',
    source.address,
    '--insecure-registry',
    backup.address,
    '--backup-pull',
    'node',
    ...args,
  ];
  /** One pass of it (--once), to its end. */
  const run = (args: readonly string[]) =>
    new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
      execFile(process.execPath, copierArgs(['--once', ...args]), { timeout: 120_000 }, (error, stdout, stderr) =>
        done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
      ),
    );
  /** The copier in the spoke. */
  const copier = (...extra: string[]) =>
    run([
      '--kubeconfig',
      spoke.kubeconfig,
      '--handoff-dir',
      join(work, 'handoff'),
      '--controller-namespace',
      'image-clone',
      '--cluster-name',
      'east',
      ...extra,
    ]);
  const recordsIn = (dir: string) =>
    new Map(
      readdirSync(dir)
        .filter((f) => f.endsWith('.json') && !f.startsWith('.'))
        .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as HandoffRecord)
        .map((r) => [r.workload.name, r]),
    );

  it('refuses --argocd-kubeconfig without --argocd-destination, naming what is missing', async () => {
    const result = await copier('--argocd-kubeconfig', hubAccess);
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /--argocd-kubeconfig needs --argocd-destination/);
  });

  it("owns the workload whose hub Application deploys here, and not the one claiming another spoke's", async () => {
    const result = await copier('--argocd-kubeconfig', hubAccess, '--argocd-destination', 'east');
    assert.equal(result.code, 0, result.stderr);
    const by = recordsIn(join(work, 'handoff'));
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
    assert.match(
      rogue?.notVerified ?? '',
      /^Application argocd\/west-shop deploys to another cluster than this one \(its destination name is not one of this cluster's/,
    );
    assert.doesNotMatch(rogue?.notVerified ?? '', /"west"|\beast\b/, "the refusal (a tenant reads it in the workload's Events) names no cluster");
    // A HelmRelease in the spoke is applied here: its Application must deploy here too, not to the hub.
    assert.match(by.get('charts-web')?.owner?.notVerified ?? '', /Application argocd\/hub-platform deploys to another cluster than this one/);
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
  describe("the controller in the hub, reaching the spoke through Argo CD's cluster Secret", () => {
    let hubAccount: string;
    let spokeToken: string;
    const SPOKE_ACCOUNT = 'kube-system/image-clone-hub';
    const HUB_ACCOUNT = 'image-clone-namespace/image-clone-controller';

    before(async () => {
      // The spoke: what kustomize/argocd-spoke-access applies, and a token of its service account.
      const spokeObjects = KubernetesObjectApi.makeApiClient(spokeKc);
      for (const object of render('kustomize/argocd-spoke-access')) await spokeObjects.create(object);
      spokeToken = await issueToken(spokeKc, 'kube-system', 'image-clone-hub');
      // The hub: overlays/argocd-hub's namespace, service account and RBAC (nothing else of it runs here).
      const hubObjects = KubernetesObjectApi.makeApiClient(hubKc);
      const rbacKinds = ['Namespace', 'ServiceAccount', 'Role', 'RoleBinding'];
      const rendered = render('kustomize/overlays/argocd-hub').filter((o) => rbacKinds.includes(o.kind!));
      for (const kind of rbacKinds) for (const object of rendered.filter((o) => o.kind === kind)) await hubObjects.create(object);
      // Argo CD's cluster Secret for the spoke, under the name the overlay's Role lets the copier get.
      const config = { bearerToken: spokeToken, tlsClientConfig: { insecure: false, caData: readFileSync(spoke.caFile).toString('base64') } };
      const clusterSecret = (name: string, fields: Record<string, string>) =>
        hubKc.makeApiClient(CoreV1Api).createNamespacedSecret({
          namespace: 'argocd',
          body: { metadata: { name, labels: { 'argocd.argoproj.io/secret-type': 'cluster' } }, stringData: fields },
        });
      await clusterSecret('spoke-cluster', { name: 'east', server: spoke.server, config: JSON.stringify(config) });
      // Another spoke's Secret, which the copier may not read.
      await clusterSecret('west', { name: 'west', server: 'https://127.0.0.1:1', config: JSON.stringify(config) });
      hubAccount = await serviceAccountKubeconfig(hub, hubKc, 'image-clone-namespace', 'image-clone-controller', join(work, 'hub-account.kubeconfig'));
    });

    /** Where the hub's copier runs: as the hub's service account, its records in `dir`. */
    const hubWhere = (dir: string, ...extra: string[]) => [
      '--kubeconfig',
      hubAccount,
      '--handoff-dir',
      join(work, dir),
      '--controller-namespace',
      'image-clone-namespace',
      ...extra,
    ];
    const inHub = (dir: string, ...extra: string[]) => run(hubWhere(dir, ...extra));

    it("backs up the spoke's workloads, owned by the Application deploying there, named after the Secret's cluster", async () => {
      const result = await inHub('hub-handoff', '--argocd-cluster-secret', 'spoke-cluster');
      assert.equal(result.code, 0, result.stderr);
      assert.doesNotMatch(result.stderr, /forbidden/i, 'the hub and spoke accounts need nothing more than their RBAC');
      const by = recordsIn(join(work, 'hub-handoff'));
      assert.deepEqual([...by.keys()].sort(), ['charts-web', 'rogue', 'web'], "the spoke's workloads (the hub has none)");
      assert.equal(by.get('web')?.owner?.name, 'east-shop');
      assert.equal(by.get('web')?.owner?.notVerified, undefined);
      assert.equal(by.get('web')?.images[0]?.backup.startsWith(`${backup.address}/backup/`), true);
      const spokeUid = (await spokeKc.makeApiClient(CoreV1Api).readNamespace({ name: 'kube-system' })).metadata!.uid;
      assert.deepEqual(by.get('web')?.cluster, { name: 'east', uid: spokeUid });
      assert.match(by.get('rogue')?.owner?.notVerified ?? '', /^Application argocd\/west-shop deploys to another cluster than this one/);
      assert.match(by.get('charts-web')?.owner?.notVerified ?? '', /Application argocd\/hub-platform deploys to another cluster than this one/);
      assert.ok(!`${result.stdout}${result.stderr}`.includes(spokeToken), "the spoke's token is in no output");
    });

    it("checks pull access in the spoke, where the Pods run: BACKUP_PULL=secret:NAME is found in the spoke's service account", async () => {
      // The spoke's service account lists the pull Secret; the hub has no such account (and the copier may read none there).
      await spokeKc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
        namespace: 'shop',
        body: { metadata: { name: 'default' }, imagePullSecrets: [{ name: 'backup-pull' }] },
      });
      const result = await inHub('hub-pull', '--argocd-cluster-secret', 'spoke-cluster', '--backup-pull', 'secret:backup-pull');
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(recordsIn(join(work, 'hub-pull')).get('web')?.pull, { via: 'secret', secret: 'backup-pull', listedBy: 'service-account' });
    });

    it("the hub installation's rewriter opens the pull request against the Application's repository, its row naming the spoke", async () => {
      const secrets = join(work, 'hub-secrets');
      execFileSync('mkdir', ['-m', '700', '-p', secrets]);
      writeFileSync(join(secrets, 'git-password'), gitea.password, { mode: 0o600 });
      writeFileSync(join(secrets, 'forge-token'), gitea.token, { mode: 0o600 });
      const result = await new Promise<{ code: number; stdout: string; stderr: string }>((done) =>
        execFile(
          process.execPath,
          [
            CLI,
            'rewriter',
            '--once',
            '--handoff-dir',
            join(work, 'hub-handoff'),
            '--cache-dir',
            join(work, 'hub-cache'),
            '--git-mode',
            'pr',
            '--git-username',
            gitea.user,
            '--git-password-file',
            join(secrets, 'git-password'),
            '--forge-token-file',
            join(secrets, 'forge-token'),
            '--credentials-for',
            `${gitea.url}/`,
            '--health-address',
            '',
          ],
          { timeout: 120_000 },
          (error, stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
        ),
      );
      assert.match(result.stdout, /pushed/, result.stderr);
      const pulls = (await gitea.api('GET', `/repos/${gitea.user}/apps/pulls?state=all`)) as Array<{ body: string; head: { ref: string } }>;
      assert.equal(pulls.length, 1, 'one pull request: the spoke workload its Application owns (the others are refused, with the reason)');
      const rows = rowsFromDescription(pulls[0]!.body);
      assert.deepEqual(
        rows.map((r) => [r.cluster, r.workload, r.from]),
        [['east', 'shop/Deployment/web', `${source.address}/team/web:1.0`]],
      );
      assert.match(
        await gitea.text(`/repos/${gitea.user}/apps/raw/clusters/east/web.yaml?ref=${encodeURIComponent(pulls[0]!.head.ref)}`),
        new RegExp(`image: ${backup.address}/backup/`),
      );
    });

    it("refuses, with the reason, a Secret it may not read, and a spoke copier's flags beside it", async () => {
      const forbidden = await inHub('hub-refused', '--argocd-cluster-secret', 'west');
      assert.notEqual(forbidden.code, 0);
      assert.match(forbidden.stderr, /cannot read the Argo CD cluster Secret argocd\/west \(the copier needs get on that Secret alone/);
      const mixed = await inHub('hub-refused', '--argocd-cluster-secret', 'spoke-cluster', '--argocd-destination', 'east');
      assert.notEqual(mixed.code, 0);
      assert.match(mixed.stderr, /--argocd-cluster-secret runs the copier in the hub/);
    });

    it('holds its Lease in the hub, and the spoke sees none', async () => {
      const child = spawn(process.execPath, copierArgs(hubWhere('hub-lease', '--argocd-cluster-secret', 'spoke-cluster', '--health-address', '')), {
        stdio: 'ignore',
      });
      try {
        const leases = hubKc.makeApiClient(CoordinationV1Api);
        let holder: string | undefined;
        for (let i = 0; i < 120 && !holder; i++) {
          holder = await leases
            .readNamespacedLease({ namespace: 'image-clone-namespace', name: 'image-clone-copier-spoke-cluster' })
            .then((lease) => lease.spec?.holderIdentity ?? undefined)
            .catch(() => undefined);
          if (!holder) await new Promise((r) => setTimeout(r, 250));
        }
        assert.ok(holder, 'the copier took its Lease in the hub');
        const inSpoke = await spokeKc.makeApiClient(CoordinationV1Api).listLeaseForAllNamespaces();
        assert.deepEqual(
          inSpoke.items.filter((l) => l.metadata?.name?.startsWith('image-clone-copier')),
          [],
        );
      } finally {
        child.kill('SIGTERM');
      }
    });

    it("each account may do only what its RBAC lists: the spoke's reads and creates Events, the hub's gets Applications and one Secret", async () => {
      const expectations: Array<[KubeConfig, string, boolean, string, string, string, string?, string?]> = [
        [spokeKc, SPOKE_ACCOUNT, true, 'list', 'apps', 'deployments'],
        [spokeKc, SPOKE_ACCOUNT, true, 'watch', '', 'namespaces'],
        [spokeKc, SPOKE_ACCOUNT, true, 'create', '', 'events', 'shop'],
        [spokeKc, SPOKE_ACCOUNT, true, 'get', '', 'serviceaccounts', 'shop'],
        [spokeKc, SPOKE_ACCOUNT, false, 'get', '', 'secrets', 'shop'],
        [spokeKc, SPOKE_ACCOUNT, false, 'list', '', 'secrets'],
        [spokeKc, SPOKE_ACCOUNT, false, 'patch', 'apps', 'deployments', 'shop'],
        [spokeKc, SPOKE_ACCOUNT, false, 'create', 'coordination.k8s.io', 'leases', 'kube-system'],
        [spokeKc, SPOKE_ACCOUNT, false, 'create', '', 'pods', 'shop'],
        [hubKc, HUB_ACCOUNT, true, 'get', 'argoproj.io', 'applications', 'argocd'],
        [hubKc, HUB_ACCOUNT, true, 'get', '', 'secrets', 'argocd', 'spoke-cluster'],
        [hubKc, HUB_ACCOUNT, true, 'update', 'coordination.k8s.io', 'leases', 'image-clone-namespace'],
        [hubKc, HUB_ACCOUNT, false, 'get', '', 'secrets', 'argocd', 'west'],
        [hubKc, HUB_ACCOUNT, false, 'list', '', 'secrets', 'argocd'],
        [hubKc, HUB_ACCOUNT, false, 'list', 'argoproj.io', 'applications', 'argocd'],
        [hubKc, HUB_ACCOUNT, false, 'list', 'apps', 'deployments'],
        [hubKc, HUB_ACCOUNT, false, 'list', '', 'namespaces'],
      ];
      for (const [kc, account, allowed, verb, group, resource, namespace, name] of expectations)
        assert.equal(
          await can(kc, account, verb, group, resource, namespace, name),
          allowed,
          `${account} ${allowed ? 'may' : 'may not'} ${verb} ${group || 'core'}/${resource}${name ? ` ${name}` : ''}${namespace ? ` in ${namespace}` : ' cluster-wide'}`,
        );
    });

    it("with the direct-patch fallback, the rewriter given a Secret of its own patches the spoke's unmanaged workload", async () => {
      // A workload no GitOps tool manages, in the spoke; an account of the rewriter's own there, which may patch in
      // that namespace alone (the copier's account gets no write verb), and its cluster Secret in the hub.
      await seedImage({ url: source.url }, { repository: 'team/plain', tag: '1.0', format: 'oci', layers: [{ seed: 'hub-plain', size: 8 * 1024 }] });
      const apps = spokeKc.makeApiClient(AppsV1Api);
      await apps.createNamespacedDeployment({
        namespace: 'shop',
        body: deploymentObject({ namespace: 'shop', name: 'plain' }, `${source.address}/team/plain:1.0`),
      });
      await grant(spokeKc, 'shop', 'image-clone-patch', [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['patch'] }], {
        kind: 'ServiceAccount',
        name: 'image-clone-hub-patch',
        namespace: 'kube-system',
      });
      await spokeKc
        .makeApiClient(CoreV1Api)
        .createNamespacedServiceAccount({ namespace: 'kube-system', body: { metadata: { name: 'image-clone-hub-patch' } } });
      const patchToken = await issueToken(spokeKc, 'kube-system', 'image-clone-hub-patch');
      const hubCore = hubKc.makeApiClient(CoreV1Api);
      await hubCore.createNamespacedSecret({
        namespace: 'argocd',
        body: {
          metadata: { name: 'spoke-cluster-patch' },
          stringData: {
            name: 'east',
            server: spoke.server,
            config: JSON.stringify({ bearerToken: patchToken, tlsClientConfig: { caData: readFileSync(spoke.caFile).toString('base64') } }),
          },
        },
      });
      await grant(
        hubKc,
        'argocd',
        'image-clone-rewriter-hub',
        [{ apiGroups: [''], resources: ['secrets'], resourceNames: ['spoke-cluster-patch'], verbs: ['get'] }],
        { kind: 'ServiceAccount', name: 'image-clone-controller', namespace: 'image-clone-namespace' },
      );
      assert.equal(await can(spokeKc, SPOKE_ACCOUNT, 'patch', 'apps', 'deployments', 'shop'), false, "the copier's account stays read-only");
      const copied = await inHub('hub-patch', '--argocd-cluster-secret', 'spoke-cluster');
      assert.equal(copied.code, 0, copied.stderr);
      const backupOf = recordsIn(join(work, 'hub-patch')).get('plain')?.images[0]?.backup;
      assert.ok(backupOf);
      const rewritten = await new Promise<{ code: number; stderr: string }>((done) =>
        execFile(
          process.execPath,
          [
            CLI,
            'rewriter',
            '--once',
            '--handoff-dir',
            join(work, 'hub-patch'),
            '--cache-dir',
            join(work, 'hub-patch-cache'),
            '--direct-patch',
            'unmanaged',
            '--kubeconfig',
            hubAccount,
            '--argocd-cluster-secret',
            'spoke-cluster-patch',
            '--health-address',
            '',
          ],
          { timeout: 120_000 },
          (error, _stdout, stderr) => done({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stderr }),
        ),
      );
      assert.match(rewritten.stderr, /workload patched directly/);
      assert.ok(!rewritten.stderr.includes(patchToken), "the spoke's token is in no output");
      const patched = await apps.readNamespacedDeployment({ namespace: 'shop', name: 'plain' });
      assert.match(patched.spec?.template.spec?.containers[0]?.image ?? '', new RegExp(`^${backup.address}/backup/`), 'moved onto its backup, in the spoke');
    });

    it("/healthz fails when the spoke stops taking the Secret's token (an expired or revoked one), so a restart reads the Secret again", async () => {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        copierArgs(
          hubWhere('hub-health', '--argocd-cluster-secret', 'spoke-cluster', '--health-address', `127.0.0.1:${port}`, '--lease-name', 'image-clone-health'),
        ),
        { stdio: 'ignore' },
      );
      const health = async () => {
        const answer = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => undefined);
        return answer ? { status: answer.status, text: await answer.text() } : undefined;
      };
      const until = async (done: (h: Awaited<ReturnType<typeof health>>) => boolean, ms: number) => {
        const deadline = Date.now() + ms;
        let seen = await health();
        while (!done(seen) && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 500));
          seen = await health();
        }
        return seen;
      };
      try {
        assert.equal((await until((h) => h?.status === 200, 30_000))?.status, 200);
        // The token revoked: its service account deleted; every watch cut, so the informers list again.
        await spokeKc.makeApiClient(CoreV1Api).deleteNamespacedServiceAccount({ namespace: 'kube-system', name: 'image-clone-hub' });
        await spoke.restartApiServer();
        const failed = await until((h) => h?.status === 503, 90_000);
        assert.equal(failed?.status, 503, failed?.text);
        assert.match(failed!.text, /refuses the copier's credentials \(401\)/);
      } finally {
        child.kill('SIGTERM');
      }
    });
  });
});
