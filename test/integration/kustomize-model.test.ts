/**
 * The planner's model of kustomize, judged by real kustomize: for each shape of repository (a base
 * shared by overlays that disagree, images set by patches of every kind, components and name
 * prefixes, HelmRelease values patched by an overlay), the plan is applied and every overlay is
 * built before and after. The builds that ran a requested image must run its backup; every other
 * image, and everything else in every build, must stay as it was.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { BIN_DIR } from '../../devenv/cache.ts';
import { imageKey, parseReference } from '../../src/image/reference.ts';
import { parseReplacement, planRepository } from '../../src/rewriter/edit/plan.ts';
import { fileTree } from '../support/file-tree.ts';

const DIGEST = `sha256:${'c'.repeat(64)}`;
const backup = (image: string) => `backup.io/m/docker.io/library/${image}@${DIGEST}`;
const deployment = (name: string, ...containers: Array<[string, string]>) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  selector:\n    matchLabels: {app: ${name}}\n  template:\n    metadata:\n      labels: {app: ${name}}\n    spec:\n      containers:\n${containers.map(([c, image]) => `        - name: ${c}\n          image: ${image}\n`).join('')}`;

interface RenderedObject {
  kind: string;
  metadata: { name: string };
  spec?: {
    template?: { spec?: { containers?: Array<{ name: string; image: string }> } };
    values?: { redis?: { repository: string; tag: string; digest?: string } };
  };
}

/** What a build runs and declares: `Kind/name container` → image, `HelmRelease/name path` → composed image, and the rest as text. */
function build(root: string, dir: string): { images: Map<string, string>; rest: string } {
  const out = execFileSync(join(BIN_DIR, 'kustomize'), ['build', join(root, dir)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const images = new Map<string, string>();
  const objects = parseAllDocuments(out).map((d) => d.toJS() as RenderedObject);
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata.name}`;
    for (const c of o.spec?.template?.spec?.containers ?? []) {
      images.set(`${id} ${c.name}`, c.image);
      c.image = '';
    }
    const redis = o.spec?.values?.redis;
    if (o.kind === 'HelmRelease' && redis) {
      images.set(`${id} redis`, `${redis.repository}:${redis.tag}${redis.digest ? `@${redis.digest}` : ''}`);
      delete o.spec!.values!.redis;
    }
  }
  return { images, rest: JSON.stringify(objects) };
}

/**
 * Plans `sets` over the tree, applies the plan, and checks each build in `builds`: what ran a
 * requested image runs the new one, the rest is unchanged. Returns the plan.
 */
function planAndCheck(files: Record<string, string>, builds: readonly string[], ...sets: string[]) {
  const root = fileTree(files, 'model-');
  const replacements = sets.map(parseReplacement);
  const before = new Map(builds.map((b) => [b, build(root, b)]));
  const plan = planRepository(root, undefined, replacements);
  assert.deepEqual(plan.errors, []);
  for (const [file, { after }] of plan.files) writeFileSync(file, after);
  for (const b of builds) {
    const was = before.get(b)!;
    const now = build(root, b);
    assert.equal(now.rest, was.rest, `${b}: nothing but images changes`);
    for (const [where, image] of was.images) {
      const asked = replacements.find((r) => imageKey(r.from) === imageKey(parseReference(image)));
      // A values mapping without a digest key is moved by tag.
      const expected = asked ? (where.startsWith('HelmRelease/') ? asked.to.replace(/@.*/, '') : asked.to) : image;
      assert.equal(now.images.get(where), expected, `${b} ${where} ran ${image}`);
    }
  }
  return { root, plan };
}

describe('the planner follows kustomize (checked by real builds)', () => {
  describe('a base shared by overlays that disagree about its image', () => {
    const tree = {
      'base/kustomization.yaml': 'resources:\n  - cache.yaml\n',
      'base/cache.yaml': deployment('cache', ['redis', 'redis:7.2']),
      'overlays/a/kustomization.yaml': 'resources:\n  - ../../base\n',
      'overlays/b/kustomization.yaml': 'resources:\n  - ../../base\nimages:\n  - name: redis\n    newTag: "7.4"\n',
      'overlays/c/kustomization.yaml': 'resources:\n  - ../../base\nimages:\n  - name: redis\n    newName: mirror.io/redis\n',
    };
    const overlays = ['overlays/a', 'overlays/b', 'overlays/c'];

    it('moves the base for the overlay that runs it as is; the overlays that override it keep what they run', () => {
      const { root, plan } = planAndCheck(tree, overlays, `redis:7.2=${backup('redis:7.2')}`);
      assert.deepEqual(plan.unmatched, []);
      assert.ok(plan.files.has(join(root, 'base/cache.yaml')), 'the base literal is edited');
      assert.equal(
        plan.files.get(join(root, 'overlays/b/kustomization.yaml'))?.after,
        `resources:\n  - ../../base\nimages:\n  - name: backup.io/m/docker.io/library/redis\n    newTag: "7.4"\n    newName: redis\n`,
      );
    });

    it('moves every overlay whose image is asked for, each through its own text', () => {
      planAndCheck(tree, overlays, `redis:7.2=${backup('redis:7.2')}`, `redis:7.4=${backup('redis:7.4')}`);
    });
  });

  describe('images set by patches', () => {
    const tree = {
      'base/kustomization.yaml': 'resources:\n  - web.yaml\n',
      'base/web.yaml': deployment('web', ['web', 'nginx:1.25'], ['sidecar', 'busybox:1.36']),
      'overlays/plain/kustomization.yaml': 'resources:\n  - ../../base\n',
      'overlays/inline/kustomization.yaml':
        'resources:\n  - ../../base\npatches:\n  - target:\n      kind: Deployment\n      name: web\n    patch: |-\n      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: nginx:1.26\n',
      'overlays/smp/kustomization.yaml': 'resources:\n  - ../../base\npatches:\n  - path: web-image.yaml\n',
      'overlays/smp/web-image.yaml':
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.27\n',
      'overlays/json-file/kustomization.yaml':
        'resources:\n  - ../../base\npatchesJson6902:\n  - target: {group: apps, version: v1, kind: Deployment, name: web}\n    path: ops.yaml\n',
      'overlays/json-file/ops.yaml': '- op: replace\n  path: /spec/template/spec/containers/1/image\n  value: busybox:1.37\n',
      'overlays/inline-smp/kustomization.yaml':
        'resources:\n  - ../../base\npatchesStrategicMerge:\n  - |-\n    apiVersion: apps/v1\n    kind: Deployment\n    metadata:\n      name: web\n    spec:\n      template:\n        spec:\n          containers:\n            - name: web\n              image: nginx:1.28\n',
    };
    const overlays = ['overlays/plain', 'overlays/inline', 'overlays/smp', 'overlays/json-file', 'overlays/inline-smp'];

    it('edits the image inside an inline JSON 6902 patch, keeping the block', () => {
      const { root, plan } = planAndCheck(tree, overlays, `nginx:1.26=${backup('nginx:1.26')}`);
      assert.deepEqual([...plan.files.keys()], [join(root, 'overlays/inline/kustomization.yaml')]);
      assert.match(
        plan.files.get(join(root, 'overlays/inline/kustomization.yaml'))!.after,
        /\n {8}value: backup\.io\/m\/docker\.io\/library\/nginx:1\.26@sha256:c{64}\n$/,
      );
    });

    it('edits a strategic-merge patch file, a JSON 6902 patch file, and an inline strategic-merge patch', () => {
      const { root, plan } = planAndCheck(
        tree,
        overlays,
        `nginx:1.27=${backup('nginx:1.27')}`,
        `busybox:1.37=${backup('busybox:1.37')}`,
        `nginx:1.28=${backup('nginx:1.28')}`,
      );
      assert.deepEqual([...plan.files.keys()].map((f) => f.slice(root.length + 1)).sort(), [
        'overlays/inline-smp/kustomization.yaml',
        'overlays/json-file/ops.yaml',
        'overlays/smp/web-image.yaml',
      ]);
    });

    it('moves the base literal for the overlay that runs it, not for those whose patch replaces it', () => {
      const { root, plan } = planAndCheck(tree, overlays, `nginx:1.25=${backup('nginx:1.25')}`, `busybox:1.36=${backup('busybox:1.36')}`);
      assert.deepEqual([...plan.files.keys()], [join(root, 'base/web.yaml')]);
    });

    it('says so when a patch replaces the literal in every build', () => {
      const onlyPatched = {
        'base/kustomization.yaml': tree['base/kustomization.yaml'],
        'base/web.yaml': tree['base/web.yaml'],
        'overlays/plain/web-image.yaml': tree['overlays/smp/web-image.yaml'],
        'overlays/plain/kustomization.yaml': 'resources:\n  - ../../base\npatches:\n  - path: web-image.yaml\n',
      };
      const { plan } = planAndCheck(onlyPatched, ['overlays/plain'], `nginx:1.25=${backup('nginx:1.25')}`);
      assert.equal(plan.files.size, 0);
      assert.equal(plan.unmatched?.length, 1);
      assert.ok(
        plan.skipped?.some((s) =>
          /^base\/web\.yaml:\d+ Deployment\/web container web is nginx:1\.25, but no build runs it \(overlays\/plain runs nginx:1\.27\)/.test(s.note),
        ),
        plan.skipped?.map((s) => s.note).join('\n'),
      );
    });

    it('names a patch written as a quoted string, which cannot be edited in place, and edits nothing else of it', () => {
      const quoted = {
        ...tree,
        'overlays/inline/kustomization.yaml':
          'resources:\n  - ../../base\npatches:\n  - target: {kind: Deployment, name: web}\n    patch: "[{op: replace, path: /spec/template/spec/containers/0/image, value: nginx:1.26}]"\n',
      };
      const root = fileTree(quoted, 'model-');
      const plan = planRepository(root, undefined, [parseReplacement(`nginx:1.26=${backup('nginx:1.26')}`)]);
      assert.equal(plan.files.size, 0);
      assert.match(
        plan.errors.map(String).join('\n'),
        /overlays\/inline\/kustomization\.yaml:5: .*Deployment\/web.*written as a quoted or folded string, which cannot be edited in place; write the patch as a literal block \(patch: \|\)/,
      );
    });

    it('leaves an images: entry that kustomize never applies (its name is not how the base spells the image)', () => {
      const files = {
        'base/kustomization.yaml': 'resources:\n  - cache.yaml\n',
        'base/cache.yaml': deployment('cache', ['redis', 'docker.io/library/redis:6']),
        'overlays/x/kustomization.yaml': 'resources:\n  - ../../base\nimages:\n  - name: redis\n    newTag: "6.2"\n',
      };
      const pinned = planAndCheck(files, ['overlays/x'], `redis:6.2=${backup('redis:6.2')}`);
      assert.equal(pinned.plan.files.size, 0, 'the entry that applies to nothing is not edited');
      const literal = planAndCheck(files, ['overlays/x'], `redis:6=${backup('redis:6')}`);
      assert.deepEqual([...literal.plan.files.keys()], [join(literal.root, 'base/cache.yaml')]);
    });
  });

  it('follows components and name prefixes: a patch that targets the prefixed name, an entry in a component', () => {
    const files = {
      'base/kustomization.yaml': 'resources:\n  - web.yaml\n',
      'base/web.yaml': deployment('web', ['web', 'nginx:1.25'], ['sidecar', 'busybox:1.36']),
      'components/mirror/kustomization.yaml':
        'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\nimages:\n  - name: busybox\n    newName: mirror.io/busybox\n',
      'overlays/dev/kustomization.yaml': 'resources:\n  - ../../base\nnamePrefix: dev-\ncomponents:\n  - ../../components/mirror\n',
      'overlays/dev-eu/kustomization.yaml':
        'resources:\n  - ../dev\npatches:\n  - target: {kind: Deployment, name: dev-web}\n    patch: |\n      - op: replace\n        path: /spec/template/spec/containers/0/image\n        value: nginx:1.26\n',
    };
    const { root, plan } = planAndCheck(
      files,
      ['overlays/dev-eu'],
      'nginx:1.26=backup.io/m/docker.io/library/nginx:1.26',
      'mirror.io/busybox:1.36=backup.io/m/mirror.io/busybox:1.36',
    );
    assert.deepEqual([...plan.files.keys()].map((f) => f.slice(root.length + 1)).sort(), [
      'components/mirror/kustomization.yaml',
      'overlays/dev-eu/kustomization.yaml',
    ]);
  });

  describe('HelmRelease values patched by an overlay', () => {
    const release =
      'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cache\nspec:\n  chart:\n    spec: {chart: redis}\n  values:\n    redis:\n      repository: docker.io/library/redis\n      tag: 8.6.2\n';
    const tree = {
      'base/kustomization.yaml': 'resources:\n  - release.yaml\n',
      'base/release.yaml': release,
      'overlays/prod/kustomization.yaml': 'resources:\n  - ../../base\n',
      'overlays/staging/kustomization.yaml': 'resources:\n  - ../../base\npatches:\n  - path: values.yaml\n',
      'overlays/staging/values.yaml':
        'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cache\nspec:\n  values:\n    redis:\n      tag: 7.2.0\n',
    };
    const builds = ['overlays/prod', 'overlays/staging'];

    it('moving the base image pins the base repository in the overlay that patches the tag', () => {
      const { root, plan } = planAndCheck(tree, builds, `redis:8.6.2=${backup('redis:8.6.2')}`);
      assert.equal(
        plan.files.get(join(root, 'overlays/staging/values.yaml'))?.after,
        tree['overlays/staging/values.yaml'].replace('tag: 7.2.0\n', 'tag: 7.2.0\n      repository: docker.io/library/redis\n'),
      );
    });

    it("moving the overlay's image edits its patch alone", () => {
      const { root, plan } = planAndCheck(tree, builds, `redis:7.2.0=${backup('redis:7.2.0')}`);
      assert.deepEqual([...plan.files.keys()], [join(root, 'overlays/staging/values.yaml')]);
    });

    it('moving both', () => {
      planAndCheck(tree, builds, `redis:7.2.0=${backup('redis:7.2.0')}`, `redis:8.6.2=${backup('redis:8.6.2')}`);
    });
  });
});
