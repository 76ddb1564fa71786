/**
 * The render comparison (src/rewriter/proof/compare.ts): like with like (YAML 1.1 as the API server
 * reads it, nulls dropped), and what varies between two renders of the unchanged chart left out.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { compareRenders, describeVarying, RenderPair, varyingBetween } from '../../src/rewriter/proof/compare.ts';

const deployment = (image: string, extra = '') =>
  [
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    '  name: web',
    '  namespace: apps',
    'spec:',
    '  template:',
    '    metadata:',
    `      annotations: {checksum/secret: ${extra || 'abc'}}`,
    '    spec:',
    '      containers:',
    '        - name: web',
    `          image: ${image}`,
    '      volumes:',
    '        - name: scripts',
    '          configMap: {name: web, defaultMode: 0755}',
    '',
  ].join('\n');
const secret = (cert: string, name = 'web-tls') =>
  `apiVersion: v1\nkind: Secret\nmetadata:\n  name: ${name}\n  namespace: apps\ndata:\n  tls.crt: ${cert}\n  ca: fixed\n`;
const expected = [
  { kind: 'Deployment', name: 'web', container: 'web', init: false, source: 'nginx:1.25', backup: 'backup.io/nginx:1.25', digest: `sha256:${'a'.repeat(64)}` },
];

describe('compareRenders', () => {
  it('reads both sides as Kubernetes does: a YAML 1.1 octal mode equals its decimal, a null field equals none', () => {
    const helm = deployment('nginx:1.25').replace('configMap: {name: web, defaultMode: 0755}', 'configMap: {name: web, defaultMode: 0755, items: null}');
    const kustomized = deployment(`backup.io/nginx@sha256:${'a'.repeat(64)}`).replace('defaultMode: 0755', 'defaultMode: 493');
    assert.equal(compareRenders(helm, kustomized, expected), undefined);
    // A real difference still counts, and says where.
    const other = kustomized.replace('defaultMode: 493', 'defaultMode: 420');
    assert.match(
      compareRenders(helm, other, expected) ?? '',
      /alters Deployment\/apps\/web beyond its container images \(spec\.template\.spec\.volumes\[0\]\.configMap\.defaultMode\)/,
    );
  });

  it('leaves out what differs between two renders of the unchanged chart, and nothing else', () => {
    const first = `${deployment('nginx:1.25', 'c1')}---\n${secret('AAA')}`;
    const second = `${deployment('nginx:1.25', 'c2')}---\n${secret('BBB')}`;
    const after = `${deployment(`backup.io/nginx@sha256:${'a'.repeat(64)}`, 'c3')}---\n${secret('CCC')}`;
    const varying = varyingBetween(first, second);
    assert.deepEqual(describeVarying(varying), ['Deployment/apps/web spec.template.metadata.annotations.checksum/secret', 'Secret/apps/web-tls data.tls.crt']);
    assert.match(compareRenders(first, after, expected) ?? '', /alters Deployment\/apps\/web beyond/, 'without the mask, the checksum differs');
    assert.equal(compareRenders(first, after, expected, varying), undefined);
    // A field that did not vary between the two unchanged renders is still held to the change.
    assert.match(
      compareRenders(first, after.replace('ca: fixed', 'ca: changed'), expected, varying) ?? '',
      /alters Secret\/apps\/web-tls beyond its container images \(data\.ca\)/,
    );
  });

  it('objects whose names are drawn at random on every render are matched by nothing, but an object the change adds still counts', () => {
    const first = `${deployment('nginx:1.25')}---\n${secret('X', 'token-x1')}`;
    const second = `${deployment('nginx:1.25')}---\n${secret('X', 'token-q7')}`;
    const after = `${deployment(`backup.io/nginx@sha256:${'a'.repeat(64)}`)}---\n${secret('X', 'token-z9')}`;
    const varying = varyingBetween(first, second);
    assert.deepEqual(describeVarying(varying), ['Secret/apps/token-q7 (its name)', 'Secret/apps/token-x1 (its name)']);
    assert.equal(compareRenders(first, after, expected, varying), undefined);
    const added = `${after}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: apps\n`;
    assert.match(compareRenders(first, added, expected, varying) ?? '', /alters which objects the chart renders/);
  });

  it('a deterministic chart varies in nothing', () => {
    const text = `${deployment('nginx:1.25')}---\n${secret('AAA')}`;
    assert.deepEqual(describeVarying(varyingBetween(text, text)), []);
  });
});

describe('a render program that prints without end', () => {
  it('is cut off at the bound, and the reason says so', async () => {
    const { tool, OUTPUT_MAX_BYTES } = await import('../../src/rewriter/proof/tools.ts');
    await assert.rejects(tool('sh', ['-c', 'yes apiVersion: v1'], 'kustomize build hostile'), (error: Error) => {
      assert.equal(error.message, `kustomize build hostile printed more than ${OUTPUT_MAX_BYTES / 1024 / 1024} MiB; a render that large is not compared`);
      return true;
    });
  });
});

describe('RenderPair', () => {
  const other = (i: number) => `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c${i}\n  namespace: apps\ndata:\n  k: v${i}\n`;
  const render = (image: string) => [other(1), deployment(image), other(2)].join('---\n');

  it('reads only the documents that differ, and an unchanged workload when a check asks for it', () => {
    const pair = new RenderPair(render('nginx:1.25'), render('backup.io/nginx:1.25'));
    assert.deepEqual([...pair.before.keys()], ['Deployment/apps/web']);
    assert.equal(
      compareRenders(
        pair,
        '',
        expected.map((e) => ({ ...e, backup: 'backup.io/nginx:1.25' })),
      ),
      undefined,
    );
    const unchanged = new RenderPair(render('nginx:1.25'), render('nginx:1.25'));
    assert.equal(unchanged.before.size, 0);
    // The record's workload is in no changed document: it is read, and found not to move.
    assert.match(
      compareRenders(unchanged, '', expected) ?? '',
      /after the change, the chart renders Deployment\/web container web with nginx:1\.25, not the backup/,
    );
  });

  it('compares everything where the documents do not line up, and still sees what a change beyond images did', () => {
    const pair = new RenderPair(render('nginx:1.25'), `${render('nginx:1.25')}---\n${other(3)}`);
    assert.equal(pair.before.size, 3);
    assert.match(compareRenders(pair, '', []) ?? '', /alters which objects/);
    assert.match(
      compareRenders(new RenderPair(render('nginx:1.25'), render('nginx:1.25').replace('k: v2', 'k: v9')), '', []) ?? '',
      /alters ConfigMap\/apps\/c2 beyond/,
    );
  });
});
