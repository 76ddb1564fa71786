/**
 * The edit session (src/rewriter/session.ts) with real kustomize: what it keeps, refuses and leaves
 * on disk when the proof names a unit, when a batch is wrong as a whole (narrowed by halves), when a
 * change is already in place, and without a proof.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { BIN_DIR } from '../../devenv/cache.ts';
import { parseReference } from '../../src/image/reference.ts';
import { editSession, type EditUnit } from '../../src/rewriter/session.ts';
import { fileTree } from '../support/file-tree.ts';
import { goldenCases } from '../support/golden.ts';

const prove = { tools: { kustomize: join(BIN_DIR, 'kustomize') } };
const DIGEST = `sha256:${'d'.repeat(64)}`;
const deployment = (name: string, image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  selector:\n    matchLabels:\n      app: ${name}\n  template:\n    metadata:\n      labels:\n        app: ${name}\n    spec:\n      containers:\n        - name: ${name}\n          image: ${image}\n`;

/** A unit moving `source` to its backup, as a record of that workload asks. */
const unit = (id: string, workload: string, source: string): EditUnit => {
  const backup = `backup.io/m/${source}`;
  return {
    id,
    replacements: [{ from: parseReference(source), to: `${backup}@${DIGEST}` }],
    expected: [{ id, kind: 'Deployment', name: workload, container: workload, init: false, source, backup, digest: DIGEST }],
  };
};

/** Three workloads; with `copied`, `replacements` copies web's image into a ConfigMap, so moving web changes more than images. */
const tree = (copied = true) =>
  fileTree({
    'apps/kustomization.yaml': [
      'resources: [web.yaml, cache.yaml, queue.yaml, config.yaml]',
      ...(copied ? [] : ['']),
      'replacements:',
      '  - source: {kind: Deployment, name: web, fieldPath: spec.template.spec.containers.0.image}',
      '    targets:',
      '      - select: {kind: ConfigMap, name: versions}',
      '        fieldPaths: [data.WEB_IMAGE]',
      '',
    ]
      .slice(0, copied ? undefined : 1)
      .join('\n'),
    'apps/web.yaml': deployment('web', 'nginx:1.25'),
    'apps/cache.yaml': deployment('cache', 'redis:7'),
    'apps/queue.yaml': deployment('queue', 'rabbitmq:3'),
    'apps/config.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\ndata:\n  WEB_IMAGE: unset\n',
  });

describe('the edit session', () => {
  it('narrows a batch wrong as a whole by halves: the unit whose edit reaches beyond images is refused, the others kept and written', async () => {
    const root = tree();
    const proofs: Array<{ reason: string | undefined; size: number }> = [];
    const session = await editSession({ root, path: 'apps', prove, onProof: (reason, batch) => proofs.push({ reason, size: batch.length }) }, [
      unit('cache', 'cache', 'redis:7'),
      unit('web', 'web', 'nginx:1.25'),
      unit('queue', 'queue', 'rabbitmq:3'),
    ]);
    assert.deepEqual([...session.refused.keys()], ['web']);
    assert.match(
      session.refused.get('web')!.reason,
      /^kustomize build apps: the change alters ConfigMap\/\/versions beyond its container images \(data\.WEB_IMAGE\)$/,
    );
    assert.equal(session.refused.get('web')!.byProof, true);
    // The whole batch, then its halves [cache, web] and [queue], then [cache] and [web] apart.
    assert.deepEqual(
      proofs.map((p) => [p.size, p.reason !== undefined]),
      [
        [3, true],
        [2, true],
        [1, false],
        [1, true],
        [1, false],
      ],
    );
    assert.equal(readFileSync(join(root, 'apps/web.yaml'), 'utf8'), deployment('web', 'nginx:1.25'), 'the refused edit is undone');
    assert.equal(readFileSync(join(root, 'apps/cache.yaml'), 'utf8'), deployment('cache', `backup.io/m/redis:7@${DIGEST}`));
    assert.equal(readFileSync(join(root, 'apps/queue.yaml'), 'utf8'), deployment('queue', `backup.io/m/rabbitmq:3@${DIGEST}`));
    assert.deepEqual([...session.files.keys()].map((f) => f.slice(f.indexOf('/apps/') + 1)).sort(), ['apps/cache.yaml', 'apps/queue.yaml']);
    assert.equal(session.found, true);
  });

  it('refuses at once the units the proof names, and keeps the rest of the batch in one more proof', async () => {
    const root = tree(false);
    let proofs = 0;
    // This record says web runs nginx:1.24 where the tree runs 1.25: only its own check fails.
    const stale: EditUnit = { ...unit('web', 'web', 'nginx:1.25'), expected: unit('web', 'web', 'nginx:1.24').expected! };
    const session = await editSession({ root, path: 'apps', prove, onProof: () => proofs++ }, [unit('cache', 'cache', 'redis:7'), stale]);
    assert.deepEqual([...session.refused.keys()], ['web']);
    assert.match(session.refused.get('web')!.reason, /before the change, the chart renders Deployment\/web container web with nginx:1\.25, not nginx:1\.24/);
    assert.equal(proofs, 2, 'the whole batch, then the batch without the unit named');
    assert.equal(readFileSync(join(root, 'apps/cache.yaml'), 'utf8'), deployment('cache', `backup.io/m/redis:7@${DIGEST}`));
    assert.equal(readFileSync(join(root, 'apps/web.yaml'), 'utf8'), deployment('web', 'nginx:1.25'));
  });

  it('finds a change already in place, and without a proof plans everything and writes nothing', async () => {
    const root = tree();
    const done = { ...unit('cache', 'cache', 'redis:7'), replacements: [{ from: parseReference('redis:8'), to: `backup.io/m/redis:7@${DIGEST}` }] };
    const planned = await editSession({ root, path: 'apps' }, [unit('cache', 'cache', 'redis:7'), unit('web', 'web', 'nginx:1.25')]);
    assert.equal(planned.files.size, 2);
    assert.deepEqual(planned.changes.map((c) => `${c.file}:${c.line} ${c.before} -> ${c.after}`).sort(), [
      `apps/cache.yaml:16 redis:7 -> backup.io/m/redis:7@${DIGEST}`,
      `apps/web.yaml:16 nginx:1.25 -> backup.io/m/nginx:1.25@${DIGEST}`,
    ]);
    assert.equal(readFileSync(join(root, 'apps/cache.yaml'), 'utf8'), deployment('cache', 'redis:7'), 'nothing written without a proof');
    // Once the backup is in the tree, a record asking for it finds it (`found`) and plans no edit.
    const again = await editSession(
      { root: fileTree({ 'cache.yaml': deployment('cache', `backup.io/m/redis:7@${DIGEST}`) }), path: undefined, detectApplied: true, prove },
      [done],
    );
    assert.equal(again.found, true);
    assert.equal(again.files.size, 0);
    const absent = await editSession({ root: fileTree({ 'cache.yaml': deployment('cache', 'redis:6') }), path: undefined, detectApplied: true, prove }, [done]);
    assert.equal(absent.found, false);
  });
});

describe('the edit session, as image-clone rewrite runs it', () => goldenCases('session'));
