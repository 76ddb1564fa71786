/**
 * A Flux HelmRelease declared once in a base and built by two overlays (Flux's kustomize-helm
 * layout), with a chart served by a chart repository on loopback (made by the real `helm package`
 * and `helm repo index`): the rewriter edits what the owner's overlay merges, and proves with real
 * Helm and kustomize that the overlay beside it renders what it rendered, or refuses and says why.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { BIN_DIR, HELM_BIN } from '../../devenv/cache.ts';
import { startChartRepository, type ChartRepository } from '../../devenv/chart-repository.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { fileTree } from '../support/file-tree.ts';
import { git } from '../support/git.ts';

const HELM = HELM_BIN;
const KUSTOMIZE = join(BIN_DIR, 'kustomize');
const DIGEST = `sha256:${'e'.repeat(64)}`;
const SOURCE = 'registry.example.com/podinfo';
const BACKUP = 'backup.io/m/registry.example.com/podinfo';

let work: string;
let charts: ChartRepository;

function write(root: string, files: Record<string, string>): void {
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), text);
  }
}

before(async () => {
  work = fileTree({}, 'helm-overlays-');
  const env = {
    ...process.env,
    HELM_CACHE_HOME: join(work, 'helm/cache'),
    HELM_CONFIG_HOME: join(work, 'helm/config'),
    HELM_DATA_HOME: join(work, 'helm/data'),
  };
  const helm = (...args: string[]) => execFileSync(HELM, args, { encoding: 'utf8', env });
  // podinfo's convention: image.repository + image.tag, the tag defaulting to the appVersion.
  write(join(work, 'charts'), {
    'podinfo/Chart.yaml': 'apiVersion: v2\nname: podinfo\nversion: 6.5.0\nappVersion: 6.5.0\n',
    'podinfo/values.yaml': `image:\n  repository: ${SOURCE}\n  tag: ""\n`,
    'podinfo/templates/deployment.yaml':
      'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  selector:\n    matchLabels: {app: podinfo}\n  template:\n    metadata:\n      labels: {app: podinfo}\n    spec:\n      containers:\n        - name: podinfo\n          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"\n',
  });
  const packages = join(work, 'packages');
  mkdirSync(packages);
  helm('package', join(work, 'charts/podinfo'), '--destination', packages);
  charts = await startChartRepository(packages);
  helm('repo', 'index', packages, '--url', charts.url);
});
after(() => charts?.stop());

const release = stringify({
  apiVersion: 'helm.toolkit.fluxcd.io/v2',
  kind: 'HelmRelease',
  metadata: { name: 'podinfo', namespace: 'apps' },
  spec: { interval: '10m', chart: { spec: { chart: 'podinfo', version: '6.5.0', sourceRef: { kind: 'HelmRepository', name: 'podinfo' } } } },
});
const patch = (values: string) =>
  `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\n  namespace: apps\nspec:\n  values:\n${values}`;

/** The fleet in a bare origin; staging patches the release's values (`stagingValues`), production builds the base as is. */
function fleet(stagingValues: string, base = release): string {
  const origin = join(fileTree({}, 'helm-overlays-git-'), 'origin.git');
  git(dirname(origin), 'init', '-q', '--bare', '--initial-branch=main', origin);
  const seed = fileTree(
    {
      'apps/base/podinfo/release.yaml': base,
      'apps/base/podinfo/kustomization.yaml': 'resources:\n  - release.yaml\n',
      'apps/production/kustomization.yaml': 'resources:\n  - ../base/podinfo\n',
      'apps/staging/kustomization.yaml': 'resources:\n  - ../base/podinfo\npatches:\n  - path: podinfo-values.yaml\n',
      'apps/staging/podinfo-values.yaml': patch(stagingValues),
    },
    'helm-overlays-seed-',
  );
  git(seed, 'init', '-q', '--initial-branch=main');
  git(seed, 'add', '-A');
  git(seed, 'commit', '-qm', 'fleet');
  git(seed, 'push', '-q', `file://${origin}`, 'HEAD:main');
  return origin;
}

/** One record: the podinfo Deployment as the overlay at `path` deploys it, running `tag`. */
async function rewriteOne(origin: string, path: string, tag: string) {
  const ledger = new Ledger(join(dirname(origin), 'handoff'));
  const owner = {
    tool: 'flux' as const,
    kind: 'HelmRelease' as const,
    namespace: 'apps',
    name: 'podinfo',
    sources: [{ repoURL: `file://${origin}`, path, revision: 'main' }],
    declares: {
      kind: 'HelmRelease' as const,
      namespace: 'apps',
      name: 'podinfo',
      chart: { repoURL: charts.url, name: 'podinfo', version: '6.5.0', releaseName: 'podinfo' },
    },
  };
  await ledger.write({
    workload: { kind: 'Deployment', namespace: 'apps', name: 'podinfo', uid: `uid-${path}` },
    images: [{ container: 'podinfo', init: false, source: `${SOURCE}:${tag}`, backup: `${BACKUP}:${tag}`, digest: DIGEST, platforms: [], sizeBytes: 1 }],
    owner,
  });
  const rewriter = new Rewriter({
    handoffDir: ledger.dir,
    cacheDir: join(dirname(origin), 'cache'),
    mode: 'commit',
    author: { name: 'image-clone', email: 'bot@example.com' },
    logger: createLogger({ write: () => {} }),
    renderTools: { helm: HELM, kustomize: KUSTOMIZE },
    // The lab's chart repository is plain http: named by the operator.
    credentialScopes: [`${charts.url}/`],
  });
  return rewriter.processPending();
}

describe('a HelmRelease in a base built by two overlays', () => {
  const spelled = release.replace('spec:\n', `spec:\n  values:\n    image:\n      repository: ${SOURCE}\n      tag: 6.5.0\n`);

  it('moves the overlay that patches the tag through its own patch; the base and the other overlay stay', async () => {
    const origin = fleet('    image:\n      tag: 6.6.0\n', spelled);
    const outcomes = await rewriteOne(origin, 'apps/staging', '6.6.0');
    assert.deepEqual(
      outcomes.map((o) => o.result),
      ['pushed'],
      JSON.stringify(outcomes),
    );
    assert.equal(git(origin, 'show', 'main:apps/base/podinfo/release.yaml'), spelled.trim(), 'the base is untouched');
    assert.match(
      git(origin, 'show', 'main:apps/staging/podinfo-values.yaml'),
      /image:\n {6}tag: 6\.6\.0\n {6}repository: backup\.io\/m\/registry\.example\.com\/podinfo$/,
    );
  });

  it("moves the base for the overlay that runs it, and pins in the other overlay's patch what the base no longer gives it", async () => {
    const origin = fleet('    image:\n      tag: 6.6.0\n', spelled);
    const outcomes = await rewriteOne(origin, 'apps/production', '6.5.0');
    assert.deepEqual(
      outcomes.map((o) => o.result),
      ['pushed'],
      JSON.stringify(outcomes),
    );
    assert.match(git(origin, 'show', 'main:apps/base/podinfo/release.yaml'), /repository: backup\.io\/m\/registry\.example\.com\/podinfo\n/);
    assert.match(git(origin, 'show', 'main:apps/staging/podinfo-values.yaml'), /tag: 6\.6\.0\n {6}repository: registry\.example\.com\/podinfo$/);
  });

  it('refuses an edit of the shared base that would move the overlay beside it, naming it and what it would run', async () => {
    // No values spell the image out: production's move can only be a post-renderer in the base it
    // builds as is, which staging (running 6.6.0 from its patch) builds too.
    const origin = fleet('    image:\n      tag: 6.6.0\n');
    const outcomes = await rewriteOne(origin, 'apps/production', '6.5.0');
    assert.deepEqual(
      outcomes.map((o) => o.result),
      ['failed'],
      JSON.stringify(outcomes),
    );
    assert.match(
      outcomes[0]!.error ?? '',
      /as apps\/staging builds it, the edit moves Deployment\/podinfo container podinfo from registry\.example\.com\/podinfo:6\.6\.0 to backup\.io\/m\/registry\.example\.com\/podinfo@sha256:e{64}, which no record asked for/,
    );
    assert.equal(git(origin, 'show', 'main:apps/base/podinfo/release.yaml'), release.trim(), 'nothing lands');
  });

  it("adds the post-renderer to the owner's own patch when the base is shared, so the overlay beside it is not touched", async () => {
    const origin = fleet('    image:\n      tag: 6.6.0\n');
    const outcomes = await rewriteOne(origin, 'apps/staging', '6.6.0');
    assert.deepEqual(
      outcomes.map((o) => o.result),
      ['pushed'],
      JSON.stringify(outcomes),
    );
    assert.equal(git(origin, 'show', 'main:apps/base/podinfo/release.yaml'), release.trim(), 'the base is untouched');
    assert.match(
      git(origin, 'show', 'main:apps/staging/podinfo-values.yaml'),
      /postRenderers:\n {4}- kustomize:\n {8}images:\n {10}- name: registry\.example\.com\/podinfo\n {12}newName: backup\.io\/m\/registry\.example\.com\/podinfo\n {12}digest: sha256:e{64}$/,
    );
  });
});
