/**
 * An Argo CD or Flux path is usually an overlay whose workloads come from a base elsewhere in the
 * repository. Moving an image for that path adds an images: entry to the overlay, proved by
 * rendering with real kustomize: the overlay runs the new image, a sibling overlay of the same base
 * renders exactly as before, and the base is untouched.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, it } from 'node:test';
import { BIN_DIR } from '../../devenv/cache.ts';

const CLI = join(import.meta.dirname, '../../src/cli.ts');
const root = mkdtempSync(join(tmpdir(), 'overlay-entries-'));
after(() => rmSync(root, { recursive: true, force: true }));

const files: Record<string, string> = {
  'deploy/base/kustomization.yaml': 'resources:\n  - deploy.yaml\n',
  'deploy/base/deploy.yaml':
    'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: cache\nspec:\n  selector:\n    matchLabels: {app: cache}\n  template:\n    metadata:\n      labels: {app: cache}\n    spec:\n      containers:\n        - name: redis\n          image: redis:7.2\n        - name: exporter\n          image: oliver006/redis_exporter:v1.62.0\n',
  'deploy/overlays/dev/kustomization.yaml': 'resources:\n  - ../../base\nnamePrefix: dev-\n',
  'deploy/overlays/prod/kustomization.yaml': 'resources:\n  - ../../base\nimages:\n  - name: redis\n    newTag: "7.4"\n',
};
for (const [path, text] of Object.entries(files)) {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
}
const render = (overlay: string) => execFileSync(join(BIN_DIR, 'kustomize'), ['build', join(root, 'deploy/overlays', overlay)], { encoding: 'utf8' });
const run = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr })),
  );

it('--path at an overlay: an images: entry there, proved by kustomize; the base and the other overlay unchanged', async () => {
  const before = { dev: render('dev'), prod: render('prod') };
  assert.match(before.dev, /image: redis:7\.2$/m);
  const digest = `sha256:${'a'.repeat(64)}`;
  const result = await run([
    'rewrite',
    '--repo',
    root,
    '--path',
    'deploy/overlays/dev',
    '--set',
    `redis:7.2=backup.io/m/docker.io/library/redis:7.2@${digest}`,
    '--set',
    'oliver006/redis_exporter:v1.62.0=backup.io/m/docker.io/oliver006/redis_exporter:v1.62.0',
  ]);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(readFileSync(join(root, 'deploy/base/deploy.yaml'), 'utf8'), files['deploy/base/deploy.yaml'], 'the base is left alone');
  assert.equal(
    readFileSync(join(root, 'deploy/overlays/dev/kustomization.yaml'), 'utf8'),
    `${files['deploy/overlays/dev/kustomization.yaml']}images:\n  - name: redis\n    newName: backup.io/m/docker.io/library/redis\n    newTag: "7.2"\n    digest: ${digest}\n  - name: oliver006/redis_exporter\n    newName: backup.io/m/docker.io/oliver006/redis_exporter\n    newTag: v1.62.0\n`,
  );
  const dev = render('dev');
  assert.equal(
    dev,
    before.dev
      .replace('image: redis:7.2', `image: backup.io/m/docker.io/library/redis:7.2@${digest}`)
      .replace('image: oliver006/redis_exporter:v1.62.0', 'image: backup.io/m/docker.io/oliver006/redis_exporter:v1.62.0'),
    'only the two images change in the render',
  );
  assert.equal(render('prod'), before.prod, 'the sibling overlay renders as before');
});
