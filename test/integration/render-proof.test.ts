/**
 * The render proof of manifest edits, with real kustomize: its verdicts on changes made by hand,
 * then the rewriter undoing and refusing a change kustomize shows to reach beyond the images (an
 * image copied into a ConfigMap by `replacements`) while the rest of the batch lands.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN_DIR, HELM_BIN } from '../../devenv/cache.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { proveManifestChange, type ChangedFile } from '../../src/rewriter/proof/manifest-proof.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { fileTree } from '../support/file-tree.ts';
import { git } from '../support/git.ts';

const tools = { kustomize: join(BIN_DIR, 'kustomize') };
const DIGEST = `sha256:${'c'.repeat(64)}`;
const BACKUP = 'backup.io/m/docker.io/library/nginx:1.25';
const deployment = (name: string, image: string, replicas = 1) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  replicas: ${replicas}\n  selector:\n    matchLabels:\n      app: ${name}\n  template:\n    metadata:\n      labels:\n        app: ${name}\n    spec:\n      containers:\n        - name: ${name}\n          image: ${image}\n`;
const web = { id: 'r1', kind: 'Deployment', name: 'web', container: 'web', init: false, source: 'nginx:1.25', backup: BACKUP, digest: DIGEST };

/** Writes `after` over each file (as the rewriter leaves them) and returns the change. */
function change(root: string, edits: Record<string, string>): Map<string, ChangedFile> {
  const changed = new Map<string, ChangedFile>();
  for (const [path, after] of Object.entries(edits)) {
    const file = join(root, path);
    changed.set(file, { before: readFileSync(file, 'utf8'), after });
    writeFileSync(file, after);
  }
  return changed;
}

describe('the manifest render proof (real kustomize)', () => {
  /** A base shared by two overlays; dev pins its own tag unless `devPins` is false. */
  const tree = (devPins = true) =>
    fileTree(
      {
        'base/web.yaml': deployment('web', 'nginx:1.25'),
        'base/kustomization.yaml': 'resources:\n  - web.yaml\n',
        'overlays/prod/kustomization.yaml': 'resources:\n  - ../../base\nnamespace: prod\n',
        'overlays/dev/kustomization.yaml': `resources:\n  - ../../base\nnamespace: dev\n${devPins ? 'images:\n  - name: nginx\n    newTag: "1.27"\n' : ''}`,
      },
      'proof-',
    );

  it('proves an edit that moves only the image, in every overlay that builds the edited base', async () => {
    const root = tree(false);
    const changed = change(root, { 'base/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) });
    const proof = await proveManifestChange(tools, root, 'overlays/prod', changed, [web]);
    assert.equal(proof.reason, undefined);
    assert.deepEqual(proof.unproved, []);
    assert.equal(readFileSync(join(root, 'base/web.yaml'), 'utf8'), deployment('web', `${BACKUP}@${DIGEST}`), 'the files hold the change again');
  });

  it("proves a move of an operator's resource through its image field (the container the operator runs it in), and refuses one that edits another field", async () => {
    const prometheus = (image: string, replicas = 1) =>
      `apiVersion: monitoring.coreos.com/v1\nkind: Prometheus\nmetadata:\n  name: k8s\nspec:\n  replicas: ${replicas}\n  image: ${image}\n`;
    const record = {
      id: 'p1',
      kind: 'Prometheus',
      name: 'k8s',
      container: 'prometheus',
      init: false,
      source: 'quay.io/prometheus/prometheus:v2.50.0',
      backup: 'backup.io/m/quay.io/prometheus/prometheus:v2.50.0',
      digest: DIGEST,
    };
    const root = fileTree(
      { 'prod/prometheus.yaml': prometheus(record.source), 'prod/kustomization.yaml': 'resources:\n  - prometheus.yaml\n' },
      'proof-operator-',
    );
    const moved = change(root, { 'prod/prometheus.yaml': prometheus(`${record.backup}@${DIGEST}`) });
    assert.deepEqual(await proveManifestChange(tools, root, 'prod', moved, [record]), { unproved: [] });
    const root2 = fileTree(
      { 'prod/prometheus.yaml': prometheus(record.source), 'prod/kustomization.yaml': 'resources:\n  - prometheus.yaml\n' },
      'proof-operator-',
    );
    const wrong = change(root2, { 'prod/prometheus.yaml': prometheus(`${record.backup}@${DIGEST}`, 2) });
    assert.match(
      (await proveManifestChange(tools, root2, 'prod', wrong, [record])).reason ?? '',
      /alters Prometheus\/\/k8s beyond its container images \(spec\.replicas\)/,
    );
  });

  it("renders a tenant's chart without its values schema: a $ref to a mounted file or an internal URL is never followed", async () => {
    const secret = join(mkdtempSync(join(tmpdir(), 'proof-secret-')), 'token');
    writeFileSync(secret, 'canary-token-never-read');
    const seen: string[] = [];
    const internal = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.end('{}');
    });
    await new Promise<void>((resolve) => internal.listen(0, '127.0.0.1', resolve));
    try {
      const port = (internal.address() as { port: number }).port;
      const values = (repository: string) => `image:\n  repository: ${repository}\n  tag: "1.25"\n`;
      const root = fileTree(
        {
          'chart/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 1.0.0\n',
          'chart/values.yaml': values('nginx'),
          'chart/values.schema.json': JSON.stringify({ allOf: [{ $ref: `file://${secret}` }, { $ref: `http://127.0.0.1:${port}/internal` }] }),
          'chart/templates/web.yaml': deployment('web', '{{ .Values.image.repository }}:{{ .Values.image.tag }}').replace(
            'name: web\nspec',
            'name: {{ .Release.Name }}\nspec',
          ),
        },
        'proof-schema-',
      );
      const changed = change(root, { 'chart/values.yaml': values('backup.io/nginx') });
      const proof = await proveManifestChange({ ...tools, helm: HELM_BIN }, root, 'chart', changed, [], [{ from: 'nginx:1.25', to: 'backup.io/nginx:1.25' }]);
      assert.deepEqual(proof, { unproved: [] }, 'rendered and proved, the schema left alone');
      assert.deepEqual(seen, [], 'no request reached the internal service');
      assert.ok(!JSON.stringify(proof).includes('canary'));
    } finally {
      internal.close();
    }
  });

  it('refuses a change that alters anything but images, naming the overlay and the object', async () => {
    const root = tree();
    const changed = change(root, { 'base/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`, 3) });
    const proof = await proveManifestChange(tools, root, 'overlays/prod', changed, [web]);
    assert.match(
      proof.reason ?? '',
      /^kustomize build overlays\/(dev|prod): the change alters Deployment\/(dev|prod)\/web beyond its container images \(spec\.replicas\)$/,
    );
    assert.deepEqual(proof.records, [], 'the change as a whole is wrong');
  });

  it('refuses, for that record alone, a change after which its container does not run the backup, saying what it runs', async () => {
    const root = tree();
    // dev runs 1.27 (its own images: entry); a wrong plan edits the shared base to the backup of 1.25.
    const changed = change(root, { 'base/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) });
    const dev = { ...web, source: 'nginx:1.27', backup: 'backup.io/m/docker.io/library/nginx:1.27', digest: `sha256:${'d'.repeat(64)}` };
    const proof = await proveManifestChange(tools, root, 'overlays/dev', changed, [dev]);
    assert.deepEqual(proof.records, ['r1']);
    assert.match(
      proof.reason ?? '',
      /^kustomize build overlays\/dev: after the change, the chart renders Deployment\/web container web with backup\.io\/m\/docker\.io\/library\/nginx:1\.25@sha256:c{64}, not the backup backup\.io\/m\/docker\.io\/library\/nginx:1\.27@sha256:d{64}$/,
    );
  });

  it('refuses an edit of a shared base that moves another overlay off the image it pinned (overlays that disagree)', async () => {
    const root = tree();
    // Asked: prod's nginx:1.25. Editing the base also takes dev's container off its own 1.27.
    const changed = change(root, { 'base/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) });
    const proof = await proveManifestChange(tools, root, 'overlays/prod', changed, [web]);
    assert.equal(
      proof.reason,
      `kustomize build overlays/dev: the change moves Deployment/dev/web container web from nginx:1.27 to ${BACKUP}@${DIGEST}, which no record asked for`,
    );
  });

  it("counts a HelmRelease's values image as an image: one that an overlay patches must not move unasked", async () => {
    const release = (repository: string) =>
      `apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cache\nspec:\n  values:\n    redis:\n      repository: ${repository}\n      tag: 8.6.2\n`;
    const root = fileTree(
      {
        'base/release.yaml': release('docker.io/library/redis'),
        'base/kustomization.yaml': 'resources:\n  - release.yaml\n',
        'overlays/prod/kustomization.yaml': 'resources:\n  - ../../base\n',
        'overlays/staging/kustomization.yaml':
          'resources:\n  - ../../base\npatches:\n  - patch: |\n      {kind: HelmRelease, apiVersion: helm.toolkit.fluxcd.io/v2, metadata: {name: cache}, spec: {values: {redis: {tag: 7.2.0}}}}\n',
      },
      'proof-helm-',
    );
    const move = { from: 'redis:8.6.2', to: 'backup.io/m/redis:8.6.2' };
    const changed = change(root, { 'base/release.yaml': release('backup.io/m/redis') });
    const proof = await proveManifestChange(tools, root, undefined, changed, [], [move]);
    assert.equal(
      proof.reason,
      'kustomize build overlays/staging: the change moves HelmRelease/cache values redis from docker.io/library/redis:7.2.0 to backup.io/m/redis:7.2.0, which no --set asked for',
    );
  });

  it('refuses a change that breaks a build', async () => {
    const root = tree();
    const changed = change(root, { 'base/kustomization.yaml': 'resources:\n  - web.yaml\n  - missing.yaml\n' });
    const proof = await proveManifestChange(tools, root, 'overlays/prod', changed, []);
    assert.match(proof.reason ?? '', /^the change breaks kustomize build overlays\/(dev|prod) failed: .*missing\.yaml/);
  });

  it('reads a plain directory as its own render, and never has kustomize fetch a remote base', async () => {
    const plain = () => fileTree({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), 'apps/other.yaml': deployment('other', 'redis:7') }, 'proof-plain-');
    const first = plain();
    const ok = await proveManifestChange(tools, first, 'apps', change(first, { 'apps/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) }), [web]);
    assert.equal(ok.reason, undefined);
    const second = plain();
    const missed = await proveManifestChange(tools, second, 'apps', change(second, { 'apps/other.yaml': deployment('other', 'redis:7.2') }), [web]);
    assert.match(missed.reason ?? '', /the manifests under apps: .*Deployment\/web container web with nginx:1\.25, not the backup/);

    const remote = fileTree(
      { 'apps/kustomization.yaml': 'resources:\n  - https://github.com/org/base//deploy?ref=v1\nimages:\n  - name: nginx\n    newTag: "1.25"\n' },
      'proof-remote-',
    );
    const proof = await proveManifestChange(
      tools,
      remote,
      'apps',
      change(remote, {
        'apps/kustomization.yaml':
          'resources:\n  - https://github.com/org/base//deploy?ref=v1\nimages:\n  - name: nginx\n    newName: backup.io/m/nginx\n    newTag: "1.25"\n',
      }),
      [web],
    );
    // Never fetched by kustomize; fetched by the rewriter only where it may (here: no network, so not at all), else not proved.
    assert.match(proof.reason ?? '', /^not built: apps: the remote base https:\/\/github\.com\/org\/base at v1 could not be fetched without credentials/);
    // A path that leads out of the repository is not built either: the build would read this machine's files, and the change is refused.
    const outside = fileTree(
      {
        'apps/web.yaml': deployment('web', 'nginx:1.25'),
        'apps/kustomization.yaml': 'resources:\n  - web.yaml\nconfigMapGenerator:\n  - name: leak\n    files:\n      - /etc/hostname\n',
      },
      'proof-outside-',
    );
    const escaped = await proveManifestChange(tools, outside, 'apps', change(outside, { 'apps/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) }), [web]);
    assert.match(
      escaped.reason ?? '',
      /^a build it touches would read from outside the repository, so it is not built: apps\/kustomization\.yaml: configMapGenerator\[\] files names a file outside the repository$/,
    );
  });
});

describe('the proof never reads outside the repository (a hostile tenant repository)', () => {
  it('does not build a kustomization that names a credential through a symbolic link, or a URL as a patch; says so without quoting anything', async () => {
    const secretDir = mkdtempSync(join(tmpdir(), 'mounted-secret-'));
    const SECRET = 'canary-git-token-0123456789';
    writeFileSync(join(secretDir, 'password'), SECRET);
    const requests: string[] = [];
    const server = createServer((req, res) => {
      requests.push(req.url ?? '');
      res.writeHead(200).end(`- op: replace\n  path: /spec/template/spec/containers/0/image\n  value: ${SECRET}\n`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const cases: Array<[string, Record<string, string>, RegExp]> = [
        [
          'a generator file linked to the mounted password',
          { 'apps/kustomization.yaml': 'resources:\n  - web.yaml\nconfigMapGenerator:\n  - name: leak\n    files:\n      - token\n' },
          /apps\/kustomization\.yaml: configMapGenerator\[\] files names a file outside the repository \(through a symbolic link\)/,
        ],
        [
          'replacements read from a linked file',
          { 'apps/kustomization.yaml': 'resources:\n  - web.yaml\nreplacements:\n  - path: token\n' },
          /replacements\[\]\.path names a file outside the repository/,
        ],
        [
          'a patch fetched over http',
          { 'apps/kustomization.yaml': `resources:\n  - web.yaml\npatches:\n  - path: http://127.0.0.1:${port}/p.yaml\n    target:\n      kind: Deployment\n` },
          /patches\[\]\.path names a URL, which kustomize would fetch/,
        ],
        [
          'an inline generator configuration reading an absolute path',
          {
            'apps/kustomization.yaml': `resources:\n  - web.yaml\ngenerators:\n  - |\n    apiVersion: builtin\n    kind: SecretGenerator\n    metadata:\n      name: s\n    files:\n      - ${join(secretDir, 'password')}\n`,
          },
          /generators \(inline files\) names a file outside the repository/,
        ],
      ];
      for (const [what, files, reason] of cases) {
        const root = fileTree({ 'apps/web.yaml': deployment('web', 'nginx:1.25'), ...files }, 'hostile-proof-');
        symlinkSync(join(secretDir, 'password'), join(root, 'apps/token'));
        const changed = change(root, { 'apps/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) });
        const proof = await proveManifestChange(tools, root, 'apps', changed, [web]);
        assert.match(proof.reason ?? '', reason, what);
        assert.match(proof.reason ?? '', /so it is not built/, what);
        assert.doesNotMatch(JSON.stringify(proof), new RegExp(SECRET), `${what}: nothing of the file is quoted`);
      }
      assert.deepEqual(requests, [], 'kustomize fetched nothing');
    } finally {
      server.close();
      rmSync(secretDir, { recursive: true, force: true });
    }
  });
});

describe('the rewriter with the proof', () => {
  it('undoes and refuses a change kustomize shows to reach beyond the images, and lands the rest of the batch', async () => {
    const repos = fileTree({}, 'proof-git-');
    const origin = join(repos, 'origin.git');
    git(repos, 'init', '-q', '--bare', '--initial-branch=main', origin);
    const seed = fileTree(
      {
        'apps/web.yaml': deployment('web', 'nginx:1.25'),
        'apps/api.yaml': deployment('api', 'redis:7'),
        'apps/config.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\ndata:\n  WEB_IMAGE: unset\n',
        // The web image is copied into a ConfigMap: moving it changes more than an image field.
        'apps/kustomization.yaml':
          'resources:\n  - web.yaml\n  - api.yaml\n  - config.yaml\nreplacements:\n  - source:\n      kind: Deployment\n      name: web\n      fieldPath: spec.template.spec.containers.[name=web].image\n    targets:\n      - select:\n          kind: ConfigMap\n          name: versions\n        fieldPaths:\n          - data.WEB_IMAGE\n',
      },
      'proof-seed-',
    );
    git(seed, 'init', '-q', '--initial-branch=main');
    git(seed, 'add', '-A');
    git(seed, 'commit', '-qm', 'apps');
    git(seed, 'push', '-q', `file://${origin}`, 'HEAD:main');

    const ledger = new Ledger(join(repos, 'handoff'));
    const owner = {
      tool: 'argocd' as const,
      kind: 'Application' as const,
      namespace: 'argocd',
      name: 'shop',
      sources: [{ repoURL: `file://${origin}`, path: 'apps', revision: 'main' }],
    };
    const record = (name: string, source: string, backup: string) =>
      ledger.write({
        workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
        images: [{ container: name, init: false, source, backup, digest: DIGEST, platforms: [], sizeBytes: 1 }],
        owner,
      });
    const webRecord = await record('web', 'nginx:1.25', BACKUP);
    await record('api', 'redis:7', 'backup.io/m/docker.io/library/redis:7');
    const rewriter = new Rewriter({
      handoffDir: ledger.dir,
      cacheDir: join(repos, 'cache'),
      mode: 'commit',
      author: { name: 'image-clone', email: 'bot@example.com' },
      logger: createLogger({ write: () => {} }),
      renderTools: { helm: 'helm', ...tools },
    });
    const outcomes = await rewriter.processPending();
    const failed = outcomes.find((o) => o.result === 'failed');
    assert.deepEqual(failed?.records, [webRecord.id]);
    assert.match(failed?.error ?? '', /not proved by rendering: kustomize build apps: the change alters ConfigMap\/\/versions beyond its container images/);
    assert.equal(outcomes.find((o) => o.result === 'pushed')?.records.length, 1, 'api, proved, still lands');
    assert.equal(git(origin, 'show', 'main:apps/web.yaml'), deployment('web', 'nginx:1.25').trim(), 'web is untouched');
    assert.match(git(origin, 'show', 'main:apps/api.yaml'), /image: backup\.io\/m\/docker\.io\/library\/redis:7@sha256:c{64}/);
    assert.deepEqual(
      ledger.pending().map((r) => r.workload.name),
      ['web'],
      'web stays pending with its reason',
    );
    // The batch, then web alone, were not proved; api alone was.
    assert.match(rewriter.metrics.render(), /image_clone_render_proofs_total\{result="not-proved"\} 2/);
    assert.match(rewriter.metrics.render(), /image_clone_render_proofs_total\{result="proved"\} 1/);
  });
});

describe('the gate before every build (independent of the planner)', () => {
  it('refuses a kustomization that is a link, holds a key twice, or hides where the model does not look', async () => {
    const secretDir = mkdtempSync(join(tmpdir(), 'gate-secret-'));
    writeFileSync(join(secretDir, 'password'), 'canary-gate-secret-0123456789');
    try {
      const leak = 'resources:\n  - web.yaml\nconfigMapGenerator:\n  - name: leak\n    files:\n      - token\n';
      const cases: Array<[string, (root: string) => void, RegExp]> = [
        [
          'a kustomization file that is a symbolic link',
          (root) => {
            writeFileSync(join(root, 'apps/real-kustomization.txt'), leak);
            symlinkSync(join(root, 'apps/real-kustomization.txt'), join(root, 'apps/kustomization.yaml'));
          },
          /apps\/kustomization\.yaml is not a regular file \(a link\)/,
        ],
        [
          'a key written twice (the first clean, the last reading the secret)',
          (root) => writeFileSync(join(root, 'apps/kustomization.yaml'), `configMapGenerator: []\n${leak}`),
          /apps\/kustomization\.yaml is not YAML kustomize and this check read alike \(DUPLICATE_KEY\)/,
        ],
        [
          'a base under node_modules the model skips',
          (root) => {
            mkdirSync(join(root, 'apps/node_modules/base'), { recursive: true });
            writeFileSync(join(root, 'apps/node_modules/base/kustomization.yaml'), 'configMapGenerator:\n  - name: leak\n    files:\n      - ../../token\n');
            writeFileSync(join(root, 'apps/kustomization.yaml'), 'resources:\n  - web.yaml\n  - node_modules/base\n');
          },
          /apps\/node_modules\/base\/kustomization\.yaml: configMapGenerator\[\] files names a file outside the repository/,
        ],
      ];
      for (const [what, lay, reason] of cases) {
        const root = fileTree({ 'apps/web.yaml': deployment('web', 'nginx:1.25') }, 'gate-');
        symlinkSync(join(secretDir, 'password'), join(root, 'apps/token'));
        lay(root);
        const changed = change(root, { 'apps/web.yaml': deployment('web', `${BACKUP}@${DIGEST}`) });
        const proof = await proveManifestChange(tools, root, 'apps', changed, [web]);
        assert.match(proof.reason ?? '', reason, what);
        assert.doesNotMatch(JSON.stringify(proof), /canary-gate-secret|Y2FuYXJ5/, `${what}: nothing of the secret`);
      }
    } finally {
      rmSync(secretDir, { recursive: true, force: true });
    }
  });
});
