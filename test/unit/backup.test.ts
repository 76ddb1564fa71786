import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ImageReferenceError } from '../../src/errors.ts';
import { backupReference, isInBackupTarget, parseBackupTarget } from '../../src/image/backup.ts';
import { formatReference, parseReference } from '../../src/image/reference.ts';

const D = `sha256:${'b'.repeat(64)}`;
const backup = (source: string, target: string, layout: 'nested' | 'flat' = 'nested') =>
  formatReference(backupReference(parseReference(source), parseBackupTarget(target, layout)));

describe('backup mapping, nested layout', () => {
  it('puts the source host in a component of its own', () => {
    assert.equal(backup('nginx:1.25', 'backup.example.com/mirror'), 'backup.example.com/mirror/docker.io/library/nginx:1.25');
    assert.equal(backup('quay.io/nginx:1.25', 'backup.example.com/mirror'), 'backup.example.com/mirror/quay.io/nginx:1.25');
  });
  it('encodes a source port without colliding with a path', () => {
    assert.equal(backup('localhost:5000/app:v1', '127.0.0.1:6000'), '127.0.0.1:6000/localhost_5000/app:v1');
    assert.notEqual(backup('localhost:5000/app', '127.0.0.1:6000'), backup('localhost/5000/app', '127.0.0.1:6000'));
  });
  it('makes the implicit latest explicit and keeps a pinned digest', () => {
    assert.equal(backup('nginx', 'r.io/p'), 'r.io/p/docker.io/library/nginx:latest');
    assert.equal(backup(`nginx:1@${D}`, 'r.io/p'), `r.io/p/docker.io/library/nginx:1@${D}`);
    assert.equal(backup(`nginx@${D}`, 'r.io/p'), `r.io/p/docker.io/library/nginx:sha256-${'b'.repeat(64)}@${D}`);
  });
  it('refuses names longer than the grammar allows', () => {
    assert.throws(() => backup(`example.com/${'abcdefgh/'.repeat(26)}xxxxx`, 'r.io/p'), ImageReferenceError);
  });
  it('knows what already lives in the backup registry', () => {
    const target = parseBackupTarget('r.io/p');
    assert.ok(isInBackupTarget(parseReference('r.io/p/docker.io/library/nginx'), target));
    assert.ok(!isInBackupTarget(parseReference('r.io/other/nginx'), target));
    assert.ok(!isInBackupTarget(parseReference('nginx'), target));
  });
});

describe('backup mapping, flat layout (Docker Hub namespace/name)', () => {
  it('joins host and path into one readable name when that is reversible', () => {
    assert.equal(backup('nginx:1.25', 'docker.io/mybackups', 'flat'), 'docker.io/mybackups/docker.io_library_nginx:1.25');
    assert.equal(backup('quay.io/nginx', 'docker.io/mybackups', 'flat'), 'docker.io/mybackups/quay.io_nginx:latest');
  });
  it('adds a hash where the join alone could collide', () => {
    const a = backup('ghcr.io/a_b/c', 'docker.io/ns', 'flat');
    const b = backup('ghcr.io/a/b_c', 'docker.io/ns', 'flat');
    assert.notEqual(a, b);
    assert.match(a, /__[0-9a-f]{12}:latest$/);
    const withPort = backup('localhost:5000/foo', 'docker.io/ns', 'flat');
    const withPath = backup('localhost/5000/foo', 'docker.io/ns', 'flat');
    assert.notEqual(withPort, withPath);
  });
  it('needs exactly one namespace', () => {
    assert.throws(() => parseBackupTarget('docker.io/a/b', 'flat'), /exactly one namespace/);
  });
});

describe('parseBackupTarget', () => {
  it('accepts host, host:port, and prefixes', () => {
    assert.deepEqual(parseBackupTarget('127.0.0.1:5000'), { registry: '127.0.0.1:5000', prefix: '', layout: 'nested' });
    assert.deepEqual(parseBackupTarget('localhost/a/b/'), { registry: 'localhost', prefix: 'a/b', layout: 'nested' });
  });
  it('rejects what is not a registry', () => {
    assert.throws(() => parseBackupTarget('mybackups'), /must be a host name/);
    assert.throws(() => parseBackupTarget('r.io/Upper'), /not a valid backup registry/);
    assert.throws(() => parseBackupTarget(''), /empty/);
  });
});
