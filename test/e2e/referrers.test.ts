/**
 * Signatures, SBOMs and attestations made by the real tools travel with the backup: an image of two
 * platforms signed by cosign (v3: a Sigstore bundle through the referrers API or the fallback tag,
 * and the legacy `.sig` tag), attested by cosign, an SBOM attached by oras and that SBOM signed by
 * cosign; copied by the engine between a registry with the OCI 1.1 referrers API
 * (devenv/referrers-registry) and Debian's `docker-registry` 2.8 without it, in all four directions.
 * At the backup, `cosign verify` and `cosign verify-attestation` pass with the key, and `oras discover`
 * lists the same referrers, digest for digest, as at the source. A local key, no transparency log.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { referrersTools, startReferrersRegistry, type ReferrersRegistry } from '../../devenv/referrers-registry.ts';
import { run } from '../../devenv/process.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { seedBlob, seedImage } from '../../devenv/seed.ts';
import { parseReference } from '../../src/image/reference.ts';
import { parseSignaturePolicy } from '../../src/image/signature-policy.ts';
import { createRegistryStack } from '../../src/registry/index.ts';
import { verifyBackupSignature } from '../../src/registry/signatures.ts';

type Server = { readonly address: string; readonly url: string; stop(): Promise<void> };
interface Discovered {
  readonly digest: string;
  readonly artifactType?: string;
  readonly referrers?: readonly Discovered[];
}

describe('what the real cosign and oras attach travels with the backup', () => {
  let withApi: ReferrersRegistry;
  let withoutApi: RegistryServer;
  let work: string;
  const env = { ...process.env, COSIGN_PASSWORD: '', COSIGN_YES: 'true' };
  const cosign = (...args: string[]) => run(referrersTools().cosign, args, undefined, { env, cwd: work });
  const oras = (...args: string[]) => run(referrersTools().oras, args, undefined, { cwd: work });
  const signing = ['--key', 'cosign.key', '--tlog-upload=false', '--use-signing-config=false', '--allow-http-registry'];
  const verifying = ['--key', 'cosign.pub', '--insecure-ignore-tlog=true', '--allow-http-registry'];

  before(async () => {
    [withApi, withoutApi] = await Promise.all([startReferrersRegistry(), startRegistryServer()]);
    work = mkdtempSync(join(tmpdir(), 'image-clone-referrers-'));
    await cosign('generate-key-pair');
    mkdirSync(join(work, 'other'));
    await run(referrersTools().cosign, ['generate-key-pair'], undefined, { env, cwd: join(work, 'other') });
    writeFileSync(join(work, 'sbom.spdx.json'), JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'app', packages: [] }));
    writeFileSync(join(work, 'provenance.json'), JSON.stringify({ buildType: 'https://example.com/build/v1', builder: { id: 'ci' } }));
  });
  after(async () => {
    await Promise.all([withApi?.stop(), withoutApi?.stop()]);
    if (work) rmSync(work, { recursive: true, force: true });
  });

  /** What `oras discover` finds referring to `reference`, to the depth it goes, as sorted lines. */
  async function discover(reference: string): Promise<string[]> {
    const tree = JSON.parse(await oras('discover', '--plain-http', '--format', 'json', reference)) as Discovered;
    const lines: string[] = [];
    const walk = (node: Discovered, depth: number) => {
      for (const r of node.referrers ?? []) {
        lines.push(`${depth} ${r.artifactType} ${r.digest}`);
        walk(r, depth + 1);
      }
    };
    walk(tree, 0);
    return lines.sort();
  }

  const sources = new Map<string, { repository: string; digest: string; sbom: string; expected: string[] }>();
  async function signedAt(server: Server): Promise<{ repository: string; digest: string; sbom: string; expected: string[] }> {
    const known = sources.get(server.address);
    if (known) return known;
    const repository = 'team/signed';
    const image = await seedImage(
      { url: server.url },
      {
        repository,
        tag: 'v1',
        format: 'oci',
        layers: [{ seed: `signed-${server.address}`, size: 32 * 1024 }],
        platforms: [
          { os: 'linux', architecture: 'amd64' },
          { os: 'linux', architecture: 'arm64' },
        ],
      },
    );
    const at = `${server.address}/${repository}@${image.digest}`;
    await cosign('sign', ...signing, at);
    await cosign('sign', ...signing, '--new-bundle-format=false', at);
    await cosign('attest', ...signing, '--predicate', 'provenance.json', '--type', 'slsaprovenance', at);
    const attached = JSON.parse(await oras('attach', '--plain-http', '--format', 'json', '--artifact-type', 'application/spdx+json', at, 'sbom.spdx.json')) as {
      digest: string;
    };
    await cosign('sign', ...signing, `${server.address}/${repository}@${attached.digest}`);
    const expected = await discover(at);
    // A signature and an attestation (bundles), the SBOM, and the SBOM's signature under it.
    assert.equal(expected.length, 4, expected.join('\n'));
    const seeded = { repository, digest: image.digest, sbom: attached.digest, expected };
    sources.set(server.address, seeded);
    return seeded;
  }

  it('a signature tampered with at the backup does not verify, with the reason; the legacy .sig tag alone verifies when intact', async () => {
    const seeded = await signedAt(withApi);
    const mirror = `tampered/${seeded.repository}`;
    // Only cosign's .sig tag travels (the bundles are of another artifact type).
    const stack = createRegistryStack({
      insecureRegistries: [withApi.address, withoutApi.address],
      referrers: { mode: 'signatures', artifactTypes: ['application/vnd.dev.cosign.artifact.sig.v1+json'] },
    });
    const keys = parseSignaturePolicy([`${withApi.address}/*=key:${join(work, 'cosign.pub')}`]).trustFor(parseReference(`${withApi.address}/x`))!;
    const backupRepo = { registry: withoutApi.address, repository: mirror };
    const call = <T>(operation: () => Promise<T>) => operation();
    try {
      const result = await stack.engine.copy({
        source: parseReference(`${withApi.address}/${seeded.repository}:v1`),
        destination: parseReference(`${withoutApi.address}/${mirror}:v1`),
      });
      assert.equal(result.referrers.copied, 1);
      assert.deepEqual(await verifyBackupSignature(stack.client, backupRepo, seeded.digest, keys, call), {
        verified: true,
        key: join(work, 'cosign.pub'),
        scheme: 'cosign .sig tag',
      });
      // At the backup, the signed payload is changed and the tag moved to it: the signature no longer matches.
      const tag = `${seeded.digest.replace(':', '-')}.sig`;
      const manifest = JSON.parse((await stack.client.getManifest(backupRepo, tag)).bytes.toString('utf8')) as {
        layers: Array<{ digest: string; size: number }>;
      };
      const payload = await stack.client.readBlob(backupRepo, manifest.layers[0]!.digest, 1 << 20);
      const forged = Buffer.from(payload.toString('utf8').replace('"critical"', ' "critical"'));
      await seedBlob({ url: withoutApi.url }, mirror, forged);
      manifest.layers[0] = { ...manifest.layers[0]!, digest: `sha256:${createHash('sha256').update(forged).digest('hex')}`, size: forged.length };
      const bytes = Buffer.from(JSON.stringify(manifest));
      await stack.client.putManifest(backupRepo, tag, {
        bytes,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`,
      });
      const tampered = await verifyBackupSignature(stack.client, backupRepo, seeded.digest, keys, call);
      assert.equal(tampered.verified, false);
      assert.match(
        (tampered as { reason: string }).reason,
        /1 signature at the backup, none verified with .*cosign\.pub \(cosign \.sig tag sha256-.*: signature verification failed\)/,
      );
    } finally {
      await stack.close();
    }
  });

  const servers = () =>
    [
      ['with the referrers API', withApi as Server],
      ['without it (distribution 2.8)', withoutApi as Server],
    ] as const;

  for (const from of [0, 1]) {
    for (const to of [0, 1]) {
      it(`from a registry ${['with the referrers API', 'without it'][from]} to one ${['with the referrers API', 'without it'][to]}: cosign verifies the backup and oras lists the same referrers`, async () => {
        const [, source] = servers()[from]!;
        const [, backup] = servers()[to]!;
        const seeded = await signedAt(source);
        const mirror = `copy${from}${to}/${seeded.repository}`;
        const stack = createRegistryStack({ insecureRegistries: [source.address, backup.address] });
        const keys = (file: string) =>
          parseSignaturePolicy([`${source.address}/*=key:${join(work, file)}`]).trustFor(parseReference(`${source.address}/${seeded.repository}`))!;
        try {
          const result = await stack.engine.copy({
            source: parseReference(`${source.address}/${seeded.repository}:v1`),
            destination: parseReference(`${backup.address}/${mirror}:v1`),
          });
          assert.equal(result.outcome, 'copied');
          assert.deepEqual(result.referrers.skipped, []);
          // The two bundles, the SBOM, its signature and the .sig tag.
          assert.equal(result.referrers.copied, 5);
          // Our own verification at the backup agrees with cosign's, and refuses another key.
          const call = <T>(operation: () => Promise<T>) => operation();
          const backupRepo = { registry: backup.address, repository: mirror };
          const verdict = await verifyBackupSignature(stack.client, backupRepo, seeded.digest, keys('cosign.pub'), call);
          assert.deepEqual(verdict, { verified: true, key: join(work, 'cosign.pub'), scheme: 'sigstore bundle' });
          const wrong = await verifyBackupSignature(stack.client, backupRepo, seeded.digest, keys('other/cosign.pub'), call);
          assert.equal(wrong.verified, false);
          assert.match(
            (wrong as { reason: string }).reason,
            /\d signatures at the backup, none verified with .*other\/cosign\.pub \(sigstore bundle .*signature verification failed/,
          );
        } finally {
          await stack.close();
        }
        const there = `${backup.address}/${mirror}@${seeded.digest}`;
        assert.deepEqual(await discover(there), seeded.expected);
        await cosign('verify', ...verifying, there);
        await cosign('verify', ...verifying, '--new-bundle-format=false', there);
        await cosign('verify-attestation', ...verifying, '--type', 'slsaprovenance', there);
        await cosign('verify', ...verifying, `${backup.address}/${mirror}@${seeded.sbom}`);
      });
    }
  }
});
