import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CredentialFiles, loadSecretDir } from '../../src/registry/credential-files.ts';
import { createLogger } from '../../src/observability/log.ts';

const root = mkdtempSync(join(tmpdir(), 'secret-'));
after(() => rmSync(root, { recursive: true, force: true }));
const dir = (name: string, files: Record<string, string>) => {
  const d = join(root, name);
  mkdirSync(d);
  for (const [f, content] of Object.entries(files)) writeFileSync(join(d, f), content);
  return d;
};

describe('registry Secret directories', () => {
  it("reads the original controller's docker-server / docker-username / docker-password keys", () => {
    const store = loadSecretDir(dir('keys', { 'docker-server': 'https://index.docker.io/v1/\n', 'docker-username': 'me\n', 'docker-password': 's3cret\n' }));
    assert.deepEqual(store.get('docker.io'), { username: 'me', password: 's3cret' });
  });
  it('reads a kubernetes.io/dockerconfigjson Secret', () => {
    const store = loadSecretDir(dir('json', { '.dockerconfigjson': JSON.stringify({ auths: { 'backup.example.com': { username: 'u', password: 'p' } } }) }));
    assert.deepEqual(store.get('backup.example.com'), { username: 'u', password: 'p' });
  });
  it('names the missing key of a partial Secret', () => {
    assert.throws(
      () => loadSecretDir(dir('partial', { 'docker-server': 'r.io', 'docker-username': 'u' })),
      /has docker-server, docker-username but not docker-password/,
    );
  });
  it('keeps the previous credentials when a reload finds a broken file', () => {
    const lines: string[] = [];
    const d = dir('reload', { '.dockerconfigjson': JSON.stringify({ auths: { 'r.io': { username: 'u', password: 'one' } } }) });
    const files = new CredentialFiles({ secretDir: d, logger: createLogger({ write: (l) => void lines.push(l) }) });
    writeFileSync(join(d, '.dockerconfigjson'), '{broken');
    files.reload();
    assert.deepEqual(files.current().get('r.io'), { username: 'u', password: 'one' });
    assert.match(lines.join(''), /not reloaded; keeping the previous ones/);
    assert.ok(!lines.join('').includes('one"'), 'no password in the log');
  });
});
