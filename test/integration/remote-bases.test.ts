/**
 * Overlays on remote bases, proved by rendering the base the rewriter fetched itself (never by
 * kustomize): real git over HTTP, real kustomize.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BIN_DIR } from '../../devenv/cache.ts';
import { startGitHttpServer, type GitHttpServer } from '../../devenv/git-http-server.ts';
import { proveManifestChange } from '../../src/rewriter/proof/manifest-proof.ts';
import { parseRemoteBase } from '../../src/rewriter/proof/remote-bases.ts';
import { fileTree } from '../support/file-tree.ts';
import { bareRepository } from '../support/git.ts';
import { readFileSync, writeFileSync } from 'node:fs';

const tools = { kustomize: join(BIN_DIR, 'kustomize') };
const DIGEST = `sha256:${'e'.repeat(64)}`;
const deployment = (image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector:\n    matchLabels:\n      app: web\n  template:\n    metadata:\n      labels:\n        app: web\n    spec:\n      containers:\n        - name: web\n          image: ${image}\n`;
const web = {
  id: 'r1',
  kind: 'Deployment',
  name: 'web',
  container: 'web',
  init: false,
  source: 'nginx:1.25',
  backup: 'backup.io/m/docker.io/library/nginx:1.25',
  digest: DIGEST,
};

let work: string;
let server: GitHttpServer;
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'remote-bases-'));
  bareRepository(join(work, 'base.git'), { 'deploy/web.yaml': deployment('nginx:1.25'), 'deploy/kustomization.yaml': 'resources:\n  - web.yaml\n' });
  // A base that is mostly something else: 4 MiB of incompressible bytes beside its manifests.
  bareRepository(join(work, 'bulky.git'), {
    'deploy/web.yaml': deployment('nginx:1.25'),
    'deploy/kustomization.yaml': 'resources:\n  - web.yaml\n',
    'blob.bin': randomBytes(4 * 1024 * 1024).toString('base64'),
  });
  server = await startGitHttpServer(work, {}, { anonymousRead: true });
});
after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

describe('remote bases', () => {
  it('reads kustomize remote targets', () => {
    assert.deepEqual(parseRemoteBase('https://github.com/org/base//deploy?ref=v1'), { repoURL: 'https://github.com/org/base', path: 'deploy', ref: 'v1' });
    assert.deepEqual(parseRemoteBase('github.com/org/base/deploy?ref=v1'), { repoURL: 'https://github.com/org/base.git', path: 'deploy', ref: 'v1' });
    assert.deepEqual(parseRemoteBase('https://git.example/org/base.git/deploy'), {
      repoURL: 'https://git.example/org/base.git',
      path: 'deploy',
      ref: undefined,
    });
    // No marker: the repository is the first two segments, as kustomize splits it (Kubeflow's example/ names one so).
    assert.deepEqual(parseRemoteBase('https://github.com/argoproj/argo-workflows/manifests/base/crds/minimal?ref=v3.7.3'), {
      repoURL: 'https://github.com/argoproj/argo-workflows',
      path: 'manifests/base/crds/minimal',
      ref: 'v3.7.3',
    });
    assert.deepEqual(parseRemoteBase('https://dev.azure.com/org/project/_git/repo/deploy/prod'), {
      repoURL: 'https://dev.azure.com/org/project/_git/repo',
      path: 'deploy/prod',
      ref: undefined,
    });
    assert.deepEqual(parseRemoteBase('git@gitlab.example:team/base/deploy'), { repoURL: 'git@gitlab.example:team/base', path: 'deploy', ref: undefined });
    assert.deepEqual(parseRemoteBase('https://git.example/org/base?ref=main'), { repoURL: 'https://git.example/org/base', path: '', ref: 'main' });
    assert.equal(parseRemoteBase('deploy/web.yaml'), undefined);
  });

  it("proves an overlay's images: entry by rendering the base it fetched itself, and refuses one that moves nothing", async () => {
    const base = `${server.url}/base.git//deploy?ref=main`;
    const overlay = (images: string) => `resources:\n  - ${base}\n${images}`;
    const policy = { httpPrefixes: [`${server.url}/`] };
    // The images: entry the planner adds for a base it cannot read: proved by the render.
    const root = fileTree({ 'apps/kustomization.yaml': overlay('') }, 'remote-overlay-');
    const entry = `images:\n  - name: nginx\n    newName: backup.io/m/docker.io/library/nginx\n    digest: ${DIGEST}\n`;
    const change = (text: string) => {
      const file = join(root, 'apps/kustomization.yaml');
      const changed = new Map([[file, { before: readFileSync(file, 'utf8'), after: text }]]);
      writeFileSync(file, text);
      return changed;
    };
    const proof = await proveManifestChange(tools, root, 'apps', change(overlay(entry)), [web], [], policy);
    assert.equal(proof.reason, undefined, proof.reason);
    assert.deepEqual(proof.unproved, []);
    // A tenant's entry naming an image the base does not run: the render shows nothing moved.
    const other = mkdtempSync(join(tmpdir(), 'remote-other-'));
    try {
      const root2 = fileTree({ 'apps/kustomization.yaml': overlay('') }, 'remote-overlay-');
      const file = join(root2, 'apps/kustomization.yaml');
      const wrong = overlay(`images:\n  - name: redis\n    newName: evil.example/redis\n`);
      const changed = new Map([[file, { before: readFileSync(file, 'utf8'), after: wrong }]]);
      writeFileSync(file, wrong);
      const refused = await proveManifestChange(tools, root2, 'apps', changed, [web], [], policy);
      assert.match(refused.reason ?? '', /nginx:1\.25, not the backup/);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('refuses, as not proved, an overlay whose remote base it may not fetch (plain http not named by the operator)', async () => {
    const root = fileTree({ 'apps/kustomization.yaml': `resources:\n  - ${server.url}/base.git//deploy?ref=main\n` }, 'remote-overlay-');
    const file = join(root, 'apps/kustomization.yaml');
    const after = `${readFileSync(file, 'utf8')}images:\n  - name: nginx\n    newName: backup.io/m/docker.io/library/nginx\n    digest: ${DIGEST}\n`;
    const changed = new Map([[file, { before: readFileSync(file, 'utf8'), after }]]);
    writeFileSync(file, after);
    const proof = await proveManifestChange(tools, root, 'apps', changed, [web], [], {});
    assert.match(proof.reason ?? '', /the remote base http:\/\/127\.0\.0\.1:\d+\/base\.git is not fetched: only https/);
  });

  it('stops a remote base whose clone grows past the bound, and refuses the change as not proved', async () => {
    const root = fileTree({ 'apps/kustomization.yaml': `resources:\n  - ${server.url}/bulky.git//deploy?ref=main\n` }, 'remote-overlay-');
    const file = join(root, 'apps/kustomization.yaml');
    const after = `${readFileSync(file, 'utf8')}images:\n  - name: nginx\n    newName: backup.io/m/docker.io/library/nginx\n    digest: ${DIGEST}\n`;
    const changed = new Map([[file, { before: readFileSync(file, 'utf8'), after }]]);
    writeFileSync(file, after);
    const policy = { httpPrefixes: [`${server.url}/`], maxCloneBytes: 1024 * 1024 };
    const proof = await proveManifestChange(tools, root, 'apps', changed, [web], [], policy);
    assert.match(proof.reason ?? '', /the remote base http:\/\/127\.0\.0\.1:\d+\/bulky\.git is more than 1 MiB; not fetched/);
  });
});
