import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { parseSignaturePolicy } from '../../src/image/signature-policy.ts';
import { parseReference } from '../../src/image/reference.ts';

const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const PUBLIC = publicKey.export({ type: 'spki', format: 'pem' }).toString();
const PRIVATE = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
// A self-signed certificate (openssl, once) standing for an authority: the roots below are only parsed.
const CERTIFICATE = {
  rawBytes:
    'MIIB1zCCAX2gAwIBAgIUSrxHxRy0b+pvfgKdspPisNslTdUwCgYIKoZIzj0EAwIwQDElMCMGA1UECgwcaW1hZ2UtY2xvbmUtY29udHJvbGxlciB0ZXN0czEXMBUGA1UEAwwOdW5pdC10ZXN0IHJvb3QwIBcNMjYxMjA0MTIxNTIzWhgPMjEyNjExMTAxMjE1MjNaMEAxJTAjBgNVBAoMHGltYWdlLWNsb25lLWNvbnRyb2xsZXIgdGVzdHMxFzAVBgNVBAMMDnVuaXQtdGVzdCByb290MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEu8T211y96IuLjdeeFeEY8go7sBRUd6rOtiXr+AKkTQr/WBTkRvvFzZqsvzOOWo/3+E/JvdohNGgPis8gqEArn6NTMFEwHQYDVR0OBBYEFCjjiY9ZyIQ5dkJR0/pjhIrbVIi+MB8GA1UdIwQYMBaAFCjjiY9ZyIQ5dkJR0/pjhIrbVIi+MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAJcqmm32DA6wNbBrXOm06SMoq6aCopIcVSdjvqfj42CKAiB1zIF3H52sLXGYehx8y48AgaH5wIEweJMelUchb0h7BQ==',
};
const authority = {
  subject: { organization: 'test', commonName: 'test' },
  uri: 'https://ca.test',
  certChain: { certificates: [CERTIFICATE] },
  validFor: { start: '2026-01-01T00:00:00Z' },
};
const trustedRoot = (fields: object) =>
  JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], ctlogs: [], ...fields });
const files: Record<string, string> = {
  '/keys/acme.pub': PUBLIC,
  '/keys/other.pub': PUBLIC,
  '/keys/cosign.key': PRIVATE,
  '/keys/junk.pub': 'not a key',
  '/trust/root.json': trustedRoot({ certificateAuthorities: [authority], timestampAuthorities: [authority] }),
  '/trust/no-ca.json': trustedRoot({ certificateAuthorities: [], timestampAuthorities: [authority] }),
  '/trust/no-time.json': trustedRoot({ certificateAuthorities: [authority], timestampAuthorities: [] }),
  '/trust/log-unbounded.json': trustedRoot({
    certificateAuthorities: [authority],
    timestampAuthorities: [],
    tlogs: [
      {
        baseUrl: 'https://log.test',
        hashAlgorithm: 'SHA2_256',
        publicKey: { rawBytes: CERTIFICATE.rawBytes, keyDetails: 'PKIX_ECDSA_P256_SHA_256', validFor: {} },
        logId: { keyId: 'AA==' },
      },
    ],
  }),
};
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
      policy.trustFor(parseReference('ghcr.io/acme/api/server:1.2'))?.map((k) => k.name),
      ['/keys/acme.pub', '/keys/other.pub'],
    );
    assert.deepEqual(
      policy.trustFor(parseReference('nginx:1.27'))?.map((k) => k.name),
      ['/keys/other.pub'],
    );
    assert.equal(policy.trustFor(parseReference('ghcr.io/other/api:1')), undefined);
    // The same registry spelled another way does not escape the rule.
    for (const spelled of ['GHCR.IO/acme/api:1', 'ghcr.io:443/acme/api:1']) assert.equal(policy.trustFor(parseReference(spelled))?.length, 2, spelled);
    for (const spelled of ['registry-1.docker.io/library/nginx:1', 'index.docker.io/library/nginx:1', 'docker.io/library/nginx:1'])
      assert.equal(policy.trustFor(parseReference(spelled))?.length, 1, spelled);
    assert.equal(policy.trustFor(parseReference('ghcr.io/acmeco/api:1')), undefined);
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

  it('reads a keyless policy: the identity glob anchored, the issuer exact, the trusted root checked at start-up', () => {
    const policy = parseSignaturePolicy(
      ['ghcr.io/acme/*=keyless:issuer=https://token.actions.githubusercontent.com,identity=https://github.com/acme/*,root=/trust/root.json'],
      read,
    );
    const [trust] = policy.trustFor(parseReference('ghcr.io/acme/api:1'))!;
    assert.equal(trust!.kind, 'keyless');
    assert.equal(trust!.name, 'https://github.com/acme/* from https://token.actions.githubusercontent.com');
    const pattern = trust!.certificate!.identityPattern;
    assert.equal(pattern.test('https://github.com/acme/api/.github/workflows/release.yml@refs/tags/v1'), true);
    for (const other of ['https://github.com/acme-evil/x', 'https://evil.test/?https://github.com/acme/x', 'HTTPS://GITHUB.COM/acme/x'])
      assert.equal(pattern.test(other), false, other);
    assert.equal(trust!.certificate!.issuer, 'https://token.actions.githubusercontent.com');
  });

  it('refuses a keyless policy it cannot use, naming what is wrong', () => {
    const flag = (spec: string) => () => parseSignaturePolicy([`ghcr.io/acme/*=keyless:${spec}`], read);
    const full = 'issuer=https://issuer.test,identity=https://github.com/acme/*';
    assert.throws(flag('issuer=https://issuer.test,identity=x'), /issuer=URL, identity=GLOB and root=PATH are all required/);
    assert.throws(
      flag(`${full},root=/trust/root.json,root=/trust/root.json`),
      /"root=\/trust\/root\.json" is not one of issuer=URL, identity=GLOB, root=PATH \(each once\)/,
    );
    assert.throws(flag(`${full},subject=x,root=/trust/root.json`), /"subject=x" is not one of/);
    assert.throws(flag('issuer=token.actions,identity=x,root=/trust/root.json'), /the issuer "token.actions" is not a URL/);
    assert.throws(flag(`${full},root=/trust/none.json`), /the trusted root \/trust\/none\.json is not readable as a Sigstore trusted root, JSON \(ENOENT/);
    assert.throws(flag(`${full},root=/keys/acme.pub`), /the trusted root \/keys\/acme\.pub is not readable as a Sigstore trusted root/);
    assert.throws(flag(`${full},root=/trust/no-ca.json`), /lists no certificate authority/);
    assert.throws(flag(`${full},root=/trust/no-time.json`), /lists neither a timestamp authority nor a transparency log/);
    // Sigstore's conformance case trust-root-tlog-missing-validity-start_fail: refused, not read as unbounded.
    assert.throws(flag(`${full},root=/trust/log-unbounded.json`), /has a log \(https:\/\/log\.test\) whose key has no validity start/);
  });
});
