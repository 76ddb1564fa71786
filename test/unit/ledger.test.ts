import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Ledger, recordId } from '../../src/handoff/ledger.ts';
import type { HandoffImage } from '../../src/handoff/schema.ts';
import { imagesOf, workloadKey, workloadRef } from '../../src/cluster/workloads.ts';
import { parseDuration } from '../../src/util/duration.ts';
import { kubeVersionOf } from '../../src/cluster/capabilities.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'ledger-'));
  dirs.push(d);
  return d;
};
const workload = { kind: 'Deployment' as const, namespace: 'shop', name: 'web', uid: 'u-1' };
const D = (c: string) => `sha256:${c.repeat(64)}`;
const image = (digest: string): HandoffImage => ({
  container: 'web',
  init: false,
  source: 'nginx:1.25',
  backup: 'r.io/m/docker.io/library/nginx:1.25',
  digest,
  platforms: ['linux/amd64'],
  sizeBytes: 10,
});

describe('handoff record schema', () => {
  const write = async (mutate: (record: Record<string, unknown>) => void) => {
    const ledger = new Ledger(tempDir());
    const { id } = await ledger.write({ workload, images: [image(D('a'))], owner: undefined, pull: { via: 'secret', secret: 'p', listedBy: 'none' } });
    const file = join(ledger.dir, `${id}.json`);
    const record = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    mutate(record);
    writeFileSync(file, JSON.stringify(record));
    return { ledger, id };
  };

  it('reads what it writes, and a record from before pull paths were recorded', async () => {
    const { ledger, id } = await write(() => {});
    assert.deepEqual(ledger.read(id).pull, { via: 'secret', secret: 'p', listedBy: 'none' });
    const older = await write((r) => delete r.pull);
    assert.equal(older.ledger.read(older.id).pull, undefined);
  });

  it('refuses a record whole, naming the field that is wrong', async () => {
    const cases: Array<[(r: Record<string, unknown>) => void, RegExp]> = [
      [(r) => ((r.images as Array<Record<string, unknown>>)[0]!.digest = 'sha256:short'), /is malformed: record\.images\[0\]\.digest is not a digest$/],
      [(r) => (r.images = []), /record\.images is empty$/],
      [(r) => delete (r.workload as Record<string, unknown>).uid, /record\.workload\.uid is not a non-empty string$/],
      [(r) => (r.pull = { via: 'secret', secret: 'p' }), /record\.pull\.listedBy is not one of pod, service-account, none$/],
      [(r) => (r.pull = { via: 'vpn' }), /record\.pull\.via is not one of anonymous, node, secret$/],
      [
        (r) => (r.owner = { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'x', sources: [{ path: 'apps' }] }),
        /record\.owner\.sources\[0\]\.repoURL is not a non-empty string$/,
      ],
      [(r) => (r.version = 2), /has version 2, written by a newer copier; this rewriter reads version 1/],
    ];
    for (const [mutate, message] of cases) {
      const { ledger, id } = await write(mutate);
      assert.throws(() => ledger.read(id), message);
      const seen: string[] = [];
      assert.deepEqual(
        ledger.pending((file, error) => seen.push(`${file}: ${error.message}`)),
        [],
      );
      assert.match(seen[0] ?? '', message, 'pending() reports it and goes on');
    }
  });

  it('refuses a file cut short', async () => {
    const { ledger, id } = await write(() => {});
    writeFileSync(join(ledger.dir, `${id}.json`), '{"version": 1, "id": ');
    assert.throws(() => ledger.read(id), new RegExp(`handoff record ${id.replace(/\./g, '\\.')} is not JSON`));
  });
});

describe('handoff ledger', () => {
  it('writes a record once; the same content again is a no-op', async () => {
    const ledger = new Ledger(tempDir());
    const first = await ledger.write({ workload, images: [image(D('a'))], owner: undefined });
    const again = await ledger.write({ workload, images: [image(D('a'))], owner: undefined });
    assert.equal(first.written, true);
    assert.equal(again.written, false);
    assert.equal(first.id, again.id);
    assert.equal(ledger.pending().length, 1);
    assert.equal(ledger.read(first.id).images[0]?.digest, D('a'));
  });

  it('gives a new record when the images change, and hides records marked done', async () => {
    const ledger = new Ledger(tempDir());
    const a = await ledger.write({ workload, images: [image(D('a'))], owner: undefined });
    const b = await ledger.write({ workload, images: [image(D('b'))], owner: undefined });
    assert.notEqual(a.id, b.id);
    await ledger.markDone(a.id, 'committed abc123');
    assert.deepEqual(
      ledger.pending().map((r) => r.id),
      [b.id],
    );
  });

  it('prunes records done longer ago than the retention, and never a pending one', async () => {
    const ledger = new Ledger(tempDir());
    const old = await ledger.write({ workload, images: [image(`sha256:${'1'.repeat(64)}`)], owner: undefined });
    const recent = await ledger.write({ workload: { ...workload, name: 'api' }, images: [image(`sha256:${'2'.repeat(64)}`)], owner: undefined });
    const pending = await ledger.write({ workload: { ...workload, name: 'db' }, images: [image(`sha256:${'3'.repeat(64)}`)], owner: undefined });
    await ledger.markDone(old.id, 'pushed');
    await ledger.markDone(recent.id, 'pushed');
    const eightDaysAgo = (Date.now() - 8 * 86_400_000) / 1000;
    utimesSync(join(ledger.dir, `${old.id}.done`), eightDaysAgo, eightDaysAgo);
    writeFileSync(join(ledger.dir, 'stray.done'), 'left by a crash between the two removals');
    utimesSync(join(ledger.dir, 'stray.done'), eightDaysAgo, eightDaysAgo);
    assert.equal(ledger.pruneDone(7 * 86_400_000), 1);
    assert.deepEqual(readdirSync(ledger.dir).sort(), [`${pending.id}.json`, `${recent.id}.done`, `${recent.id}.json`].sort());
    assert.deepEqual(ledger.pendingIds(), [pending.id]);
  });

  it('never leaves or reads half-written files', () => {
    const dir = tempDir();
    const ledger = new Ledger(dir);
    writeFileSync(join(dir, '.crashed.tmp'), '{"half');
    writeFileSync(join(dir, 'garbage.json'), '{not json');
    const errors: string[] = [];
    assert.deepEqual(
      ledger.pending((file) => errors.push(file)),
      [],
    );
    assert.deepEqual(errors, ['garbage.json']);
    ledger.sweepTemporaries();
    assert.ok(!readdirSync(dir).includes('.crashed.tmp'));
  });

  it('writes many records concurrently, each complete', async () => {
    const dir = tempDir();
    const ledger = new Ledger(dir);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        ledger.write({ workload: { ...workload, name: `w${i}`, uid: `u${i}` }, images: [image(D('a'))], owner: undefined }),
      ),
    );
    assert.ok(results.every((r) => r.written));
    assert.equal(ledger.pending().length, 200);
    assert.deepEqual(
      readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  it('derives ids from content, independent of container order', () => {
    const other: HandoffImage = { ...image(D('c')), container: 'sidecar' };
    assert.equal(recordId(workload, [image(D('a')), other]), recordId(workload, [other, image(D('a'))]));
    assert.match(recordId(workload, [image(D('a'))]), /^shop\.deployment\.web\.[0-9a-f]{16}$/);
  });
});

describe('workload images', () => {
  it('reads init containers and containers of every kind', () => {
    const spec = { initContainers: [{ name: 'i', image: 'busybox' }], containers: [{ name: 'c', image: 'nginx' }] };
    const deployment = { metadata: { name: 'd', namespace: 'n', uid: 'u' }, spec: { selector: {}, template: { spec } } };
    assert.deepEqual(imagesOf('Deployment', deployment), [
      { container: 'i', init: true, image: 'busybox' },
      { container: 'c', init: false, image: 'nginx' },
    ]);
    const cron = { spec: { schedule: '* * * * *', jobTemplate: { spec: { template: { spec } } } } };
    assert.equal(imagesOf('CronJob', cron).length, 2);
    assert.deepEqual(imagesOf('DaemonSet', {}), []);
    assert.equal(workloadKey(workloadRef('Deployment', deployment)), 'Deployment/n/d');
  });
  it('parses durations', () => {
    assert.equal(parseDuration('--x', '90s'), 90_000);
    assert.equal(parseDuration('--x', '10m'), 600_000);
    assert.equal(parseDuration('--x', '250'), 250);
    assert.equal(parseDuration('--x', '7d'), 604_800_000);
    assert.throws(() => parseDuration('--x', 'soon'), /--x must be a duration/);
  });
});

describe('refusals and the cluster capabilities beside the records', () => {
  it('keeps the last reason a pending record was refused for, bounded, until it is done', async () => {
    const ledger = new Ledger(tempDir());
    const { id } = await ledger.write({ workload, images: [image(D('a'))], owner: undefined });
    assert.equal(ledger.refusal(id), undefined);
    await ledger.markRefused(id, 'helm template web failed: first');
    await ledger.markRefused(id, `helm template web failed: ${'x'.repeat(20_000)}`);
    assert.equal(Buffer.byteLength(ledger.refusal(id)!), 8 * 1024);
    assert.deepEqual(ledger.pendingIds(), [id], 'a refused record stays pending');
    await ledger.markDone(id, 'pushed');
    assert.equal(ledger.refusal(id), undefined);
    assert.deepEqual(ledger.pending(), [], 'no file beside the records is taken for one');
  });

  it('reads back the capabilities the copier wrote, and refuses a malformed file with the field', async () => {
    const ledger = new Ledger(tempDir());
    assert.equal(ledger.capabilities(), undefined);
    await ledger.writeCapabilities({ kubeVersion: 'v1.34.4', apiVersions: ['apps/v1', 'apps/v1/Deployment', 'v1'] });
    assert.deepEqual(ledger.capabilities(), { kubeVersion: 'v1.34.4', apiVersions: ['apps/v1', 'apps/v1/Deployment', 'v1'] });
    assert.deepEqual(ledger.pending(), []);
    writeFileSync(join(ledger.dir, 'cluster-capabilities'), JSON.stringify({ kubeVersion: '1.34; rm -rf /', apiVersions: [] }));
    const errors: string[] = [];
    assert.equal(
      ledger.capabilities((e) => errors.push(e.message)),
      undefined,
    );
    assert.deepEqual(errors, ['cluster-capabilities is malformed: cluster-capabilities.kubeVersion is not a Kubernetes version (vX.Y.Z)']);
  });

  it("takes a server's version as Helm's --kube-version wants it", () => {
    assert.equal(kubeVersionOf('v1.34.4'), 'v1.34.4');
    assert.equal(kubeVersionOf('v1.30.2-eks-1a2b3c'), 'v1.30.2');
    assert.equal(kubeVersionOf('v1.31.1+k3s1'), 'v1.31.1');
    assert.throws(() => kubeVersionOf('unknown'), /a version Helm cannot read: "unknown"/);
  });
});

describe('the intake reads only what a record can be', () => {
  it('sets aside a FIFO, a link and an oversized file named like records, and keeps reading the rest', async () => {
    const ledger = new Ledger(tempDir());
    const { id } = await ledger.write({ workload, images: [image(D('a'))], owner: undefined });
    execFileSync('mkfifo', [join(ledger.dir, 'shop.deployment.fifo.0000000000000000.json')]);
    symlinkSync('/etc/hostname', join(ledger.dir, 'shop.deployment.link.0000000000000000.json'));
    const big = openSync(join(ledger.dir, 'shop.deployment.big.0000000000000000.json'), 'w');
    ftruncateSync(big, 2 * 1024 * 1024);
    closeSync(big);
    const errors: string[] = [];
    const started = Date.now();
    const records = ledger.pending((file, error) => errors.push(`${file}: ${error.message}`));
    assert.ok(Date.now() - started < 2_000, 'never blocks on the FIFO');
    assert.deepEqual(
      records.map((r) => r.id),
      [id],
    );
    assert.deepEqual(errors.sort(), [
      'shop.deployment.big.0000000000000000.json: handoff record shop.deployment.big.0000000000000000 is 2097152 bytes, more than the 1048576 a record may be',
      'shop.deployment.fifo.0000000000000000.json: handoff record shop.deployment.fifo.0000000000000000 is not a regular file',
      'shop.deployment.link.0000000000000000.json: handoff record shop.deployment.link.0000000000000000 is a symbolic link, not a file',
    ]);
    // Set aside: reported once, not read again.
    assert.deepEqual(ledger.pendingIds(), [id]);
    assert.equal(readdirSync(ledger.dir).filter((n) => n.endsWith('.rejected')).length, 3);
  });
});
