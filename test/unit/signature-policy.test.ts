import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseSignaturePolicy } from '../../src/image/signature-policy.ts';
import { parseReference } from '../../src/image/reference.ts';

const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const PUBLIC = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const PRIVATE = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const files: Record<string, string> = { '/keys/acme.pub': PUBLIC, '/keys/other.pub': PUBLIC, '/keys/cosign.key': PRIVATE, '/keys/junk.pub': 'not a key' };
const read = (path: string) => {
  if (!(path in files)) throw new Error(`ENOENT: no such file ${path}`);
  return files[path]!;
};

describe('--verify-signature', () => {
  it('gives the keys of every pattern that matches the source registry/repository, and none where no pattern does', () => {
    const policy = parseSignaturePolicy(
      ['ghcr.io/acme/*=key:/keys/acme.pub', 'ghcr.io/acme/*=key:/keys/other.pub', 'docker.io/library/nginx=key:/keys/other.pub'],
      read,
    );
    assert.deepEqual(
      policy.keysFor(parseReference('ghcr.io/acme/api/server:1.2'))?.map((k) => k.name),
      ['/keys/acme.pub', '/keys/other.pub'],
    );
    assert.deepEqual(
      policy.keysFor(parseReference('nginx:1.27'))?.map((k) => k.name),
      ['/keys/other.pub'],
    );
    assert.equal(policy.keysFor(parseReference('ghcr.io/other/api:1')), undefined);
    // The same registry spelled another way does not escape the rule.
    for (const spelled of ['GHCR.IO/acme/api:1', 'ghcr.io:443/acme/api:1']) assert.equal(policy.keysFor(parseReference(spelled))?.length, 2, spelled);
    for (const spelled of ['registry-1.docker.io/library/nginx:1', 'index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'])
      assert.equal(policy.keysFor(parseReference(spelled))?.length, 1, spelled);
    assert.equal(policy.keysFor(parseReference('ghcr.io/acmeco/api:1')), undefined);
  });

  it('refuses at start-up what it cannot use, naming the flag: no key part, a pattern that is no repository, a file missing or not a key, a private key', () => {
    assert.throws(() => parseSignaturePolicy(['ghcr.io/acme/*'], read), /--verify-signature "ghcr.io\/acme\/\*": expected PATTERN=key:PATH/);
    assert.throws(() => parseSignaturePolicy(['acme=key:/keys/acme.pub'], read), /"acme" is not a registry\/repository pattern/);
    assert.throws(
      () => parseSignaturePolicy(['ghcr.io/acme/*=key:/keys/none.pub'], read),
      /the key \/keys\/none\.pub is not readable as a PEM public key \(ENOENT/,
    );
    assert.throws(() => parseSignaturePolicy(['ghcr.io/acme/*=key:/keys/junk.pub'], read), /the key \/keys\/junk\.pub is not readable as a PEM public key/);
    assert.throws(() => parseSignaturePolicy(['ghcr.io/acme/*=key:/keys/cosign.key'], read), /holds a private key; give the public one/);
  });
});
