import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { forTenants } from '../../src/copier/copier.ts';
import { reconcileWorkload, type ImageOutcome } from '../../src/copier/reconcile.ts';
import { parseReference } from '../../src/image/reference.ts';
import type { CopyResult } from '../../src/registry/copy.ts';

const DIGEST = `sha256:${'c'.repeat(64)}`;
const container = (name: string, image: string, init = false) => ({ container: name, init, image });
const backedUp = (source: string, backup: string): ImageOutcome => ({
  kind: 'backed-up',
  source: parseReference(source),
  backup: parseReference(`${backup}@${DIGEST}`),
  result: { digest: DIGEST, platforms: ['linux/amd64', 'linux/arm64'], totalBytes: 1234 } as unknown as CopyResult,
});

describe("the copier's verdict on a workload", () => {
  it('every public image backed up: each moves, with the backup named by tag and pinned by digest', () => {
    const verdict = reconcileWorkload([
      { container: container('web', 'nginx:1.25'), outcome: backedUp('nginx:1.25', 'backup.io/m/nginx:1.25') },
      { container: container('setup', 'busybox:1', true), outcome: backedUp('busybox:1', 'backup.io/m/busybox:1') },
      { container: container('own', 'backup.io/m/x:1'), outcome: { kind: 'skipped', reason: 'already a backup' } },
    ]);
    assert.deepEqual(verdict, {
      kind: 'backed-up',
      moved: [
        {
          container: 'web',
          init: false,
          source: 'nginx:1.25',
          backup: 'backup.io/m/nginx:1.25',
          digest: DIGEST,
          platforms: ['linux/amd64', 'linux/arm64'],
          sizeBytes: 1234,
        },
        {
          container: 'setup',
          init: true,
          source: 'busybox:1',
          backup: 'backup.io/m/busybox:1',
          digest: DIGEST,
          platforms: ['linux/amd64', 'linux/arm64'],
          sizeBytes: 1234,
        },
      ],
    });
  });

  it('nothing public (all skipped): backed up with nothing to move', () => {
    assert.deepEqual(reconcileWorkload([{ container: container('p', 'private.io/x:1'), outcome: { kind: 'skipped', reason: 'not public' } }]), {
      kind: 'backed-up',
      moved: [],
    });
  });

  it('one failure fails the workload, whatever else went well, naming each failed container', () => {
    const verdict = reconcileWorkload([
      { container: container('web', 'nginx:1.25'), outcome: backedUp('nginx:1.25', 'backup.io/m/nginx:1.25') },
      { container: container('db', 'redis:7'), outcome: { kind: 'failed', error: new Error('GET blob … HTTP 503') } },
      { container: container('cache', 'memcached:1'), outcome: { kind: 'failed', error: new Error('push refused: 413') } },
      { container: container('side', 'envoy:1'), outcome: { kind: 'not-pullable', backup: 'b/envoy:1@x', reason: '401' } },
    ]);
    assert.deepEqual(verdict, { kind: 'failed', failed: 2, message: 'db: GET blob … HTTP 503; cache: push refused: 413' });
  });

  it('a backup the nodes cannot pull holds the whole workload back, and says how to fix it', () => {
    const verdict = reconcileWorkload([
      { container: container('web', 'nginx:1.25'), outcome: backedUp('nginx:1.25', 'backup.io/m/nginx:1.25') },
      { container: container('side', 'envoy:1'), outcome: { kind: 'not-pullable', backup: `backup.io/m/envoy:1@${DIGEST}`, reason: 'anonymous pull: 401' } },
    ]);
    assert.equal(verdict.kind, 'not-pullable');
    assert.match(
      verdict.kind === 'not-pullable' ? verdict.message : '',
      /could not pull backup\.io\/m\/envoy:1@sha256:c+ \(side: anonymous pull: 401\)\. .*--backup-pull node/,
    );
  });

  it('a signature that does not verify at the backup holds the workload back; one that does is carried in the record', () => {
    const signature = { verified: true, key: '/keys/acme.pub', scheme: 'sigstore bundle' } as const;
    const verdict = reconcileWorkload([
      { container: container('web', 'nginx:1.25'), outcome: { ...backedUp('nginx:1.25', 'backup.io/m/nginx:1.25'), signature } as ImageOutcome },
      {
        container: container('side', 'envoy:1'),
        outcome: { kind: 'not-verified', backup: `backup.io/m/envoy:1@${DIGEST}`, reason: 'no signature at the backup' },
      },
    ]);
    assert.deepEqual(verdict, {
      kind: 'not-verified',
      message: `backed up, but not proposed: the signature --verify-signature asks for does not verify at the backup backup.io/m/envoy:1@${DIGEST} (side: no signature at the backup)`,
    });
    const signed = reconcileWorkload([
      { container: container('web', 'nginx:1.25'), outcome: { ...backedUp('nginx:1.25', 'backup.io/m/nginx:1.25'), signature } as ImageOutcome },
    ]);
    assert.deepEqual(signed.kind === 'backed-up' && signed.moved[0]!.signature, { key: '/keys/acme.pub', scheme: 'sigstore bundle' });
  });
});

describe('what a workload Event says of a failure', () => {
  it('masks every URL (a redirect target, a token realm) and stays short', () => {
    const said = forTenants(
      `web: GET https://registry.example/v2/app/blobs/sha256:1: redirected to http://10.0.0.7:8080/admin?x=1, answered "internal" ${'x'.repeat(600)}`,
    );
    assert.doesNotMatch(said, /10\.0\.0\.7|registry\.example\/v2|admin/);
    assert.match(said, /^web: GET <url> redirected to <url>, answered/);
    assert.ok(said.length < 460);
  });
});
