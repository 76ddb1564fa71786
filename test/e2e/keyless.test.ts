/**
 * Keyless signatures verified at the backup (--verify-signature PATTERN=keyless:issuer=…,identity=…,root=…):
 * images signed by the real cosign with a certificate from a Fulcio-shaped authority (openssl) and
 * timestamped by Sigstore's own timestamp authority, in both schemes cosign writes (a Sigstore bundle,
 * and the legacy .sig tag with the certificate and the timestamp beside the signature), copied by the
 * engine between a registry with the referrers API and Debian's docker-registry 2.8 without it. The
 * trusted root is the one `cosign trusted-root create` writes, given offline. Our verdict must agree
 * with `cosign verify` on every image: the right identity verifies; another identity, another issuer or
 * another authority does not, each with its reason. One difference, by design: a signature no timestamp
 * vouches for is refused here, where cosign with --insecure-ignore-tlog checks it at the present time.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  issueSigningCertificate,
  makeCertificateAuthority,
  startTimestampAuthority,
  writeTrustedRoot,
  type SigningCertificate,
  type TimestampAuthority,
} from '../../devenv/keyless-signing.ts';
import { referrersTools, startReferrersRegistry, type ReferrersRegistry } from '../../devenv/referrers-registry.ts';
import { run } from '../../devenv/process.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { seedImage } from '../../devenv/seed.ts';
import { parseReference } from '../../src/image/reference.ts';
import { parseSignaturePolicy } from '../../src/image/signature-policy.ts';
import { createRegistryStack } from '../../src/registry/index.ts';
import { verifyBackupSignature, type SignatureVerdict } from '../../src/registry/signatures.ts';

const ISSUER = 'https://issuer.example.test';
const IDENTITY = 'https://git.example.test/acme/app/.ci/release.yml@refs/heads/main';

describe('keyless signatures verify at the backup as cosign verifies them', () => {
  let withApi: ReferrersRegistry;
  let withoutApi: RegistryServer;
  let tsa: TimestampAuthority;
  let work: string;
  let root: string;
  const signers: Record<string, SigningCertificate> = {};
  const env = () => ({ ...process.env, COSIGN_PASSWORD: '', HOME: work });
  const cosign = (...args: string[]) => run(referrersTools().cosign, args, undefined, { env: env(), cwd: work });

  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'image-clone-keyless-'));
    [withApi, withoutApi, tsa] = await Promise.all([startReferrersRegistry(), startRegistryServer(), startTimestampAuthority()]);
    await makeCertificateAuthority(work);
    root = await writeTrustedRoot(work, tsa);
    signers.release = await issueSigningCertificate(work, 'release', IDENTITY, ISSUER);
    signers.impostor = await issueSigningCertificate(work, 'impostor', 'https://git.example.test/acme-evil/app/.ci/release.yml@refs/heads/main', ISSUER);
    signers.otherIssuer = await issueSigningCertificate(work, 'other-issuer', IDENTITY, 'https://issuer.evil.test');
    // The same identity and issuer from an authority the root does not list.
    const elsewhere = join(work, 'elsewhere');
    mkdirSync(elsewhere);
    await makeCertificateAuthority(elsewhere);
    signers.untrusted = await issueSigningCertificate(elsewhere, 'untrusted', IDENTITY, ISSUER);
  });
  after(async () => {
    await Promise.all([withApi?.stop(), withoutApi?.stop(), tsa?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  let images = 0;
  /** A new image at `server`, signed by `signer` in both of cosign's schemes (timestamped unless told). */
  async function signed(server: { address: string; url: string }, signer: SigningCertificate, timestamped = true) {
    const repository = `team/app${++images}`;
    const image = await seedImage({ url: server.url }, { repository, tag: 'v1', format: 'oci', layers: [{ seed: `keyless-${images}`, size: 4096 }] });
    const at = `${server.address}/${repository}@${image.digest}`;
    const flags = [
      '--key',
      signer.key,
      '--certificate',
      signer.certificate,
      '--certificate-chain',
      signer.chain,
      '--tlog-upload=false',
      '--use-signing-config=false',
    ];
    if (timestamped) flags.push('--timestamp-server-url', tsa.url);
    await cosign('sign', ...flags, '--allow-http-registry', '-y', at);
    await cosign('sign', ...flags, '--new-bundle-format=false', '--allow-http-registry', '-y', at);
    return { repository, digest: image.digest };
  }

  /** cosign's own verdict on `reference` in one scheme, with the same root, identity and issuer. */
  async function cosignVerifies(reference: string, bundle: boolean, identity = IDENTITY): Promise<boolean> {
    const args = ['verify', '--trusted-root', root, '--certificate-identity-regexp', `^${identity.replaceAll('.', '\\.').replaceAll('*', '.*')}$`];
    args.push('--certificate-oidc-issuer', ISSUER, '--insecure-ignore-tlog=true', '--insecure-ignore-sct=true', '--allow-http-registry');
    return cosign(...args, `--new-bundle-format=${bundle}`, reference).then(
      () => true,
      () => false,
    );
  }

  /** Copies `image` from `source` to `backup` (only cosign's .sig tag where `sigTagOnly`) and verifies it there. */
  async function backUpAndVerify(
    image: { repository: string; digest: string },
    source: { address: string },
    backup: { address: string },
    options: { sigTagOnly?: boolean; identity?: string } = {},
  ): Promise<SignatureVerdict> {
    const mirror = `backup/${image.repository}${options.sigTagOnly ? '-sig' : ''}`;
    const stack = createRegistryStack({
      insecureRegistries: [source.address, backup.address],
      ...(options.sigTagOnly ? { referrers: { mode: 'signatures', artifactTypes: ['application/vnd.dev.cosign.artifact.sig.v1+json'] } } : {}),
    });
    try {
      const result = await stack.engine.copy({
        source: parseReference(`${source.address}/${image.repository}:v1`),
        destination: parseReference(`${backup.address}/${mirror}:v1`),
      });
      assert.notEqual(result.outcome, 'failed');
      const trust = parseSignaturePolicy([`${source.address}/*=keyless:issuer=${ISSUER},identity=${options.identity ?? IDENTITY},root=${root}`]).trustFor(
        parseReference(`${source.address}/${image.repository}`),
      )!;
      const call = <T>(operation: () => Promise<T>) => operation();
      return await verifyBackupSignature(stack.client, { registry: backup.address, repository: mirror }, image.digest, trust, call);
    } finally {
      await stack.close();
    }
  }

  for (const [from, to] of [
    ['with the referrers API', 'without it (distribution 2.8)'],
    ['without it (distribution 2.8)', 'with the referrers API'],
  ] as const) {
    it(`the right identity verifies in both schemes, from a registry ${from} to one ${to}, and cosign agrees`, async () => {
      const [source, backup] = from.startsWith('with ') ? [withApi, withoutApi] : [withoutApi, withApi];
      const image = await signed(source, signers.release!);
      const name = `${IDENTITY} from ${ISSUER}`;
      assert.deepEqual(await backUpAndVerify(image, source, backup), { verified: true, key: name, scheme: 'sigstore bundle', signer: IDENTITY });
      assert.deepEqual(await backUpAndVerify(image, source, backup, { sigTagOnly: true }), {
        verified: true,
        key: name,
        scheme: 'cosign .sig tag',
        signer: IDENTITY,
      });
      const there = `${backup.address}/backup/${image.repository}@${image.digest}`;
      assert.equal(await cosignVerifies(there, true), true);
      assert.equal(await cosignVerifies(there, false), true);
      // A glob over the identity: the repository's workflows, anchored (acme-evil is not acme).
      const glob = await backUpAndVerify(image, source, backup, { identity: 'https://git.example.test/acme/*' });
      assert.equal(glob.verified, true, JSON.stringify(glob));
    });
  }

  it('a key-signed image whose signature carries a timestamp (or a log entry) verifies with the key alone, as cosign verifies it', async () => {
    // cosign adds what its signing config names (Rekor by default, here the timestamp authority);
    // a key policy trusts the key, and must not fail for want of the timestamp authority's chain.
    await cosign('generate-key-pair');
    const repository = `team/keyed${++images}`;
    const image = await seedImage({ url: withApi.url }, { repository, tag: 'v1', format: 'oci', layers: [{ seed: `keyed-${images}`, size: 4096 }] });
    const at = `${withApi.address}/${repository}@${image.digest}`;
    const flags = [
      '--key',
      'cosign.key',
      '--tlog-upload=false',
      '--use-signing-config=false',
      '--timestamp-server-url',
      tsa.url,
      '--allow-http-registry',
      '-y',
    ];
    await cosign('sign', ...flags, at);
    await cosign('sign', ...flags, '--new-bundle-format=false', at);
    for (const sigTagOnly of [false, true]) {
      const mirror = `backup/${repository}${sigTagOnly ? '-sig' : ''}`;
      const stack = createRegistryStack({
        insecureRegistries: [withApi.address, withoutApi.address],
        ...(sigTagOnly ? { referrers: { mode: 'signatures', artifactTypes: ['application/vnd.dev.cosign.artifact.sig.v1+json'] } } : {}),
      });
      try {
        await stack.engine.copy({
          source: parseReference(`${withApi.address}/${repository}:v1`),
          destination: parseReference(`${withoutApi.address}/${mirror}:v1`),
        });
        const trust = parseSignaturePolicy([`${withApi.address}/*=key:${join(work, 'cosign.pub')}`]).trustFor(
          parseReference(`${withApi.address}/${repository}`),
        )!;
        const verdict = await verifyBackupSignature(stack.client, { registry: withoutApi.address, repository: mirror }, image.digest, trust, (operation) =>
          operation(),
        );
        assert.deepEqual(verdict, { verified: true, key: join(work, 'cosign.pub'), scheme: sigTagOnly ? 'cosign .sig tag' : 'sigstore bundle' });
      } finally {
        await stack.close();
      }
    }
    await cosign(
      'verify',
      '--key',
      'cosign.pub',
      '--insecure-ignore-tlog=true',
      '--allow-http-registry',
      `${withoutApi.address}/backup/${repository}@${image.digest}`,
    );
  });

  it('another identity, another issuer, another authority or no timestamp does not verify, each with its reason, and cosign agrees', async () => {
    const cases: Array<[string, SigningCertificate, boolean, RegExp]> = [
      [
        'impostor',
        signers.impostor!,
        true,
        /signed by "https:\/\/git\.example\.test\/acme-evil\/app\/\.ci\/release\.yml@refs\/heads\/main", not https:\/\/git\.example\.test\/acme\/app\//,
      ],
      [
        'other issuer',
        signers.otherIssuer!,
        true,
        /signed by "https:\/\/git\.example\.test\/acme\/app\/.*" from "https:\/\/issuer\.evil\.test", not from https:\/\/issuer\.example\.test/,
      ],
      ['untrusted authority', signers.untrusted!, true, /Failed to verify certificate chain/],
      ['no timestamp', signers.release!, false, /expected 1 timestamps, got 0/],
    ];
    for (const [what, signer, timestamped, reason] of cases) {
      const image = await signed(withApi, signer, timestamped);
      const verdict = await backUpAndVerify(image, withApi, withoutApi);
      assert.equal(verdict.verified, false, what);
      const why = (verdict as { reason: string }).reason;
      assert.match(
        why,
        /^2 signatures at the backup, none verified with https:\/\/git\.example\.test\/acme\/app\/\.ci\/release\.yml@refs\/heads\/main from https:\/\/issuer\.example\.test \(/,
        what,
      );
      assert.match(why, reason, `${what}: ${why}`);
      const there = `${withoutApi.address}/backup/${image.repository}@${image.digest}`;
      // Without a timestamp, cosign --insecure-ignore-tlog checks the certificate at the present time and
      // accepts; a signing time nobody vouches for is not enough here (Sigstore's verification spec).
      const cosignAccepts = what === 'no timestamp';
      assert.equal(await cosignVerifies(there, true), cosignAccepts, `cosign on the ${what} bundle`);
      assert.equal(await cosignVerifies(there, false), cosignAccepts, `cosign on the ${what} .sig tag`);
    }
    // Glob anchoring: acme/* does not take acme-evil's workflow.
    const impostor = await signed(withApi, signers.impostor!);
    const verdict = await backUpAndVerify(impostor, withApi, withoutApi, { identity: 'https://git.example.test/acme/*' });
    assert.equal(verdict.verified, false);
    assert.equal(
      await cosignVerifies(`${withoutApi.address}/backup/${impostor.repository}@${impostor.digest}`, true, 'https://git.example.test/acme/*'),
      false,
    );
  });
});
