/** Planning image replacements over real files in a temporary repository tree. */
import assert from 'node:assert/strict';
import type { Scalar, YAMLMap } from 'yaml';
import { applyTextEdits, documentSpans, lineOf, parseYamlFile } from '../../src/rewriter/edit/yaml-scalars.ts';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileTree } from '../support/file-tree.ts';
import { parseReplacement, planOverlayEntries, planRepository } from '../../src/rewriter/edit/plan.ts';
import { parseReference } from '../../src/image/reference.ts';
import { templateImageLiterals } from '../../src/rewriter/edit/chart-templates.ts';

const addition = (asWritten: string, to: string) => ({ from: parseReference(asWritten), asWritten, to });

const repo = (files: Record<string, string>) => fileTree(files, 'rewrite-');
const plan = (root: string, ...sets: string[]) => planRepository(root, undefined, sets.map(parseReplacement));
const after_ = (p: ReturnType<typeof plan>, root: string, file: string) => p.files.get(join(root, file))?.after;

const DEPLOYMENT = `# the web tier
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # keep this comment
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: "nginx:1.25"   # quoted, double
      containers:
        - name: web
          image: docker.io/library/nginx:1.25
        - name: other
          image: 'nginx'
---
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg}
data:
  image: nginx:1.25
`;

describe('rewrite planning: plain manifests', () => {
  it('changes only the image values, in their own quoting, and matches after normalisation', () => {
    const root = repo({ 'apps/web.yaml': DEPLOYMENT });
    const p = plan(root, 'nginx:1.25=backup.io/m/docker.io/library/nginx:1.25');
    const expected = DEPLOYMENT.replace('image: "nginx:1.25"', 'image: "backup.io/m/docker.io/library/nginx:1.25"').replace(
      'image: docker.io/library/nginx:1.25',
      'image: backup.io/m/docker.io/library/nginx:1.25',
    );
    assert.equal(after_(p, root, 'apps/web.yaml'), expected, 'nginx (latest) and the ConfigMap value are not touched');
    assert.deepEqual(
      p.changes.map((c) => c.what),
      ['Deployment/web init container migrate', 'Deployment/web container web'],
    );
    assert.deepEqual(p.errors, []);
  });

  it('reads every workload kind: CronJob, Job, Pod, ReplicaSet, StatefulSet, DaemonSet', () => {
    const docs = [
      [
        'CronJob',
        'spec:\n  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n            - name: c\n              image: redis:7\n',
      ],
      ['Job', 'spec:\n  template:\n    spec:\n      containers:\n        - {name: c, image: redis:7}\n'],
      ['Pod', 'spec:\n  containers:\n    - name: c\n      image: redis:7\n'],
      ['ReplicaSet', 'spec:\n  template:\n    spec:\n      containers:\n        - name: c\n          image: redis:7\n'],
      ['StatefulSet', 'spec:\n  template:\n    spec:\n      containers:\n        - name: c\n          image: redis:7\n'],
      ['DaemonSet', 'spec:\n  template:\n    spec:\n      containers:\n        - name: c\n          image: redis:7\n'],
    ];
    const root = repo({ 'all.yml': docs.map(([kind, body]) => `kind: ${kind}\nmetadata:\n  name: x\n${body}`).join('---\n') });
    const p = plan(root, 'redis:7=r.io/redis:7');
    assert.equal(p.changes.length, 6);
    assert.equal((after_(p, root, 'all.yml') ?? '').match(/r\.io\/redis:7/g)?.length, 6);
  });

  it('reports a broken file with its line, leaves it untouched, and still edits the others', () => {
    const root = repo({
      'good.yaml': 'kind: Pod\nspec:\n  containers:\n    - name: c\n      image: redis:7\n',
      'bad.yaml': 'kind: Pod\nspec:\n  containers:\n    - name: c\n     image: [redis:7\n',
    });
    const p = plan(root, 'redis:7=r.io/redis:7');
    assert.equal(p.errors.length, 1);
    assert.match(p.errors[0]!.message, /^bad\.yaml:\d+: /);
    assert.ok(after_(p, root, 'good.yaml')?.includes('r.io/redis:7'));
    assert.equal(p.files.has(join(root, 'bad.yaml')), false);
  });

  it('never follows a symbolic link out of the repository', () => {
    const outside = repo({ 'victim.yaml': 'kind: Pod\nspec:\n  containers:\n    - name: c\n      image: redis:7\n' });
    const root = repo({ 'ok.yaml': 'kind: Pod\nspec:\n  containers:\n    - name: c\n      image: redis:6\n' });
    symlinkSync(join(outside, 'victim.yaml'), join(root, 'link.yaml'));
    symlinkSync(outside, join(root, 'linkdir'));
    const p = plan(root, 'redis:7=r.io/redis:7');
    assert.equal(p.files.size, 0);
    assert.throws(() => planRepository(root, '../..', [parseReplacement('a=b')]), /leads outside the repository/);
  });
});

describe('rewrite planning: kustomize', () => {
  const base = {
    'base/kustomization.yaml': 'resources:\n  - deployment.yaml\n',
    'base/deployment.yaml':
      'kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.24\n',
  };

  it('edits the overlay entry that decides the running image, not the base literal', () => {
    const overlay = 'resources:\n  - ../../base\nimages:\n  # pinned by the platform team\n  - name: nginx\n    newTag: "1.25"\n';
    const root = repo({ ...base, 'overlays/prod/kustomization.yaml': overlay });
    const p = plan(root, 'nginx:1.25=backup.io/m/nginx:1.25');
    assert.equal(p.files.has(join(root, 'base/deployment.yaml')), false, 'the base literal (1.24) is not what runs');
    assert.equal(
      after_(p, root, 'overlays/prod/kustomization.yaml'),
      'resources:\n  - ../../base\nimages:\n  # pinned by the platform team\n  - name: nginx\n    newTag: "1.25"\n    newName: backup.io/m/nginx\n',
    );
  });

  it('leaves a literal alone when an overlay makes the resource run something else', () => {
    const root = repo({ ...base, 'overlays/prod/kustomization.yaml': 'resources:\n  - ../../base\nimages:\n  - name: nginx\n    newTag: "1.26"\n' });
    const p = plan(root, 'nginx:1.24=backup.io/m/nginx:1.24');
    assert.equal(p.files.size, 0);
  });

  it('edits an entry without tag through the literal it transforms, and an entry in flow style', () => {
    const root = repo({ ...base, 'overlays/a/kustomization.yaml': 'resources: [../../base]\nimages:\n  - {name: nginx, newName: mirror.io/nginx}\n' });
    const p = plan(root, 'mirror.io/nginx:1.24=backup.io/m/mirror.io/nginx:1.24');
    assert.equal(
      after_(p, root, 'overlays/a/kustomization.yaml'),
      'resources: [../../base]\nimages:\n  - {name: nginx, newName: backup.io/m/mirror.io/nginx, newTag: "1.24"}\n',
    );
  });

  it('replaces a digest-pinned entry with the new digest', () => {
    const d = `sha256:${'a'.repeat(64)}`;
    const root = repo({ 'kustomization.yaml': `resources:\n  - https://github.com/org/remote//base\nimages:\n  - name: redis\n    digest: ${d}\n` });
    const p = plan(root, `redis@${d}=backup.io/m/redis@${d}`);
    assert.equal(
      after_(p, root, 'kustomization.yaml'),
      `resources:\n  - https://github.com/org/remote//base\nimages:\n  - name: redis\n    digest: ${d}\n    newName: backup.io/m/redis\n`,
    );
  });
});

describe('rewrite planning: Helm values', () => {
  const D = `sha256:${'f'.repeat(64)}`;

  it('edits repository and tag of an image mapping in values.yaml, keeping everything else', () => {
    const values =
      '# chart values\nreplicaCount: 2\nimage:\n  repository: nginx   # upstream\n  tag: "1.25"\n  pullPolicy: IfNotPresent\nsidecar:\n  image: {repository: redis, tag: 7}\n';
    const root = repo({ 'charts/web/values.yaml': values });
    const p = plan(root, 'nginx:1.25=backup.io/m/docker.io/library/nginx:1.25', 'redis:7=backup.io/m/docker.io/library/redis:7');
    assert.equal(
      after_(p, root, 'charts/web/values.yaml'),
      '# chart values\nreplicaCount: 2\nimage:\n  repository: backup.io/m/docker.io/library/nginx   # upstream\n  tag: "1.25"\n  pullPolicy: IfNotPresent\nsidecar:\n  image: {repository: backup.io/m/docker.io/library/redis, tag: 7}\n',
      'an unchanged tag stays as written',
    );
    assert.deepEqual(
      p.changes.map((c) => c.what),
      ['Helm values image', 'Helm values sidecar.image'],
    );
  });

  it('follows the Bitnami convention: registry, repository, tag and digest', () => {
    const values = 'image:\n  registry: docker.io\n  repository: bitnami/redis\n  tag: 7.2.4\n  digest: ""\n';
    const root = repo({ 'values-prod.yaml': values });
    const p = plan(root, `docker.io/bitnami/redis:7.2.4=backup.io/m/docker.io/bitnami/redis:7.2.4@${D}`);
    assert.equal(
      after_(p, root, 'values-prod.yaml'),
      `image:\n  registry: backup.io\n  repository: m/docker.io/bitnami/redis\n  tag: 7.2.4\n  digest: "${D}"\n`,
    );
  });

  it('edits the inline values of a Flux HelmRelease, and leaves other mappings alone', () => {
    const release =
      'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cache\nspec:\n  values:\n    image:\n      repository: redis\n      tag: "7"\n';
    const other = 'kind: ConfigMap\nmetadata: {name: x}\ndata:\n  image: {repository: redis, tag: "7"}\n';
    const root = repo({ 'releases/cache.yaml': release, 'other.yaml': other });
    const p = plan(root, 'redis:7=backup.io/m/redis:7');
    assert.equal(after_(p, root, 'releases/cache.yaml'), release.replace('repository: redis', 'repository: backup.io/m/redis'));
    assert.equal(p.files.has(join(root, 'other.yaml')), false, 'only values files and HelmRelease values are Helm values');
    assert.deepEqual(
      p.changes.map((c) => c.what),
      ['Helm values HelmRelease/cache spec.values image'],
    );
  });
});

describe('rewrite planning: remote bases', () => {
  it('adds an images: list when there is none, and nothing without a base outside the path', () => {
    const root = repo({
      'kustomization.yaml': 'resources:\n- github.com/org/base/deploy?ref=v1\n',
      'local/kustomization.yaml': 'resources:\n  - deployment.yaml\n',
    });
    const p = planOverlayEntries(root, undefined, [addition('ghcr.io/org/app:2.0', 'b.io/m/ghcr.io/org/app:2.0')]);
    // In the file's own style: its lists at the key's column here, indented by two (and CRLF) below.
    assert.equal(
      after_(p, root, 'kustomization.yaml'),
      'resources:\n- github.com/org/base/deploy?ref=v1\nimages:\n- name: ghcr.io/org/app\n  newName: b.io/m/ghcr.io/org/app\n  newTag: "2.0"\n',
    );
    assert.equal(planOverlayEntries(root, 'local', [addition('x:1', 'b.io/x:1')]).files.size, 0);
    const indented = repo({ 'kustomization.yaml': 'resources:\r\n  - github.com/org/base/deploy?ref=v1\r\n' });
    const q = planOverlayEntries(indented, undefined, [
      addition('ghcr.io/org/app:2.0', 'b.io/m/ghcr.io/org/app:2.0'),
      addition('nginx:1.27', 'b.io/m/nginx:1.27'),
    ]);
    assert.equal(
      after_(q, indented, 'kustomization.yaml'),
      'resources:\r\n  - github.com/org/base/deploy?ref=v1\r\nimages:\r\n  - name: ghcr.io/org/app\r\n    newName: b.io/m/ghcr.io/org/app\r\n    newTag: "2.0"\r\n' +
        '  - name: nginx\r\n    newName: b.io/m/nginx\r\n    newTag: "1.27"\r\n',
    );
  });
  it('appends after the last entry of an images: list, before the comments that follow it', () => {
    const root = repo({
      'kustomization.yaml':
        'resources:\n- github.com/org/base/deploy?ref=v1\nimages:\n  - name: redis\n    newTag: "7"\n  # pinned by the platform team\nnamespace: web\n',
    });
    const p = planOverlayEntries(root, undefined, [addition(`ghcr.io/org/app@sha256:${'a'.repeat(64)}`, `b.io/m/ghcr.io/org/app@sha256:${'a'.repeat(64)}`)]);
    assert.equal(
      after_(p, root, 'kustomization.yaml'),
      'resources:\n- github.com/org/base/deploy?ref=v1\nimages:\n  - name: redis\n    newTag: "7"\n' +
        `  - name: ghcr.io/org/app\n    newName: b.io/m/ghcr.io/org/app\n    digest: sha256:${'a'.repeat(64)}\n` +
        '  # pinned by the platform team\nnamespace: web\n',
    );
  });
  it('refuses an images: key that holds no list rather than write a second one', () => {
    const root = repo({ 'kustomization.yaml': 'resources:\n- github.com/org/base/deploy?ref=v1\nimages:\n' });
    const p = planOverlayEntries(root, undefined, [addition('nginx:1', 'b.io/nginx:1')]);
    assert.equal(p.files.size, 0);
    assert.match(p.errors[0]!.message, /neither a list nor absent/);
  });
  it('refuses a flow-style images: list rather than break it', () => {
    const root = repo({ 'kustomization.yaml': 'resources: [https://example.com/base.yaml]\nimages: [{name: redis, newTag: "7"}]\n' });
    const p = planOverlayEntries(root, undefined, [addition('nginx:1', 'b.io/nginx:1')]);
    assert.equal(p.files.size, 0);
    assert.match(p.errors[0]!.message, /flow-style images: list/);
  });
});

describe('rewrite planning: block scalar images', () => {
  it('replaces only the content of a >- or |- scalar, header, indentation and the next key kept (LF and CRLF)', () => {
    for (const eol of ['\n', '\r\n']) {
      for (const header of ['>-', '|-', '>-  # folded']) {
        const text = [
          'kind: Deployment',
          'metadata:',
          '  name: web',
          'spec:',
          '  template:',
          '    spec:',
          '      containers:',
          '        - name: web',
          `          image: ${header}`,
          '            nginx:1.25',
          '          imagePullPolicy: Always',
          '',
        ].join(eol);
        const root = repo({ 'd.yaml': text });
        const p = plan(root, `nginx:1.25=backup.io/m/nginx:1.25@sha256:${'c'.repeat(64)}`);
        assert.equal(
          after_(p, root, 'd.yaml'),
          text.replace('            nginx:1.25', `            backup.io/m/nginx:1.25@sha256:${'c'.repeat(64)}`),
          JSON.stringify({ eol, header }),
        );
      }
    }
  });
});

describe('rewrite planning: Argo Rollouts', () => {
  it("edits a Rollout's pod template like a Deployment's, and leaves one that refers to a Deployment alone", () => {
    const rollout =
      'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: web\nspec:\n  strategy:\n    canary: {steps: [{setWeight: 20}]}\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25   # canary\n';
    const byRef =
      'apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: api\nspec:\n  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: api}\n';
    const root = repo({ 'rollout.yaml': rollout, 'by-ref.yaml': byRef });
    const p = plan(root, 'nginx:1.25=b.io/m/nginx:1.25');
    assert.equal(after_(p, root, 'rollout.yaml'), rollout.replace('image: nginx:1.25', 'image: b.io/m/nginx:1.25'));
    assert.deepEqual(
      p.changes.map((c) => c.what),
      ['Rollout/web container web'],
    );
    assert.equal(after_(p, root, 'by-ref.yaml'), undefined);
  });

  it('edits the items of a kind: List, labels a chart template, and reports the uses it does not edit (other kinds, JSON)', () => {
    const root = repo({
      'list.yaml':
        'apiVersion: v1\nkind: List\nitems:\n  - apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: listed\n    spec:\n      template:\n        spec:\n          containers:\n            - name: x\n              image: nginx:1.25\n',
      'chart/templates/deploy.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\nspec:\n  template:\n    spec:\n      containers:\n        - name: x\n          image: nginx:1.25\n',
      'knative.yaml':
        'apiVersion: serving.knative.dev/v1\nkind: Service\nmetadata:\n  name: hello\nspec:\n  template:\n    spec:\n      containers:\n        - image: nginx:1.25\n',
      'deploy.json': '{"kind":"Deployment","spec":{"template":{"spec":{"containers":[{"name":"x","image":"nginx:1.25"}]}}}}\n',
    });
    const p = plan(root, 'nginx:1.25=b.io/nginx:1.25');
    assert.match(after_(p, root, 'list.yaml')!, /image: b\.io\/nginx:1\.25/);
    assert.ok(p.changes.some((c) => c.file === join('chart', 'templates', 'deploy.yaml') && c.what.startsWith('Helm chart template: Deployment/')));
    assert.equal(p.files.has(join(root, 'knative.yaml')), false);
    assert.deepEqual(
      p.skipped?.map((s) => s.note),
      [
        "knative.yaml:9 Service/hello uses nginx:1.25; Service is not a kind this edits (see the README's list)",
        'deploy.json mentions nginx:1.25; JSON manifests are not edited',
      ],
    );
  });
});

describe('text edits and line numbers on large files', () => {
  it('applies many edits in one pass, insertions at one place in the order given, and counts lines exactly', () => {
    const text = Array.from({ length: 2000 }, (_, i) => `line ${i}`).join('\n');
    const edits = [
      { start: 5, end: 6, text: 'X' },
      { start: 0, end: 0, text: 'a' },
      { start: 0, end: 0, text: 'b' },
      { start: text.length, end: text.length, text: '!' },
    ];
    const out = applyTextEdits(text, edits);
    assert.equal(out.slice(0, 9), 'abline X\n');
    assert.ok(out.endsWith('line 1999!'));
    assert.equal(lineOf(text, 0), 1);
    assert.equal(lineOf(text, text.indexOf('line 1000')), 1001);
    assert.equal(lineOf(text, text.length), 2000);
  });
});

describe('parsing only the documents that matter', () => {
  const doc = (name: string, image: string) =>
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n    - name: c\n      image: ${image}\n`;
  const text = `# generated\n${doc('a', 'nginx:1.25')}---\n${doc('b', 'redis:7')}---\n${doc('c', 'nginx:1.25')}`;

  it('keeps the chosen documents with ranges into the whole text, and says the file was read in part', () => {
    const spans = documentSpans(text);
    assert.equal(spans.length, 3);
    const kept = spans.filter((s) => text.slice(s.start, s.end).includes('nginx'));
    const yaml = parseYamlFile('f.yaml', text, kept);
    assert.equal(yaml.partial, true);
    assert.equal(yaml.documents.length, 2);
    const image = (yaml.documents[1]!.contents as YAMLMap).getIn(['spec', 'containers', 0, 'image'], true) as Scalar;
    assert.equal(text.slice(image.range![0], image.range![1]), 'nginx:1.25');
    assert.equal(lineOf(text, image.range![0]), 27);
  });

  it('names a broken document it was asked to check, by its line in the whole file, and splits as YAML does', () => {
    const broken = text.replace('  name: b\n', '  name: [b\n');
    const kept = documentSpans(broken).filter((s) => broken.slice(s.start, s.end).includes('nginx'));
    assert.equal(parseYamlFile('f.yaml', broken, kept).documents.length, 2, 'not checked: not read');
    // The same error, on the same line, as a parse of the whole file gives.
    const whole = (() => {
      try {
        parseYamlFile('f.yaml', broken);
      } catch (error) {
        return (error as Error).message;
      }
    })();
    assert.match(whole ?? '', /^f\.yaml:15: Flow sequence/);
    assert.throws(() => parseYamlFile('f.yaml', broken, kept, true), { message: whole });
    // A `---` line ends even a top-level block scalar, as the whole parse agrees; a bare document after `...` shares a piece.
    const scalar = '--- |\nline one\n---\nline two\n';
    assert.equal(documentSpans(scalar).length, parseYamlFile('s.yaml', scalar).documents.length);
    const bare = 'a: 1\n...\nb: 2\n';
    assert.equal(parseYamlFile('b.yaml', bare, documentSpans(bare)).documents.length, 2);
  });
});

describe('chart template literals', () => {
  it('finds the lines that write an image and nothing else: not inside a template action or a string, not a value with # in it', () => {
    const text = [
      'spec:',
      '  image: docker.io/team/app:1#not-a-comment',
      '  args: ["echo x\u2028image: docker.io/team/app:1\u2028"]',
      '{{- /* a comment',
      'image: docker.io/team/app:1',
      '*/}}',
      '  image: docker.io/team/app:1 # real',
      '  - image: "nginx:1.25"\r',
      '  image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
      '',
    ].join('\n');
    assert.deepEqual(
      templateImageLiterals(text).map((s) => [s.value, s.line, s.raw]),
      [
        ['docker.io/team/app:1', 7, 'docker.io/team/app:1'],
        ['nginx:1.25', 8, '"nginx:1.25"'],
      ],
    );
    // And a document split is YAML's: U+2028 is no line break.
    assert.equal(documentSpans('kind: D\n# c\u2028--- \nspec: {}\n---\nb: 1\n').length, 2);
  });
});
