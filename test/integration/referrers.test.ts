/**
 * What travels with a backup (src/registry/referrers.ts): referrers copied between a registry with
 * the OCI 1.1 referrers API (devenv/referrers-registry, go-containerregistry's) and Debian's
 * `docker-registry` 2.8 without it, in all four directions; the artifacts written as tools write
 * them (the API where there is one, else the `sha256-<hex>` fallback tag; cosign's `.sig` tag).
 * The real cosign and oras run against the same registries in test/e2e/referrers.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { request } from 'undici';
import { startReferrersRegistry, type ReferrersRegistry } from '../../devenv/referrers-registry.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedArtifact, seedImage, type SeedTarget } from '../../devenv/seed.ts';
import { parseReference } from '../../src/image/reference.ts';
import { createRegistryStack } from '../../src/registry/index.ts';
import type { ReferrersPolicy } from '../../src/registry/referrers.ts';

const KiB = 1024;
const fastRetry = { attempts: 3, baseDelayMs: 20, maxDelayMs: 100, maxRetryAfterSeconds: 5 };
const SIG = 'application/vnd.dev.cosign.artifact.sig.v1+json';
const SBOM = 'application/spdx+json';
const ATTESTATION = 'application/vnd.in-toto+json';

type Server = { readonly address: string; readonly url: string; stop(): Promise<void> };

/** What a reader of `registry` finds referring to `digest`: through the API, else under the fallback tag. */
async function referrersAt(server: Server, repository: string, digest: string): Promise<Array<{ digest: string; artifactType?: string }>> {
  const api = await request(`${server.url}/v2/${repository}/referrers/${digest}`);
  if (api.statusCode === 200) return ((await api.body.json()) as { manifests: Array<{ digest: string; artifactType?: string }> }).manifests;
  await api.body.dump();
  const tag = await request(`${server.url}/v2/${repository}/manifests/${digest.replace(':', '-')}`, {
    headers: { accept: 'application/vnd.oci.image.index.v1+json' },
  });
  if (tag.statusCode === 404) return tag.body.dump().then(() => []);
  return ((await tag.body.json()) as { manifests: Array<{ digest: string; artifactType?: string }> }).manifests;
}

const sorted = (list: ReadonlyArray<{ digest: string; artifactType?: string }>) => list.map((r) => `${r.artifactType} ${r.digest}`).sort();

describe('referrers travel with the backup', () => {
  let withApi: ReferrersRegistry;
  let withoutApi: RegistryServer;
  before(async () => {
    [withApi, withoutApi] = await Promise.all([startReferrersRegistry(), startRegistryServer()]);
  });
  after(async () => {
    await Promise.all([withApi?.stop(), withoutApi?.stop()]);
  });

  const servers = () => ({ 'with the referrers API': withApi as Server, 'without it (distribution 2.8)': withoutApi as Server });

  /** An image of two platforms, signed (index and one platform), with an SBOM, an attestation, a signature of the SBOM, and a cosign `.sig` tag. */
  async function signedImage(server: Server, repository: string, api: boolean) {
    const target: SeedTarget = { url: server.url };
    const image = await seedImage(target, {
      repository,
      tag: 'v1',
      format: 'oci',
      layers: [{ seed: `${repository}-layer`, size: 64 * KiB }],
      platforms: [
        { os: 'linux', architecture: 'amd64' },
        { os: 'linux', architecture: 'arm64' },
      ],
    });
    const indexSize = Number(
      (await request(`${server.url}/v2/${repository}/manifests/v1`, { method: 'HEAD', headers: { accept: image.mediaType } })).headers['content-length'],
    );
    const subject = { digest: image.digest, mediaType: image.mediaType, size: indexSize };
    const fallbackTag = !api;
    const signature = await seedArtifact(target, { repository, subject, artifactType: SIG, content: `signature of ${image.digest}`, fallbackTag });
    const sbom = await seedArtifact(target, { repository, subject, artifactType: SBOM, content: '{"spdxVersion":"SPDX-2.3"}', fallbackTag });
    const attestation = await seedArtifact(target, {
      repository,
      subject,
      artifactType: ATTESTATION,
      content: '{"_type":"https://in-toto.io/Statement/v1"}',
      fallbackTag,
    });
    const sbomSignature = await seedArtifact(target, { repository, subject: sbom, artifactType: SIG, content: `signature of ${sbom.digest}`, fallbackTag });
    const platform = image.children[0]!;
    const platformSize = Number(
      (
        await request(`${server.url}/v2/${repository}/manifests/${platform}`, {
          method: 'HEAD',
          headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
        })
      ).headers['content-length'],
    );
    const platformSignature = await seedArtifact(target, {
      repository,
      subject: { digest: platform, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: platformSize },
      artifactType: SIG,
      content: `signature of ${platform}`,
      fallbackTag,
    });
    const cosignTag = await seedArtifact(target, {
      repository,
      artifactType: SIG,
      content: 'legacy cosign signature',
      tag: `${image.digest.replace(':', '-')}.sig`,
    });
    return { image, signature, sbom, attestation, sbomSignature, platform, platformSignature, cosignTag };
  }

  let n = 0;
  for (const from of ['with the referrers API', 'without it (distribution 2.8)'] as const) {
    for (const to of ['with the referrers API', 'without it (distribution 2.8)'] as const) {
      it(`copies every referrer digest for digest, and cosign's tag, from a registry ${from} to one ${to}`, async () => {
        const source = servers()[from];
        const backup = servers()[to];
        const repository = `team/app${++n}`;
        const seeded = await signedImage(source, repository, from === 'with the referrers API');
        const stack = createRegistryStack({ insecureRegistries: [source.address, backup.address], retry: fastRetry });
        try {
          const result = await stack.engine.copy({
            source: parseReference(`${source.address}/${repository}:v1`),
            destination: parseReference(`${backup.address}/mirror/${repository}:v1`),
          });
          assert.equal(result.outcome, 'copied');
          assert.equal(result.digest, seeded.image.digest);
          assert.deepEqual(result.referrers.skipped, []);
          // signature, SBOM, attestation, the SBOM's signature, the platform's signature, the cosign tag
          assert.equal(result.referrers.copied, 6);
          for (const subject of [seeded.image.digest, seeded.sbom.digest, seeded.platform]) {
            const there = await referrersAt(backup, `mirror/${repository}`, subject);
            assert.deepEqual(sorted(there), sorted(await referrersAt(source, repository, subject)), `the referrers of ${subject}`);
            assert.ok(there.length > 0);
          }
          assert.equal(
            await manifestDigestAt({ url: backup.url }, `mirror/${repository}`, `${seeded.image.digest.replace(':', '-')}.sig`),
            seeded.cosignTag.digest,
          );
          // Again: everything is there, nothing is copied twice.
          const again = await stack.engine.copy({
            source: parseReference(`${source.address}/${repository}:v1`),
            destination: parseReference(`${backup.address}/mirror/${repository}:v1`),
          });
          assert.equal(again.outcome, 'present');
        } finally {
          await stack.close();
        }
      });
    }
  }

  it("copies only what the manifest itself says: a listed referrer whose manifest names another subject is left behind, and the backup's fallback tag lists what the copies say", async () => {
    const source = withoutApi;
    const repository = 'team/liar';
    const target: SeedTarget = { url: source.url };
    const image = await seedImage(target, { repository, tag: 'v1', format: 'oci', layers: [{ seed: 'liar-layer', size: 8 * KiB }] });
    const other = await seedImage(target, { repository, tag: 'other', format: 'oci', layers: [{ seed: 'liar-other', size: 8 * KiB }] });
    const size = async (ref: string) =>
      Number(
        (await request(`${source.url}/v2/${repository}/manifests/${ref}`, { method: 'HEAD', headers: { accept: image.mediaType } })).headers['content-length'],
      );
    const honest = await seedArtifact(target, {
      repository,
      subject: { digest: image.digest, mediaType: image.mediaType, size: await size('v1') },
      artifactType: SIG,
      content: 'mine',
      fallbackTag: true,
    });
    // A manifest of another image's, listed under this image's fallback tag with a made-up type and size.
    const foreign = await seedArtifact(target, {
      repository,
      subject: { digest: other.digest, mediaType: other.mediaType, size: await size('other') },
      artifactType: SBOM,
      content: 'not yours',
    });
    const tag = image.digest.replace(':', '-');
    const index = (await (
      await request(`${source.url}/v2/${repository}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.index.v1+json' } })
    ).body.json()) as { manifests: unknown[] };
    index.manifests.push({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: foreign.digest,
      size: 1,
      artifactType: SIG,
      annotations: { note: 'x'.repeat(100) },
    });
    await request(`${source.url}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' },
      body: JSON.stringify(index),
    }).then((r) => r.body.dump());
    const stack = createRegistryStack({ insecureRegistries: [source.address, withoutApi.address], retry: fastRetry });
    try {
      const result = await stack.engine.copy({
        source: parseReference(`${source.address}/${repository}:v1`),
        destination: parseReference(`${withoutApi.address}/mirror/${repository}:v1`),
      });
      assert.equal(result.referrers.copied, 1);
      assert.equal(result.referrers.skipped.length, 1);
      assert.match(result.referrers.skipped[0]!, /listed as a referrer of sha256:[0-9a-f]{64}, but does not name it as its subject/);
      const listed = await referrersAt(withoutApi, `mirror/${repository}`, image.digest);
      assert.deepEqual(
        listed.map((r) => [r.digest, r.artifactType]),
        [[honest.digest, SIG]],
      );
      assert.equal((listed[0] as { size?: number }).size, honest.size, 'the size of the manifest copied, not a listed one');
    } finally {
      await stack.close();
    }
  });

  it('a re-check of a mutable tag brings a signature attached after the first copy, with no manifest GET at the source', async () => {
    const source = withoutApi;
    const backup = withApi;
    const repository = 'team/latest';
    const image = await seedImage({ url: source.url }, { repository, tag: 'latest', format: 'oci', layers: [{ seed: 'latest-layer', size: 16 * KiB }] });
    const stack = createRegistryStack({ insecureRegistries: [source.address, backup.address], retry: fastRetry });
    const gets: string[] = [];
    const counting = (await import('node:diagnostics_channel')).default.channel('undici:request:create');
    const onRequest = (message: unknown) => {
      const { request: r } = message as { request: { method: string; origin: string; path: string } };
      if (r.method === 'GET' && r.origin.includes(source.address) && r.path.includes('/manifests/')) gets.push(r.path);
    };
    try {
      const src = parseReference(`${source.address}/${repository}:latest`);
      const dst = parseReference(`${backup.address}/mirror/${repository}:latest`);
      assert.equal((await stack.engine.copy({ source: src, destination: dst })).referrers.copied, 0);
      const size = Number(
        (await request(`${source.url}/v2/${repository}/manifests/latest`, { method: 'HEAD', headers: { accept: image.mediaType } })).headers['content-length'],
      );
      const later = await seedArtifact(
        { url: source.url },
        { repository, subject: { digest: image.digest, mediaType: image.mediaType, size }, artifactType: SIG, content: 'signed later', fallbackTag: true },
      );
      counting.subscribe(onRequest);
      const recheck = await stack.engine.copy({ source: src, destination: dst });
      counting.unsubscribe(onRequest);
      assert.equal(recheck.outcome, 'unchanged');
      assert.equal(recheck.referrers.copied, 1);
      const imageGets = gets.filter((p) => p.endsWith('/manifests/latest') || p.endsWith(`/manifests/${image.digest}`));
      assert.deepEqual(imageGets, [], 'no manifest GET of the image at the source (only of the new signature)');
      assert.deepEqual(gets, [`/v2/${repository}/manifests/${image.digest.replace(':', '-')}`, `/v2/${repository}/manifests/${later.digest}`]);
      assert.deepEqual(sorted(await referrersAt(backup, `mirror/${repository}`, image.digest)), [`${SIG} ${later.digest}`]);
    } finally {
      await stack.close();
    }
  });

  for (const [label, policy, expected] of [
    // The index's and the platform's signatures and the .sig tag; the SBOM stays, and so its signature.
    ['--referrers signatures copies signatures only (and the .sig tag)', { mode: 'signatures' }, 3],
    ['--referrer-artifact-type keeps the types named', { mode: 'all', artifactTypes: [SBOM] }, 1],
    ['--referrers none copies the image alone', { mode: 'none' }, 0],
  ] as const) {
    it(label, async () => {
      const repository = `team/policy${++n}`;
      const seeded = await signedImage(withApi, repository, true);
      const stack = createRegistryStack({ insecureRegistries: [withApi.address, withoutApi.address], retry: fastRetry, referrers: policy as ReferrersPolicy });
      try {
        const result = await stack.engine.copy({
          source: parseReference(`${withApi.address}/${repository}:v1`),
          destination: parseReference(`${withoutApi.address}/mirror/${repository}:v1`),
        });
        assert.equal(result.referrers.copied, expected);
        const there = sorted(await referrersAt(withoutApi, `mirror/${repository}`, seeded.image.digest));
        if (policy.mode === 'signatures') assert.deepEqual(there, [`${SIG} ${seeded.signature.digest}`]);
        if (policy.mode === 'none') assert.deepEqual(there, []);
        if ('artifactTypes' in policy) assert.deepEqual(there, [`${SBOM} ${seeded.sbom.digest}`]);
      } finally {
        await stack.close();
      }
    });
  }
});
