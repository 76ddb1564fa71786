/** Moving the images of a Flux HelmRelease whose chart is not in Git: its values, or a post-renderer images entry. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileTree } from '../support/file-tree.ts';
import { parse } from 'yaml';
import { planHelmRelease } from '../../src/rewriter/edit/helm-release.ts';
import { parseReference } from '../../src/image/reference.ts';

const repo = (files: Record<string, string>) => fileTree(files, 'helm-release-');

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const BACKUP = `backup.example.com/mirror/ghcr.io/stefanprodan/podinfo@${DIGEST}`;
const move = (asWritten: string, to = BACKUP) => ({ from: parseReference(asWritten), to, asWritten });
const release = { kind: 'HelmRelease' as const, namespace: 'apps', name: 'podinfo' };

const HELM_RELEASE = `apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: apps
spec:
  interval: 10m   # keep
  chart:
    spec:
      chart: podinfo
      version: "6.x"
      sourceRef:
        kind: HelmRepository
        name: podinfo
  values:
    replicaCount: 2
`;

/** The lines a change adds and removes, as `+line` / `-line`. */
function changedLines(before: string, afterText: string): string[] {
  const a = before.split('\n');
  const b = afterText.split('\n');
  let start = 0;
  while (start < a.length && a[start] === b[start]) start++;
  let endA = a.length;
  let endB = b.length;
  while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
    endA--;
    endB--;
  }
  return [...a.slice(start, endA).map((l) => `-${l}`), ...b.slice(start, endB).map((l) => `+${l}`)];
}

describe('planHelmRelease', () => {
  it('adds one entry for an image that an init container and a container both run', () => {
    const root = repo({ 'apps/podinfo.yaml': HELM_RELEASE });
    const plan = planHelmRelease(root, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0'), move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    const { before, after: text } = plan.files.get(join(root, 'apps/podinfo.yaml'))!;
    assert.equal(changedLines(before, text).filter((l) => l.includes('- name: ghcr.io/stefanprodan/podinfo')).length, 1);
  });

  it('adds a postRenderers list with a kustomize images entry when the release has none, and only that', () => {
    const root = repo({ 'apps/podinfo.yaml': HELM_RELEASE });
    const plan = planHelmRelease(root, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    assert.equal(plan.refused, undefined);
    const { before, after: text } = plan.files.get(join(root, 'apps/podinfo.yaml'))!;
    assert.deepEqual(changedLines(before, text), [
      '+  postRenderers:',
      '+    - kustomize:',
      '+        images:',
      '+          - name: ghcr.io/stefanprodan/podinfo',
      '+            newName: backup.example.com/mirror/ghcr.io/stefanprodan/podinfo',
      `+            digest: ${DIGEST}`,
    ]);
    const doc = parse(text) as { spec: { postRenderers: unknown; values: unknown } };
    assert.deepEqual(doc.spec.postRenderers, [
      { kustomize: { images: [{ name: 'ghcr.io/stefanprodan/podinfo', newName: 'backup.example.com/mirror/ghcr.io/stefanprodan/podinfo', digest: DIGEST }] } },
    ]);
    assert.deepEqual(doc.spec.values, { replicaCount: 2 });
    assert.equal(plan.changes[0]!.what, 'HelmRelease apps/podinfo post-renderer images entry added');
  });

  it('appends to an existing post-renderer images list, and adds images to a kustomize post-renderer that has only patches', () => {
    const withImages = `${HELM_RELEASE}  postRenderers:\n  - kustomize:\n      images:\n      - name: docker.io/library/busybox\n        newTag: "1.36"\n`;
    const root = repo({ 'apps/podinfo.yaml': withImages });
    const plan = planHelmRelease(root, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    const { before, after: text } = plan.files.get(join(root, 'apps/podinfo.yaml'))!;
    assert.deepEqual(changedLines(before, text), [
      '+      - name: ghcr.io/stefanprodan/podinfo',
      '+        newName: backup.example.com/mirror/ghcr.io/stefanprodan/podinfo',
      `+        digest: ${DIGEST}`,
    ]);

    const withPatches = `${HELM_RELEASE}  postRenderers:\n    - kustomize:\n        patches:\n          - target: {kind: Deployment}\n            patch: |\n              - op: add\n                path: /metadata/labels/team\n                value: web\n`;
    const root2 = repo({ 'apps/podinfo.yaml': withPatches });
    const plan2 = planHelmRelease(root2, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    const changed = plan2.files.get(join(root2, 'apps/podinfo.yaml'))!;
    const doc = parse(changed.after) as { spec: { postRenderers: Array<{ kustomize: { patches: unknown[]; images: unknown[] } }> } };
    assert.equal(doc.spec.postRenderers[0]!.kustomize.patches.length, 1);
    assert.deepEqual(doc.spec.postRenderers[0]!.kustomize.images, [
      { name: 'ghcr.io/stefanprodan/podinfo', newName: 'backup.example.com/mirror/ghcr.io/stefanprodan/podinfo', digest: DIGEST },
    ]);
    assert.equal(
      changedLines(changed.before, changed.after).every((l) => l.startsWith('+')),
      true,
    );
  });

  it('edits values that already spell the image out instead of adding a post-renderer', () => {
    const values = HELM_RELEASE.replace(
      '    replicaCount: 2\n',
      '    replicaCount: 2\n    image:\n      repository: ghcr.io/stefanprodan/podinfo\n      tag: 6.5.0\n',
    );
    const root = repo({ 'apps/podinfo.yaml': values });
    const plan = planHelmRelease(root, 'apps', release, [
      move('ghcr.io/stefanprodan/podinfo:6.5.0', `backup.example.com/mirror/ghcr.io/stefanprodan/podinfo:6.5.0@${DIGEST}`),
    ]);
    const { before, after: text } = plan.files.get(join(root, 'apps/podinfo.yaml'))!;
    assert.deepEqual(changedLines(before, text), [
      '-      repository: ghcr.io/stefanprodan/podinfo',
      '+      repository: backup.example.com/mirror/ghcr.io/stefanprodan/podinfo',
    ]);
    // No digest key: the change line says the backup is pinned by its tag, and shows what the values compose.
    assert.match(plan.changes[0]!.what, /^Helm values HelmRelease\/podinfo spec\.values image \(no digest key: pinned by its tag\)$/);
    assert.equal(plan.changes[0]!.after, 'backup.example.com/mirror/ghcr.io/stefanprodan/podinfo:6.5.0');
  });

  it('finds the release in a base the path builds on (the Flux example layout), and edits nothing the second time', () => {
    const root = repo({
      'apps/base/podinfo/release.yaml': HELM_RELEASE.replace('  namespace: apps\n', ''),
      'apps/base/podinfo/kustomization.yaml': 'resources:\n  - release.yaml\n',
      'apps/staging/kustomization.yaml': 'resources:\n  - ../base/podinfo\npatches:\n  - path: podinfo-values.yaml\n',
      'apps/staging/podinfo-values.yaml':
        'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\nspec:\n  values:\n    ingress:\n      enabled: true\n',
      'apps/production/other.yaml': HELM_RELEASE,
    });
    const first = planHelmRelease(root, 'apps/staging', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    assert.deepEqual([...first.files.keys()], [join(root, 'apps/base/podinfo/release.yaml')]);
    writeFileSync(join(root, 'apps/base/podinfo/release.yaml'), first.files.get(join(root, 'apps/base/podinfo/release.yaml'))!.after);
    const again = planHelmRelease(root, 'apps/staging', release, [
      move('ghcr.io/stefanprodan/podinfo:6.5.0'),
      { from: parseReference(BACKUP), to: BACKUP, detectOnly: true },
    ]);
    assert.equal(again.files.size, 0);
    assert.equal(again.changes.length, 2, 'the applied change is found, and setting it again changes nothing');
  });

  it("edits the values as the owner's overlay merges them: its own patch, or the base with the other overlay's patch pinned", () => {
    const files = {
      'base/release.yaml': HELM_RELEASE.replace('    replicaCount: 2\n', '    image:\n      repository: ghcr.io/stefanprodan/podinfo\n      tag: 6.5.0\n'),
      'base/kustomization.yaml': 'resources:\n  - release.yaml\n',
      'overlays/production/kustomization.yaml': 'resources:\n  - ../../base\n',
      'overlays/staging/kustomization.yaml': 'resources:\n  - ../../base\npatches:\n  - path: values.yaml\n',
      'overlays/staging/values.yaml':
        'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: podinfo\nspec:\n  values:\n    image:\n      tag: 6.6.0\n',
    };
    // Staging runs 6.6.0 (its patch sets the tag): its patch alone gets the whole image.
    const staging = repo(files);
    const moved = planHelmRelease(staging, 'overlays/staging', release, [
      move('ghcr.io/stefanprodan/podinfo:6.6.0', `backup.example.com/mirror/ghcr.io/stefanprodan/podinfo:6.6.0@${DIGEST}`),
    ]);
    assert.deepEqual([...moved.files.keys()], [join(staging, 'overlays/staging/values.yaml')]);
    assert.equal(
      moved.files.get(join(staging, 'overlays/staging/values.yaml'))!.after,
      files['overlays/staging/values.yaml'].replace(
        '      tag: 6.6.0\n',
        '      tag: 6.6.0\n      repository: backup.example.com/mirror/ghcr.io/stefanprodan/podinfo\n',
      ),
    );
    // Production runs the base's 6.5.0: the base moves, and staging's patch keeps the repository it got from the base.
    const production = repo(files);
    const base = planHelmRelease(production, 'overlays/production', release, [
      move('ghcr.io/stefanprodan/podinfo:6.5.0', `backup.example.com/mirror/ghcr.io/stefanprodan/podinfo:6.5.0@${DIGEST}`),
    ]);
    assert.deepEqual([...base.files.keys()].map((f) => f.slice(production.length + 1)).sort(), ['base/release.yaml', 'overlays/staging/values.yaml']);
    assert.match(base.files.get(join(production, 'overlays/staging/values.yaml'))!.after, /tag: 6\.6\.0\n {6}repository: ghcr\.io\/stefanprodan\/podinfo\n$/);
  });

  it('a newer backup of the same image edits our entry rather than adding a second', () => {
    const applied = `${HELM_RELEASE}  postRenderers:\n    - kustomize:\n        images:\n          - name: ghcr.io/stefanprodan/podinfo\n            newName: backup.example.com/mirror/ghcr.io/stefanprodan/podinfo\n            digest: ${DIGEST}\n`;
    const root = repo({ 'apps/podinfo.yaml': applied });
    const newer = `sha256:${'cd'.repeat(32)}`;
    const plan = planHelmRelease(root, 'apps', release, [move(BACKUP, `backup.example.com/mirror/ghcr.io/stefanprodan/podinfo@${newer}`)]);
    const { before, after: text } = plan.files.get(join(root, 'apps/podinfo.yaml'))!;
    assert.deepEqual(changedLines(before, text), [`-            digest: ${DIGEST}`, `+            digest: ${newer}`]);
  });

  it('keeps CRLF line ends and flow-style lists', () => {
    const crlf = HELM_RELEASE.replace(/\n/g, '\r\n');
    const root = repo({ 'apps/podinfo.yaml': crlf });
    const text = planHelmRelease(root, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]).files.get(join(root, 'apps/podinfo.yaml'))!.after;
    assert.equal(text.replace(/\r\n/g, '').includes('\n'), false);
    const flow = `${HELM_RELEASE}  postRenderers: [{kustomize: {images: [{name: busybox, newTag: "1"}]}}]\n`;
    const root2 = repo({ 'apps/podinfo.yaml': flow });
    const text2 = planHelmRelease(root2, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]).files.get(join(root2, 'apps/podinfo.yaml'))!.after;
    assert.match(
      text2,
      /\{name: busybox, newTag: "1"\}, \{name: ghcr\.io\/stefanprodan\/podinfo, newName: backup\.example\.com\/mirror\/ghcr\.io\/stefanprodan\/podinfo, digest: "?sha256:ab/,
    );
    assert.equal((parse(text2) as { spec: { postRenderers: Array<{ kustomize: { images: unknown[] } }> } }).spec.postRenderers[0]!.kustomize.images.length, 2);
  });

  it('refuses, naming the release and the path, when no file declares it (another namespace is not it)', () => {
    const root = repo({ 'apps/podinfo.yaml': HELM_RELEASE.replace('namespace: apps', 'namespace: other') });
    const plan = planHelmRelease(root, 'apps', release, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    assert.match(plan.refused ?? '', /no file under apps \(or the bases it builds on\) declares HelmRelease apps\/podinfo/);
    assert.equal(plan.files.size, 0);
    // With the Kustomization's targetNamespace, the namespace the file states does not matter.
    const forced = planHelmRelease(root, 'apps', { ...release, targetNamespace: 'apps' }, [move('ghcr.io/stefanprodan/podinfo:6.5.0')]);
    assert.equal(forced.files.size, 1);
  });
});
