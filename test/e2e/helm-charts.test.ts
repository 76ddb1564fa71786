/**
 * Third-party charts end to end: Flux HelmReleases whose charts come from a chart repository (a
 * local HTTP one of ours serving what the real `helm package` and `helm repo index` made) and from
 * an OCI registry (a real docker-registry, the chart pushed by the real `helm push`), declared in a
 * Git repository on a real Gitea that a Kustomization applies; the workloads rendered by real Helm
 * and created on a real kube-apiserver with the labels helm-controller leaves. The copier backs the
 * images up and follows each chain; the rewriter edits the HelmReleases, proves each edit by
 * rendering, and opens one pull request. The test then renders the pull request's branch itself,
 * with Helm fetching the charts its own way, and checks every workload runs its backup.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig } from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { BIN_DIR, HELM_BIN } from '../../devenv/cache.ts';
import { startChartRepository, type ChartRepository } from '../../devenv/chart-repository.ts';
import { startCluster, type Cluster } from '../../devenv/cluster.ts';
import { startGitea, type Gitea } from '../../devenv/gitea.ts';
import { installGitOpsCrds, recordManaged } from '../../devenv/gitops-crds.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { Copier } from '../../src/copier/copier.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { parseBackupTarget } from '../../src/image/backup.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Rewriter, type RewriteOutcome } from '../../src/rewriter/rewriter.ts';
import { exhibit, plantCanary } from '../support/canaries.ts';
import { packageFixtureChart } from '../support/fixture-charts.ts';

const HELM = HELM_BIN;
const KUSTOMIZE = join(BIN_DIR, 'kustomize');

let work: string;
let cluster: Cluster;
let source: RegistryServer;
let backup: RegistryServer;
let gitea: Gitea;
let charts: ChartRepository;
let kc: KubeConfig;
let repoURL: string;
let platformURL: string;
const logLines: string[] = [];

const helmEnv = () => ({
  ...process.env,
  HELM_CACHE_HOME: join(work, 'helm/cache'),
  HELM_CONFIG_HOME: join(work, 'helm/config'),
  HELM_DATA_HOME: join(work, 'helm/data'),
});
const helm = (...args: string[]) => execFileSync(HELM, args, { encoding: 'utf8', env: helmEnv() });
/** Helm while the chart repository (served by this process) must answer it: asynchronously. */
const helmAsync = async (...args: string[]) =>
  (await promisify(execFile)(HELM, args, { encoding: 'utf8', env: helmEnv(), maxBuffer: 64 * 1024 * 1024 })).stdout;

function writeTree(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(root, path, '..'), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

/** Two charts written by hand in two values conventions (only the key shapes are taken from published charts). */
function writeCharts(s: string): void {
  writeTree(join(work, 'charts'), {
    // podinfo's convention: image.repository + image.tag, the tag defaulting to the appVersion.
    'podinfo/Chart.yaml': 'apiVersion: v2\nname: podinfo\nversion: 6.5.0\nappVersion: 6.5.0\n',
    'podinfo/values.yaml': `replicaCount: 1\nimage:\n  repository: ${s}/podinfo\n  tag: ""\n`,
    'podinfo/templates/deployment.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}',
      '  labels:',
      '    app.kubernetes.io/name: {{ .Chart.Name }}',
      'spec:',
      '  replicas: {{ .Values.replicaCount }}',
      '  selector:',
      '    matchLabels:',
      '      app: {{ .Release.Name }}',
      '  template:',
      '    metadata:',
      '      labels:',
      '        app: {{ .Release.Name }}',
      '    spec:',
      '      containers:',
      '        - name: podinfo',
      '          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
      '          ports:',
      '            - containerPort: 9898',
      '',
    ].join('\n'),
    'podinfo/templates/service.yaml':
      'apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  selector:\n    app: {{ .Release.Name }}\n  ports:\n    - port: 9898\n',
    // Bitnami's convention: image.registry / repository / tag / digest.
    'cache/Chart.yaml': 'apiVersion: v2\nname: cache\nversion: 1.2.0\nappVersion: "7.2"\n',
    'cache/values.yaml': 'image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: 7.2.4\n  digest: ""\n',
    'cache/templates/statefulset.yaml': [
      'apiVersion: apps/v1',
      'kind: StatefulSet',
      'metadata:',
      '  name: {{ .Release.Name }}',
      'spec:',
      '  serviceName: {{ .Release.Name }}',
      '  selector:',
      '    matchLabels:',
      '      app: {{ .Release.Name }}',
      '  template:',
      '    metadata:',
      '      labels:',
      '        app: {{ .Release.Name }}',
      '    spec:',
      '      containers:',
      '        - name: redis',
      '          image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}{{ if .Values.image.digest }}@{{ .Values.image.digest }}{{ else }}:{{ .Values.image.tag }}{{ end }}"',
      '',
    ].join('\n'),
  });
}

/**
 * The fixture charts of real charts' shapes (test/fixtures/charts/README.md), each installed under
 * a release name, with the images its workloads run and whether the chart reads a digest value.
 */
const SHAPES: ReadonlyArray<{ chart: string; version: string; release: string; images: ReadonlyArray<readonly [string, string]> }> = [
  { chart: 'constrained', version: '3.12.1', release: 'metrics', images: [['metrics/server', 'v0.7.2']] },
  { chart: 'generated', version: '2.0.0', release: 'gen', images: [['generated', '1.0']] },
  {
    chart: 'components',
    version: '1.14.0',
    release: 'cm',
    images: [
      ['jetstack/cm-controller', 'v1.14.0'],
      ['jetstack/cm-webhook', 'v1.14.0'],
    ],
  },
  { chart: 'ingress', version: '4.11.0', release: 'edge', images: [['ingress/controller', 'v1.11.0']] },
];
/** Each shape's package (.tgz), as `helm package` made it for this test's source registry. */
const shapePackages = new Map<string, string>();

const release = (name: string, spec: object, namespace = 'apps') =>
  stringify({ apiVersion: 'helm.toolkit.fluxcd.io/v2', kind: 'HelmRelease', metadata: { name, namespace }, spec });
const fromHelmRepository = {
  chart: { spec: { chart: 'podinfo', version: '>=6.0.0', sourceRef: { kind: 'HelmRepository', name: 'podinfo', namespace: 'flux-system' } } },
};

/** The repository as a platform team lays it out (Flux's kustomize-helm example: base releases, an overlay that patches them). */
function fleetFiles(s: string): Record<string, string> {
  return {
    'apps/base/podinfo/release.yaml': release('podinfo', { interval: '10m', ...fromHelmRepository, values: { replicaCount: 1 } }),
    'apps/base/podinfo/kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - release.yaml\n',
    'apps/base/cache/release.yaml': release('cache', {
      interval: '10m',
      chartRef: { kind: 'OCIRepository', name: 'cache-chart', namespace: 'flux-system' },
      values: { image: { registry: s, repository: 'cache', tag: '7.2' } },
    }),
    'apps/staging/kustomization.yaml':
      'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base/podinfo\n  - ../base/cache/release.yaml\n  - web.yaml\n  - tuned.yaml\n  - shapes.yaml\npatches:\n  - path: podinfo-values.yaml\n',
    // The fixture charts of real charts' shapes, installed with their defaults: moved by post-renderer entries.
    'apps/staging/shapes.yaml': SHAPES.map((x) =>
      release(x.release, {
        interval: '10m',
        chart: { spec: { chart: x.chart, version: x.version, sourceRef: { kind: 'HelmRepository', name: 'podinfo', namespace: 'flux-system' } } },
      }),
    ).join('---\n'),
    'apps/staging/podinfo-values.yaml':
      'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  values:\n    replicaCount: 2\n',
    // A release that already has a post-renderer (patches only).
    'apps/staging/web.yaml': release('web', {
      interval: '10m',
      ...fromHelmRepository,
      postRenderers: [{ kustomize: { patches: [{ target: { kind: 'Deployment' }, patch: '- op: add\n  path: /metadata/labels/team\n  value: web\n' }] } }],
    }),
    // A release whose values come from a ConfigMap the rewriter cannot read: its edit cannot be proved.
    'apps/staging/tuned.yaml': release('tuned', { interval: '10m', ...fromHelmRepository, valuesFrom: [{ kind: 'ConfigMap', name: 'tuned-values' }] }),
  };
}

const application = (name: string, source: object, annotations: Record<string, string> = {}) =>
  stringify({
    apiVersion: 'argoproj.io/v1alpha1',
    kind: 'Application',
    metadata: { name, namespace: 'argocd', ...(Object.keys(annotations).length ? { annotations } : {}) },
    spec: { project: 'default', source, destination: { server: 'https://kubernetes.default.svc', namespace: 'argo-apps' } },
  });
const chartSource = (chart: string, version: string, helm?: object) => ({ repoURL: charts.url, chart, targetRevision: version, ...(helm ? { helm } : {}) });

/** An app of apps two levels deep: root → apps (a directory of Applications) → three chart Applications, each overriding values its own way. */
function platformFiles(s: string): Record<string, string> {
  return {
    'root/apps.yaml': application('apps', { repoURL: platformURL, path: 'apps', targetRevision: 'main' }),
    'apps/podinfo.yaml': application('argo-podinfo', chartSource('podinfo', '6.5.0', { valuesObject: { replicaCount: 2 } })),
    'apps/cache.yaml': application(
      'argo-cache',
      chartSource('cache', '1.2.0', { releaseName: 'sessions', values: `image:\n  registry: ${s}\n  repository: cache\n  tag: "7.2"\n` }),
    ),
    'apps/web.yaml': application('argo-web', chartSource('podinfo', '6.5.0', { parameters: [{ name: 'replicaCount', value: '3' }] })),
    // Multi-source: the chart's values come from files in this repository (`$values/...`).
    'apps/multi.yaml': stringify({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'argo-multi', namespace: 'argocd' },
      spec: {
        project: 'default',
        sources: [
          { ...chartSource('podinfo', '6.5.0'), helm: { valueFiles: ['$values/envs/prod/podinfo.yaml'] } },
          { repoURL: platformURL, targetRevision: 'main', ref: 'values' },
        ],
        destination: { server: 'https://kubernetes.default.svc', namespace: 'argo-apps' },
      },
    }),
    // The shapes, each overriding values its own way.
    'apps/metrics.yaml': application('argo-metrics', chartSource('constrained', '3.12.1', { valuesObject: { podDisruptionBudget: { enabled: true } } })),
    'apps/gen.yaml': application('argo-gen', chartSource('generated', '2.0.0', { values: 'tls:\n  autoGenerated: true\n' })),
    'apps/cm.yaml': application('argo-cm', chartSource('components', '1.14.0', { parameters: [{ name: 'imageNamespace', value: 'jetstack' }] })),
    'apps/edge.yaml': application('argo-edge', chartSource('ingress', '4.11.0')),
    'envs/prod/podinfo.yaml': '# production\nreplicaCount: 2\n',
    'envs/staging/podinfo.yaml': '# staging\nreplicaCount: 1\n',
  };
}

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'image-clone-helm-'));
  [cluster, source, backup, gitea] = await Promise.all([
    startCluster({ dir: join(work, 'cluster') }),
    startRegistryServer(),
    startRegistryServer(),
    startGitea(join(work, 'gitea')),
  ]);
  plantCanary(gitea.token);
  plantCanary(gitea.password);
  kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  await installGitOpsCrds(kc);
  const s = source.address;
  const images: ReadonlyArray<readonly [string, string]> = [['podinfo', '6.5.0'], ['podinfo', '6.4.0'], ['cache', '7.2'], ...SHAPES.flatMap((x) => x.images)];
  for (const [repository, tag] of images) {
    await seedImage(
      { url: source.url },
      {
        repository,
        tag,
        format: 'oci',
        layers: [
          { seed: 'helm-base', size: 16 * 1024 },
          { seed: `${repository}:${tag}`, size: 1024 },
        ],
      },
    );
  }
  writeCharts(s);
  const packages = join(work, 'chart-repository');
  mkdirSync(packages);
  for (const x of SHAPES) shapePackages.set(x.release, packageFixtureChart(HELM, x.chart, s, packages));
  helm('package', join(work, 'charts/podinfo'), '--destination', packages);
  helm('package', join(work, 'charts/cache'), '--destination', packages);
  helm('package', join(work, 'charts/cache'), '--destination', join(work, 'oci'));
  charts = await startChartRepository(packages);
  helm('repo', 'index', packages, '--url', charts.url);
  helm('push', join(work, 'oci/cache-1.2.0.tgz'), `oci://${s}/charts`, '--plain-http');

  repoURL = await gitea.createRepository('fleet');
  for (const [path, text] of Object.entries(fleetFiles(s))) {
    await gitea.api('POST', `/repos/${gitea.user}/fleet/contents/${path}`, {
      content: Buffer.from(text).toString('base64'),
      message: `add ${path}`,
      branch: 'main',
    });
  }
  platformURL = await gitea.createRepository('platform');
  for (const [path, text] of Object.entries(platformFiles(s))) {
    await gitea.api('POST', `/repos/${gitea.user}/platform/contents/${path}`, {
      content: Buffer.from(text).toString('base64'),
      message: `add ${path}`,
      branch: 'main',
    });
  }
});

after(async () => {
  exhibit('e2e-helm-logs', logLines.join('\n'));
  exhibit('e2e-helm-pulls', JSON.stringify(await gitea?.api('GET', `/repos/${gitea.user}/fleet/pulls?state=all`).catch(() => [])));
  await Promise.all([cluster?.stop(), source?.stop(), backup?.stop(), gitea?.stop(), charts?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

/** The Flux objects as Flux leaves them, and each release's workloads as helm-controller renders and labels them. */
async function deployFlux(): Promise<void> {
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  for (const name of ['flux-system', 'apps']) await core.createNamespace({ body: { metadata: { name } } });
  const create = (group: string, version: string, plural: string, namespace: string, body: Record<string, unknown>) =>
    custom.createNamespacedCustomObject({ group, version, namespace, plural, body: { apiVersion: `${group}/${version}`, ...body } });
  const applied = (ks: string) => ({ 'kustomize.toolkit.fluxcd.io/name': ks, 'kustomize.toolkit.fluxcd.io/namespace': 'flux-system' });
  await create('source.toolkit.fluxcd.io', 'v1', 'gitrepositories', 'flux-system', {
    kind: 'GitRepository',
    metadata: { name: 'fleet' },
    spec: { url: repoURL, ref: { branch: 'main' } },
  });
  // What kustomize-controller lists it applied: the HelmReleases of the path (an owner is trusted only when it lists them).
  const releases = (...names: string[]) => ({
    inventory: { entries: names.map((n) => ({ id: `apps_${n}_helm.toolkit.fluxcd.io_HelmRelease`, v: 'v2' })) },
  });
  await create('kustomize.toolkit.fluxcd.io', 'v1', 'kustomizations', 'flux-system', {
    kind: 'Kustomization',
    metadata: { name: 'apps' },
    spec: { path: './apps/staging', prune: true, sourceRef: { kind: 'GitRepository', name: 'fleet' } },
    status: releases('podinfo', 'web', 'cache', 'tuned', ...SHAPES.map((x) => x.release)),
  });
  await create('kustomize.toolkit.fluxcd.io', 'v1', 'kustomizations', 'flux-system', {
    kind: 'Kustomization',
    metadata: { name: 'packaged' },
    spec: { path: './', sourceRef: { kind: 'OCIRepository', name: 'manifests' } },
    status: releases('packaged'),
  });
  await create('source.toolkit.fluxcd.io', 'v1', 'helmrepositories', 'flux-system', {
    kind: 'HelmRepository',
    metadata: { name: 'podinfo' },
    spec: { url: charts.url },
  });
  await create('source.toolkit.fluxcd.io', 'v1beta2', 'ocirepositories', 'flux-system', {
    kind: 'OCIRepository',
    metadata: { name: 'cache-chart' },
    spec: { url: `oci://${source.address}/charts/cache`, ref: { tag: '1.2.0' }, insecure: true },
  });
  const deployed = (version: string) => ({ history: [{ chartVersion: version, status: 'deployed' }] });
  // The releases as `kustomize build apps/staging` makes them, applied with the Kustomization's labels.
  const built = parseAllDocuments(
    execFileSync(KUSTOMIZE, ['build', '--load-restrictor', 'LoadRestrictionsNone', join(work, 'fleet-main', 'apps/staging')], { encoding: 'utf8' }),
  ).map((d) => d.toJS() as { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, unknown> });
  for (const hr of built.filter((d) => d.kind === 'HelmRelease')) {
    await create('helm.toolkit.fluxcd.io', 'v2', 'helmreleases', 'apps', {
      ...hr,
      metadata: { ...hr.metadata, labels: applied('apps') },
      status: deployed(hr.metadata.name === 'cache' ? '1.2.0' : (SHAPES.find((x) => x.release === hr.metadata.name)?.version ?? '6.5.0')),
    });
  }
  // Two releases no file in Git can move: applied by hand, and applied from an OCI artifact.
  await create('helm.toolkit.fluxcd.io', 'v2', 'helmreleases', 'apps', {
    kind: 'HelmRelease',
    metadata: { name: 'by-hand' },
    spec: fromHelmRepository,
    status: deployed('6.5.0'),
  });
  await create('helm.toolkit.fluxcd.io', 'v2', 'helmreleases', 'apps', {
    kind: 'HelmRelease',
    metadata: { name: 'packaged', labels: applied('packaged') },
    spec: fromHelmRepository,
    status: deployed('6.5.0'),
  });

  const workloads: Array<[string, string, string[]]> = [
    ['podinfo', join(work, 'charts/podinfo'), ['--set', 'replicaCount=2']],
    ['web', join(work, 'charts/podinfo'), []],
    ['cache', join(work, 'charts/cache'), ['--set', `image.registry=${source.address},image.repository=cache,image.tag=7.2`]],
    // tuned's ConfigMap sets the tag: the cluster runs 6.4.0, which the release's own values do not say.
    ['tuned', join(work, 'charts/podinfo'), ['--set', 'image.tag=6.4.0']],
    ['by-hand', join(work, 'charts/podinfo'), []],
    ['packaged', join(work, 'charts/podinfo'), []],
    // Rendered as helm-controller renders them for this cluster: its version (the charts' kubeVersion constraints hold).
    ...SHAPES.map((x): [string, string, string[]] => [x.release, shapePackages.get(x.release)!, ['--kube-version', 'v1.34.4']]),
  ];
  for (const [name, chart, args] of workloads) {
    // Read as the API server reads what helm-controller applies: YAML 1.1 (`0755` is octal).
    for (const doc of parseAllDocuments(helm('template', name, chart, '--namespace', 'apps', '--skip-tests', ...args), { version: '1.1' })) {
      const body = doc.toJS() as { kind: string; metadata: { labels?: Record<string, string> } } | null;
      if (!body) continue;
      body.metadata.labels = { ...body.metadata.labels, 'helm.toolkit.fluxcd.io/name': name, 'helm.toolkit.fluxcd.io/namespace': 'apps' };
      if (body.kind === 'Deployment') await apps.createNamespacedDeployment({ namespace: 'apps', body });
      if (body.kind === 'StatefulSet') await apps.createNamespacedStatefulSet({ namespace: 'apps', body });
    }
  }
}

function clone(branch: string, into: string, url = repoURL): string {
  const dir = join(work, into);
  const auth = `Authorization: Basic ${Buffer.from(`${gitea.user}:${gitea.password}`).toString('base64')}`;
  execFileSync('git', ['-c', `http.extraHeader=${auth}`, 'clone', '--quiet', '--branch', branch, url, dir], { stdio: 'ignore' });
  return dir;
}

/** Renders a release of a branch as Flux would, with Helm fetching the chart itself: the test's own oracle. */
async function renderAsFlux(dir: string, name: string): Promise<string> {
  const hr = parseAllDocuments(execFileSync(KUSTOMIZE, ['build', '--load-restrictor', 'LoadRestrictionsNone', join(dir, 'apps/staging')], { encoding: 'utf8' }))
    .map(
      (d) =>
        d.toJS() as {
          kind: string;
          metadata: { name: string };
          spec: { values?: object; postRenderers?: Array<{ kustomize?: { images?: object[]; patches?: object[] } }> };
        },
    )
    .find((d) => d.kind === 'HelmRelease' && d.metadata.name === name)!;
  const out = mkdtempSync(join(work, `render-${name}-`));
  writeFileSync(join(out, 'values.json'), JSON.stringify(hr.spec.values ?? {}));
  const shape = SHAPES.find((x) => x.release === name);
  const chart =
    name === 'cache'
      ? [`oci://${source.address}/charts/cache`, '--version', '1.2.0', '--plain-http']
      : [shape?.chart ?? 'podinfo', '--repo', charts.url, '--version', shape?.version ?? '6.5.0'];
  let rendered = await helmAsync(
    'template',
    name,
    ...chart,
    '--namespace',
    'apps',
    '--values',
    join(out, 'values.json'),
    '--kube-version',
    'v1.34.4',
    '--skip-tests',
  );
  for (const renderer of hr.spec.postRenderers ?? []) {
    writeFileSync(join(out, 'all.yaml'), rendered);
    writeFileSync(
      join(out, 'kustomization.yaml'),
      stringify({
        resources: ['all.yaml'],
        ...(renderer.kustomize?.images ? { images: renderer.kustomize.images } : {}),
        ...(renderer.kustomize?.patches ? { patches: renderer.kustomize.patches } : {}),
      }),
    );
    rendered = execFileSync(KUSTOMIZE, ['build', out], { encoding: 'utf8' });
  }
  return rendered;
}

/** The copier as the CLI wires it, over one namespace; the nodes are trusted to pull the backups. */
const copierFor = (handoffDir: string, namespace: string) =>
  new Copier({
    kubeConfig: kc,
    backupTarget: parseBackupTarget(`${backup.address}/mirror`),
    handoffDir,
    controllerNamespace: 'image-clone-namespace',
    includeNamespaces: [namespace],
    excludeNamespaces: [],
    registry: { insecureRegistries: [source.address, backup.address], retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 } },
    logger: createLogger({ write: (line) => void logLines.push(line) }),
    backupPull: { via: 'node' },
  });

/** The rewriter in pr mode on the Gitea, proving its chart edits with the cached helm and kustomize. */
const rewriterFor = (handoffDir: string) =>
  new Rewriter({
    handoffDir,
    cacheDir: `${handoffDir}-cache`,
    mode: 'pr',
    author: { name: 'image-clone', email: 'bot@example.com' },
    logger: createLogger({ write: (line) => void logLines.push(line) }),
    gitCredentials: { username: gitea.user, password: gitea.password },
    // The lab's Gitea, chart repository and OCI registry are plain http: named by the operator.
    credentialScopes: [`${gitea.url}/`, `${charts.url}/`, `http://${source.address}/`],
    forge: { token: gitea.token },
    renderTools: { helm: HELM, kustomize: KUSTOMIZE },
  });

const imagesIn = (rendered: string) =>
  parseAllDocuments(rendered).flatMap((d) => {
    const o = d.toJS() as { kind: string; spec?: { template?: { spec?: { containers?: Array<{ image: string }> } } } };
    return (o.spec?.template?.spec?.containers ?? []).map((c) => `${o.kind}:${c.image}`);
  });

describe('Flux HelmReleases with charts from chart repositories', () => {
  it('moves each release onto its backups through one pull request, each edit proved by rendering; what cannot be followed says why', async () => {
    clone('main', 'fleet-main');
    await deployFlux();
    const handoff = join(work, 'handoff');
    await copierFor(handoff, 'apps').runOnce();
    const records = new Ledger(handoff).pending();
    const owners = Object.fromEntries(records.map((r) => [r.workload.name, r.owner]));
    assert.deepEqual(owners.podinfo?.declares, {
      kind: 'HelmRelease',
      namespace: 'apps',
      name: 'podinfo',
      chart: { repoURL: charts.url, name: 'podinfo', version: '6.5.0', releaseName: 'podinfo' },
    });
    assert.deepEqual(owners.cache?.declares?.chart, {
      repoURL: `oci://${source.address}/charts`,
      name: 'cache',
      version: '1.2.0',
      releaseName: 'cache',
      insecure: true,
    });
    assert.deepEqual(owners.podinfo?.sources, [{ repoURL, revision: 'main', path: 'apps/staging' }]);
    assert.match(owners['by-hand']?.unsupported ?? '', /HelmRelease apps\/by-hand takes its chart from a HelmRepository and was not applied from Git/);
    assert.match(
      owners.packaged?.unsupported ?? '',
      /Kustomization flux-system\/packaged takes its manifests from OCIRepository flux-system\/manifests, not from a Git repository/,
    );

    const rewriter = rewriterFor(handoff);
    const outcomes = await rewriter.processPending();
    const by = (result: RewriteOutcome['result']) => outcomes.filter((o) => o.result === result);
    assert.equal(by('pushed').length, 1, JSON.stringify(outcomes));
    assert.deepEqual(
      by('unsupported-owner')
        .map((o) => o.repoURL)
        .sort(),
      ['flux:HelmRelease/apps/by-hand', 'flux:HelmRelease/apps/packaged'],
    );
    // tuned: its edit is not proved (the render does not run what the cluster runs), so not proposed; it stays pending.
    const refused = by('failed');
    assert.equal(refused.length, 1);
    assert.match(
      refused[0]!.error ?? '',
      /the edit of HelmRelease apps\/tuned is not proved by rendering .*podinfo-6\.5\.0\.tgz: before the change, the chart renders Deployment\/tuned container podinfo with .*podinfo:6\.5\.0, not .*podinfo:6\.4\.0 .*valuesFrom/,
    );
    const ledger = new Ledger(handoff);
    assert.deepEqual(
      ledger.pending().map((r) => r.workload.name),
      ['tuned'],
    );

    const [pull] = (await gitea.api('GET', `/repos/${gitea.user}/fleet/pulls?state=open`)) as Array<{ number: number; body: string; head: { ref: string } }>;
    assert.ok(pull, 'a pull request was opened');
    const files = ((await gitea.api('GET', `/repos/${gitea.user}/fleet/pulls/${pull.number}/files`)) as Array<{ filename: string }>)
      .map((f) => f.filename)
      .sort();
    assert.deepEqual(files, ['apps/base/cache/release.yaml', 'apps/base/podinfo/release.yaml', 'apps/staging/shapes.yaml', 'apps/staging/web.yaml']);
    const diff = await gitea.text(`/repos/${gitea.user}/fleet/pulls/${pull.number}.diff`);
    const changed = diff.split('\n').filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
    const allowed = /^\+\s*(postRenderers:|- kustomize:|kustomize:|images:|- name: |newName: |digest: )|^[-+]\s*(registry|repository): /;
    assert.deepEqual(
      changed.filter((l) => !allowed.test(l)),
      [],
      `only post-renderer entries and image values change:\n${diff}`,
    );
    assert.ok(
      changed.some((l) => /^-\s*repository: cache$/.test(l)),
      'cache: its values held the image, so they are what changes',
    );
    assert.match(
      pull.body,
      /apps\/Deployment\/podinfo ← HelmRelease apps\/podinfo \(chart podinfo from HelmRepository flux-system\/podinfo\) ← Kustomization flux-system\/apps \(GitRepository flux-system\/fleet, path apps\/staging\); changed in `apps\/base\/podinfo\/release\.yaml`/,
    );
    assert.match(pull.body, /each HelmRelease change was rendered with Helm before and after/);
    assert.match(pull.body, /apps\/StatefulSet\/cache ← HelmRelease apps\/cache \(chart from OCIRepository flux-system\/cache-chart\)/);
    // The generated chart: its certificate, password and their checksum vary on every render, and the PR says the proof left them out.
    assert.match(
      pull.body,
      /apps\/Deployment\/gen ← HelmRelease apps\/gen .*left out of the render comparison because it varies on every render of the unchanged chart: .*`Secret\/gen-tls data\.password`/,
    );

    // The oracle: the branch rendered as Flux would, charts fetched by Helm itself.
    const branch = clone(pull.head.ref, 'fleet-pr');
    const mirror = `${backup.address}/mirror/${source.address.replace(':', '_')}`;
    const podinfoDigest = await manifestDigestAt({ url: source.url }, 'podinfo', '6.5.0');
    const cacheDigest = await manifestDigestAt({ url: source.url }, 'cache', '7.2');
    assert.deepEqual(imagesIn(await renderAsFlux(branch, 'podinfo')), [`Deployment:${mirror}/podinfo@${podinfoDigest}`]);
    assert.deepEqual(imagesIn(await renderAsFlux(branch, 'web')), [`Deployment:${mirror}/podinfo@${podinfoDigest}`]);
    assert.deepEqual(imagesIn(await renderAsFlux(branch, 'cache')), [`StatefulSet:${mirror}/cache:7.2`]);
    // Every shape's workloads run their backups, pinned by digest (the post-renderer's images entries);
    // the ingress chart's hook Job, which no workload record names, keeps its image.
    for (const x of SHAPES) {
      const want = await Promise.all(
        x.images.map(async ([repository, tag]) => `Deployment:${mirror}/${repository}@${await manifestDigestAt({ url: source.url }, repository, tag)}`),
      );
      if (x.chart === 'ingress') want.push(`Job:${source.address}/ingress/certgen:v1.4.0`);
      assert.deepEqual(imagesIn(await renderAsFlux(branch, x.release)).sort(), want.sort(), x.chart);
    }
    assert.equal(
      await manifestDigestAt({ url: backup.url }, `mirror/${source.address.replace(':', '_')}/cache`, '7.2'),
      cacheDigest,
      'the backup tag is the same image',
    );
    // And the rest of each render is unchanged, the web release's own post-renderer patch included.
    const main = join(work, 'fleet-main');
    for (const name of ['podinfo', 'web', 'cache', 'metrics', 'cm', 'edge']) {
      // As objects, read as Kubernetes reads them (a post-renderer reformats and reorders), every `image:` blanked.
      const objects = (text: string) =>
        parseAllDocuments(text.replace(/image: .*/g, 'image: X'), { version: '1.1' })
          .map((d) => d.toJS() as { kind: string; metadata: { name: string } })
          .sort((a, b) => `${a.kind}/${a.metadata.name}`.localeCompare(`${b.kind}/${b.metadata.name}`));
      assert.deepEqual(objects(await renderAsFlux(branch, name)), objects(await renderAsFlux(main, name)), `${name} renders the same but for images`);
    }
    assert.match(await renderAsFlux(branch, 'web'), /team: web/);

    // Said on the workloads too, and counted.
    const events = await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: 'apps' });
    const notFollowed = events.items
      .filter((e) => e.reason === 'OwnerNotFollowed')
      .map((e) => e.involvedObject.name)
      .sort();
    assert.deepEqual(notFollowed, ['by-hand', 'packaged']);
    assert.match(rewriter.metrics.render(), /image_clone_rewrites_total\{result="unsupported-owner"\} 2/);
    assert.match(rewriter.metrics.render(), /image_clone_render_proofs_total\{result="proved"\} 8/);
    assert.match(rewriter.metrics.render(), /image_clone_not_proposed_total\{reason="not-proved"\} 1/);
    // The refusal is kept beside its record, and the copier's next pass says it on the workload.
    const tunedRecord = ledger.pending()[0]!;
    assert.match(ledger.refusal(tunedRecord.id) ?? '', /not proved by rendering .* valuesFrom/);
    assert.deepEqual(ledger.capabilities()?.kubeVersion, 'v1.34.4', 'the copier left the cluster version for the proofs');
    assert.ok(ledger.capabilities()?.apiVersions.includes('helm.toolkit.fluxcd.io/v2/HelmRelease'));
    await copierFor(handoff, 'apps').runOnce();
    const notProposed = (await kc.makeApiClient(CoreV1Api).listNamespacedEvent({ namespace: 'apps' })).items.filter((e) => e.reason === 'NotProposed');
    assert.deepEqual(
      notProposed.map((e) => e.involvedObject.name),
      ['tuned'],
    );
    assert.match(notProposed[0]!.message ?? '', /^backed up, but the change is not proposed: the edit of HelmRelease apps\/tuned is not proved by rendering/);
    assert.match(rewriter.metrics.render(), /image_clone_render_proofs_total\{result="not-proved"\} 1/);

    // Run again: nothing new is proposed, the unsupported ones are not retried.
    const again = await rewriter.processPending();
    assert.deepEqual(
      again.map((o) => o.result),
      ['failed'],
      'only tuned, still not proved',
    );
    assert.equal(readdirSync(handoff).filter((f) => f.endsWith('.done')).length, 10);
  });

  it('Argo CD: moves chart Applications of an app of apps through values overrides whose keys come from the charts, proved by rendering', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const apps = kc.makeApiClient(AppsV1Api);
    const custom = kc.makeApiClient(CustomObjectsApi);
    for (const name of ['argocd', 'argo-apps']) await core.createNamespace({ body: { metadata: { name } } });
    const main = clone('main', 'platform-main', platformURL);
    const tracked = (parent: string, kind: string, namespace: string, name: string) => ({
      'argocd.argoproj.io/tracking-id': `${parent}:${kind === 'Application' ? 'argoproj.io' : 'apps'}/${kind}:${namespace}/${name}`,
    });
    const create = (body: Record<string, unknown>) =>
      custom.createNamespacedCustomObject({ group: 'argoproj.io', version: 'v1alpha1', namespace: 'argocd', plural: 'applications', body });
    // The Applications as Argo CD leaves them: each child tracked by the one that applied it.
    type HelmSpec = {
      releaseName?: string;
      values?: string;
      valuesObject?: object;
      parameters?: Array<{ name: string; value: string }>;
      valueFiles?: string[];
    };
    type App = {
      metadata: { name: string };
      spec: {
        source?: { chart?: string; targetRevision?: string; helm?: HelmSpec };
        sources?: Array<{ chart?: string; targetRevision?: string; helm?: HelmSpec }>;
      };
    };
    const fromFile = (path: string) => parseAllDocuments(readFileSync(join(main, path), 'utf8'))[0]!.toJS() as App;
    await create({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'root' },
      spec: {
        source: { repoURL: platformURL, path: 'root', targetRevision: 'main' },
        destination: { server: 'https://kubernetes.default.svc', namespace: 'argocd' },
      },
      // What Argo CD lists after syncing each level: the child Applications, then (below) the workloads.
      status: { resources: [{ group: 'argoproj.io', version: 'v1alpha1', kind: 'Application', namespace: 'argocd', name: 'apps' }] },
    });
    const appsApp = fromFile('root/apps.yaml');
    const children = ['podinfo', 'cache', 'web', 'multi', 'metrics', 'gen', 'cm', 'edge'].map((f) => fromFile(`apps/${f}.yaml`));
    await create({
      ...appsApp,
      metadata: { ...appsApp.metadata, annotations: tracked('root', 'Application', 'argocd', 'apps') },
      status: {
        resources: children.map((c) => ({ group: 'argoproj.io', version: 'v1alpha1', kind: 'Application', namespace: 'argocd', name: c.metadata.name })),
      },
    });
    for (const child of children)
      await create({ ...child, metadata: { ...child.metadata, annotations: tracked('apps', 'Application', 'argocd', child.metadata.name) } });
    // Two that cannot be followed: one generated by an ApplicationSet, one applied by hand.
    await create({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: {
        name: 'generated',
        ownerReferences: [{ apiVersion: 'argoproj.io/v1alpha1', kind: 'ApplicationSet', name: 'clusters', uid: '3c7e1a2b-0000-4000-8000-000000000001' }],
      },
      spec: { source: chartSource('podinfo', '6.5.0'), destination: { server: 'https://kubernetes.default.svc', namespace: 'argo-apps' } },
    });
    await create({
      apiVersion: 'argoproj.io/v1alpha1',
      kind: 'Application',
      metadata: { name: 'handmade' },
      spec: { source: chartSource('podinfo', '6.5.0'), destination: { server: 'https://kubernetes.default.svc', namespace: 'argo-apps' } },
    });

    // Each chart rendered as Argo CD renders it, its workloads tracked to their Application.
    const argoArgs = async (helmSpec: HelmSpec | undefined, dir: string, tree: string) => {
      const args: string[] = [];
      for (const f of helmSpec?.valueFiles ?? []) args.push('--values', join(tree, f.replace(/^\$values\//, '')));
      if (helmSpec?.values) {
        writeFileSync(join(dir, 'values.yaml'), helmSpec.values);
        args.push('--values', join(dir, 'values.yaml'));
      }
      if (helmSpec?.valuesObject) {
        writeFileSync(join(dir, 'values-object.json'), JSON.stringify(helmSpec.valuesObject));
        args.push('--values', join(dir, 'values-object.json'));
      }
      for (const p of helmSpec?.parameters ?? []) args.push('--set', `${p.name}=${p.value}`);
      return args;
    };
    /** Renders an Application as Argo CD does, its $values files read from `tree` (a checkout of this repository). */
    const renderAsArgo = async (app: App, tree = main) => {
      const dir = mkdtempSync(join(work, `argo-${app.metadata.name}-`));
      const { chart, targetRevision, helm: helmSpec } = app.spec.source ?? app.spec.sources!.find((x) => x.chart)!;
      return helmAsync(
        'template',
        helmSpec?.releaseName ?? app.metadata.name,
        chart!,
        '--repo',
        charts.url,
        '--version',
        targetRevision!,
        '--namespace',
        'argo-apps',
        // As Argo CD's repo server renders for this cluster.
        '--kube-version',
        'v1.34.4',
        '--skip-tests',
        ...(await argoArgs(helmSpec, dir, tree)),
      );
    };
    const handmade: App = { metadata: { name: 'handmade' }, spec: { source: { chart: 'podinfo', targetRevision: '6.5.0' } } };
    const generated: App = { metadata: { name: 'generated' }, spec: { source: { chart: 'podinfo', targetRevision: '6.5.0' } } };
    for (const app of [...children, handmade, generated]) {
      for (const doc of parseAllDocuments(await renderAsArgo(app), { version: '1.1' })) {
        const body = doc.toJS() as { kind: string; metadata: { name: string; annotations?: Record<string, string> } } | null;
        if (!body) continue;
        body.metadata.annotations = { ...body.metadata.annotations, ...tracked(app.metadata.name, body.kind, 'argo-apps', body.metadata.name) };
        if (body.kind === 'Deployment') await apps.createNamespacedDeployment({ namespace: 'argo-apps', body });
        if (body.kind === 'StatefulSet') await apps.createNamespacedStatefulSet({ namespace: 'argo-apps', body });
        if (body.kind === 'Deployment' || body.kind === 'StatefulSet')
          await recordManaged(kc, 'Application', 'argocd', app.metadata.name, [
            { group: 'apps', kind: body.kind, namespace: 'argo-apps', name: body.metadata.name },
          ]);
      }
    }

    const handoff = join(work, 'handoff-argo');
    await copierFor(handoff, 'argo-apps').runOnce();
    const owners = Object.fromEntries(new Ledger(handoff).pending().map((r) => [r.workload.name, r.owner]));
    assert.deepEqual(owners.sessions?.declares, {
      kind: 'Application',
      namespace: 'argocd',
      name: 'argo-cache',
      targetNamespace: 'argo-apps',
      chart: { repoURL: charts.url, name: 'cache', version: '1.2.0', releaseName: 'sessions' },
    });
    assert.deepEqual(owners['argo-podinfo']?.sources, [{ repoURL: platformURL, path: 'apps', revision: 'main' }]);
    assert.match(owners.generated?.unsupported ?? '', /generated by ApplicationSet clusters/);
    assert.match(owners.handmade?.unsupported ?? '', /is not declared in Git by a parent Application/);

    const rewriter = rewriterFor(handoff);
    const outcomes = await rewriter.processPending();
    assert.deepEqual(outcomes.map((o) => o.result).sort(), ['pushed', 'unsupported-owner', 'unsupported-owner'], JSON.stringify(outcomes));
    assert.deepEqual(owners['argo-multi']?.declares?.valueFiles, ['envs/prod/podinfo.yaml']);
    const [pull] = (await gitea.api('GET', `/repos/${gitea.user}/platform/pulls?state=open`)) as Array<{ number: number; body: string; head: { ref: string } }>;
    assert.ok(pull);
    const diff = await gitea.text(`/repos/${gitea.user}/platform/pulls/${pull.number}.diff`);
    const changed = diff.split('\n').filter((l) => /^[-+]/.test(l) && !/^(---|\+\+\+) /.test(l));
    const allowed =
      /^\+\s*(helm:|valuesObject:|image:|registry: |repository: |digest: |tag: |global:|controller:|security:|allowInsecureImages: true|- name: (webhook\.)?image\.(repository|tag)|value: )|^-\s*(registry|repository): /;
    const files = ((await gitea.api('GET', `/repos/${gitea.user}/platform/pulls/${pull.number}/files`)) as Array<{ filename: string }>)
      .map((f) => f.filename)
      .sort();
    assert.deepEqual(
      files,
      [
        'apps/cache.yaml',
        'apps/cm.yaml',
        'apps/edge.yaml',
        'apps/gen.yaml',
        'apps/metrics.yaml',
        'apps/podinfo.yaml',
        'apps/web.yaml',
        'envs/prod/podinfo.yaml',
      ],
      'the multi-source Application: its production value file, not staging, not the Application',
    );
    assert.deepEqual(
      changed.filter((l) => !allowed.test(l)),
      [],
      `only image values are added or changed:\n${diff}`,
    );
    assert.match(
      pull.body,
      // URLs from the cluster are written as code spans (never links).
      /argo-apps\/Deployment\/argo-podinfo ← Application argocd\/argo-podinfo \(chart podinfo from `http:\/\/127\.0\.0\.1:\d+`\) ← Application argocd\/apps \(`.*platform\.git`, path apps\)/,
    );

    // The oracle: the branch's Applications rendered as Argo CD renders them, by Helm itself.
    const branch = clone(pull.head.ref, 'platform-pr', platformURL);
    const mirror = `${backup.address}/mirror/${source.address.replace(':', '_')}`;
    const podinfoDigest = await manifestDigestAt({ url: source.url }, 'podinfo', '6.5.0');
    const rendered = async (file: string) =>
      imagesIn(await renderAsArgo(parseAllDocuments(readFileSync(join(branch, file), 'utf8'))[0]!.toJS() as App, branch));
    assert.deepEqual(await rendered('apps/multi.yaml'), [`Deployment:${mirror}/podinfo:6.5.0`]);
    assert.deepEqual(await rendered('apps/podinfo.yaml'), [`Deployment:${mirror}/podinfo:6.5.0`]);
    assert.deepEqual(await rendered('apps/web.yaml'), [`Deployment:${mirror}/podinfo:6.5.0`]);
    // The cache chart reads a digest (its values.yaml has the key), so that override pins it.
    assert.deepEqual(await rendered('apps/cache.yaml'), [`StatefulSet:${mirror}/cache@${await manifestDigestAt({ url: source.url }, 'cache', '7.2')}`]);
    assert.equal(
      await manifestDigestAt({ url: backup.url }, `mirror/${source.address.replace(':', '_')}/podinfo`, '6.5.0'),
      podinfoDigest,
      'the backup tag is the same image',
    );
    // The shapes: the v+appVersion tag by convention (the chart reads no digest: the backup's tag);
    // the rest found by rendering and pinned; Bitnami's guard set, and said.
    const digestOf = (repository: string, tag: string) => manifestDigestAt({ url: source.url }, repository, tag);
    assert.deepEqual(await rendered('apps/metrics.yaml'), [`Deployment:${mirror}/metrics/server:v0.7.2`]);
    assert.deepEqual(await rendered('apps/gen.yaml'), [`Deployment:${mirror}/generated@${await digestOf('generated', '1.0')}`]);
    assert.deepEqual((await rendered('apps/cm.yaml')).sort(), [
      `Deployment:${mirror}/jetstack/cm-controller:v1.14.0@${await digestOf('jetstack/cm-controller', 'v1.14.0')}`,
      `Deployment:${mirror}/jetstack/cm-webhook:v1.14.0@${await digestOf('jetstack/cm-webhook', 'v1.14.0')}`,
    ]);
    // Its controller alone: the hook Job sharing the global registry keeps its image (no backup of it was made).
    assert.deepEqual((await rendered('apps/edge.yaml')).sort(), [
      `Deployment:${mirror}/ingress/controller:v1.11.0@${await digestOf('ingress/controller', 'v1.11.0')}`,
      `Job:${source.address}/ingress/certgen:v1.4.0`,
    ]);
    assert.match(pull.body, /argo-apps\/Deployment\/argo-gen ← .*sets global\.security\.allowInsecureImages: true, without which the chart refuses/);
    assert.match(pull.body, /argo-apps\/Deployment\/argo-cm-webhook ← .*webhook\.image\.repository and webhook\.image\.tag found by rendering the chart/);
  });
});
