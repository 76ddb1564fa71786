/**
 * Hostile and broken registries (issue #6). No real registry misbehaves on purpose, so the source
 * here is a small HTTP server of the test that speaks the OCI Distribution API (the endpoints and
 * headers the spec defines) and breaks it one way per repository. The destination is a real
 * docker-registry: after each refused copy it must hold no tag (nothing half-written).
 *
 * Each copy must fail fast with a RegistryError that says what was wrong. Token servers that answer
 * HTML, JSON without a token, or an endless body are covered the same way.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../devenv/process.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { RegistryError } from '../../src/errors.ts';
import { parseReference } from '../../src/image/reference.ts';
import { createRegistryStack } from '../../src/registry/index.ts';

const sha = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const layer = Buffer.alloc(1000, 7);
const manifestOf = (layerSize: number, layerDigest = sha(layer), padding = '') =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerSize }],
      ...(padding ? { annotations: { padding } } : {}),
    }),
  );
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const fanoutChildren = new Map(
  Array.from({ length: 300 }, (_, i) => manifestOf(layer.length, sha(layer), `${i}`.padEnd(64 * 1024, '.'))).map((m) => [sha(m), m] as const),
);
const fanoutIndex = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: [...fanoutChildren].map(([digest, m]) => ({
      mediaType: OCI_MANIFEST,
      digest,
      size: m.length,
      platform: { os: 'linux', architecture: 'amd64' },
    })),
  }),
);
/** `half-broken/app`: one layer that fails its digest at once, one that drips. */
const brokenLayer = Buffer.alloc(1000, 11);
const slowLayer = Buffer.alloc(1000, 12);
const halfBroken = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [brokenLayer, slowLayer].map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(l), size: l.length })),
  }),
);
/** Responses of `half-broken/app`'s slow layer still being sent. */
const slowOpen = new Set<import('node:http').ServerResponse>();
/** Set by the hijack test: the good registry's layer that the hostile one names. */
const hijack = { digest: '', size: 0 };
const send200 = (res: import('node:http').ServerResponse, head: boolean, type: string, body: Buffer) =>
  void res.writeHead(200, { 'content-type': type, 'docker-content-digest': sha(body), 'content-length': body.length }).end(head ? undefined : body);
const manifest = manifestOf(layer.length);
/** `drip-many/app:N`: an image of its own layer each (distinct blobs, so no copy waits on another's transfer). */
const manyLayers = Array.from({ length: 10 }, (_, i) => Buffer.alloc(1000, 100 + i));
const manyManifests = manyLayers.map((own) =>
  Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha(own), size: own.length }],
    }),
  ),
);
/** Declares a 25 GiB layer (its digest is the small layer's: it must never be asked for). */
const hugeManifest = manifestOf(25 * 1024 ** 3);

/** Sends `body` one byte a `everyMs`: each byte well inside the stall time-out, the whole never. */
function drip(res: import('node:http').ServerResponse, headers: Record<string, string | number>, body: Buffer, everyMs: number): void {
  res.writeHead(200, { ...headers, 'content-length': body.length });
  let sent = 0;
  const timer = setInterval(() => {
    if (res.destroyed || sent >= body.length) return void clearInterval(timer);
    res.write(body.subarray(sent, ++sent));
  }, everyMs);
  res.once('close', () => clearInterval(timer));
}

/** Streams `byte` forever (until the client goes away). */
function endless(res: import('node:http').ServerResponse, contentType: string): void {
  res.writeHead(200, { 'content-type': contentType, 'docker-content-digest': sha(manifest) });
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  pump();
}

describe('hostile registries', () => {
  let hostile: Server;
  let address: string;
  let backup: RegistryServer;
  const redirects: string[] = [];
  /** Blob requests by repository, to show which copies were refused before a byte moved. */
  const blobRequests: string[] = [];
  // A service on another host, named as a token realm: it must never be asked (with or without the registry's credentials).
  let elsewhere: Server;
  let elsewherePort: number;
  const elsewhereRequests: string[] = [];
  let internal: Server;
  let internalPort: number;

  before(async () => {
    // An internal service that answers in the registry error format, with something it must not leak.
    internalPort = await freePort('127.0.0.4');
    internal = createServer((_req, res) => {
      res
        .writeHead(500, { 'content-type': 'application/json' })
        .end(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: 'INTERNAL-SECRET: db password hunter2', detail: 'INTERNAL-SECRET' }] }));
    });
    await new Promise<void>((resolve) => internal.listen(internalPort, '127.0.0.4', resolve));
    backup = await startRegistryServer();
    elsewherePort = await freePort('127.0.0.3');
    elsewhere = createServer((req, res) => {
      elsewhereRequests.push(`${req.url} ${req.headers.authorization ?? ''}`);
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"t"}');
    });
    await new Promise<void>((resolve) => elsewhere.listen(elsewherePort, '127.0.0.3', resolve));
    const port = await freePort();
    address = `127.0.0.1:${port}`;
    hostile = createServer((req, res) => {
      const url = req.url ?? '/';
      if (url === '/v2/' || url === '/v2') return void res.writeHead(200, { 'docker-distribution-api-version': 'registry/2.0' }).end('{}');
      // Token servers that answer something other than a token.
      const token = /^\/token\/([a-z]+)/.exec(url)?.[1];
      if (token === 'html') return void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Log in</html>');
      if (token === 'empty') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"expires_in":300}');
      if (token === 'endless') return endless(res, 'application/json');
      // A token of 100 KiB that claims to last a day: not kept in the cache, not sent.
      if (token === 'huge')
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 'x'.repeat(100 * 1024), expires_in: 86_400 }));
      if (token === 'ok') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"a-token-for-one-repository","expires_in":300}');
      const protectedBy = /^\/v2\/token-([a-z]+)\//.exec(url)?.[1];
      if (protectedBy && !req.headers.authorization) {
        const realm = protectedBy === 'elsewhere' ? `http://127.0.0.3:${elsewherePort}/token/ok` : `http://${address}/token/${protectedBy}`;
        return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="hostile"` }).end();
      }
      const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(url);
      if (!m) return void res.writeHead(404).end();
      const [, repository, kind, reference] = m;
      const head = req.method === 'HEAD';
      if (kind === 'manifests') {
        switch (repository) {
          case 'wrong-digest/app': {
            // Served under a digest it does not have.
            const other = Buffer.from(manifest.toString().replace('"schemaVersion":2', '"schemaVersion":2 '));
            return void res
              .writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest), 'content-length': other.length })
              .end(head ? undefined : other);
          }
          case 'endless-manifest/app':
            if (head) return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest) }).end();
            return endless(res, OCI_MANIFEST);
          case 'not-json/app': {
            const html = Buffer.from('<html><body>Welcome to our registry portal</body></html>');
            return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(html) }).end(head ? undefined : html);
          }
          case 'huge-layer/app':
            return void res
              .writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(hugeManifest), 'content-length': hugeManifest.length })
              .end(head ? undefined : hugeManifest);
          case 'drip-many/app': {
            const own = manyManifests[Number(reference)] ?? manyManifests.find((m) => sha(m) === reference)!;
            return void res
              .writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(own), 'content-length': own.length })
              .end(head ? undefined : own);
          }
          case 'fanout/app': {
            // An index of 300 distinct manifests of 64 KiB each: 19 MiB held before the size is known.
            if (reference === 'index' || reference === '1') return send200(res, head, OCI_INDEX, fanoutIndex);
            const child = fanoutChildren.get(reference!);
            return child ? send200(res, head, OCI_MANIFEST, child) : void res.writeHead(404).end();
          }
          case 'half-broken/app':
            return send200(res, head, OCI_MANIFEST, halfBroken);
          case 'hijack/app': {
            // Names another registry's layer (its digest is public) and drips it.
            const own = manifestOf(hijack.size, hijack.digest);
            return send200(res, head, OCI_MANIFEST, own);
          }
          case 'drip-manifest/app':
            if (head) return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest) }).end();
            return drip(res, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest) }, manifest, 200);
          case 'wrong-shape/app': {
            const odd = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: 'none', layers: 'all of them' }));
            return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(odd) }).end(head ? undefined : odd);
          }
          default:
            return void res
              .writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest), 'content-length': manifest.length })
              .end(head ? undefined : manifest);
        }
      }
      // Blobs.
      blobRequests.push(repository!);
      if (reference === sha(config)) return void res.writeHead(200, { 'content-length': config.length }).end(head ? undefined : config);
      switch (repository) {
        case 'long-blob/app': {
          const longer = Buffer.concat([layer, Buffer.alloc(500, 1)]);
          return void res.writeHead(200, { 'content-length': longer.length }).end(head ? undefined : longer);
        }
        case 'longer-than-said/app':
          // Content-Length matches the descriptor, then the chunked-free stream keeps going.
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          return void res.end(head ? undefined : Buffer.concat([layer, Buffer.alloc(4096, 2)]));
        case 'endless-blob/app':
          return endless(res, 'application/octet-stream');
        case 'drip-many/app': {
          const own = manyLayers.find((l) => sha(l) === reference)!;
          return head ? void res.writeHead(200, { 'content-length': own.length }).end() : drip(res, {}, own, 200);
        }
        case 'half-broken/app':
          if (reference === sha(brokenLayer)) return void res.writeHead(200, { 'content-length': 1000 }).end(head ? undefined : Buffer.alloc(1000, 0));
          if (head) return void res.writeHead(200, { 'content-length': 1000 }).end();
          slowOpen.add(res);
          res.once('close', () => slowOpen.delete(res));
          return drip(res, {}, slowLayer, 200);
        case 'hijack/app':
          return head ? void res.writeHead(200, { 'content-length': hijack.size }).end() : drip(res, {}, Buffer.alloc(hijack.size, 3), 200);
        case 'drip-blob/app':
          return head ? void res.writeHead(200, { 'content-length': layer.length }).end() : drip(res, {}, layer, 200);
        case 'redirect-internal/app':
          return void res.writeHead(307, { location: `http://127.0.0.4:${internalPort}/internal/status` }).end();
        case 'redirect-loop/app':
          redirects.push(url);
          return void res.writeHead(307, { location: `http://${address}${url}` }).end();
        case 'corrupt-blob/app':
          return void res.writeHead(200, { 'content-length': layer.length }).end(head ? undefined : Buffer.alloc(layer.length, 8));
        default:
          return void res.writeHead(200, { 'content-length': layer.length }).end(head ? undefined : layer);
      }
    });
    await new Promise<void>((resolve) => hostile.listen(port, '127.0.0.1', resolve));
  });
  after(async () => {
    assert.deepEqual(elsewhereRequests, [], 'the token realm on another host was never asked');
    elsewhere?.close();
    internal?.close();
    hostile?.closeAllConnections();
    hostile?.close();
    await backup?.stop();
  });

  const cases: Array<[string, string, RegExp]> = [
    ['a manifest whose bytes do not match the digest it is served under', 'wrong-digest/app', /content digest sha256:[0-9a-f]{64} does not match sha256:/],
    ['an endless manifest body', 'endless-manifest/app', /the manifest is larger than 4 MiB/],
    ['a manifest that is not JSON', 'not-json/app', /not JSON|JSON|parse/i],
    ['a manifest whose JSON is not the shape the spec defines', 'wrong-shape/app', /config|layers|descriptor|manifest/i],
    ['a blob longer than its Content-Length says it is… and than declared', 'long-blob/app', /Content-Length 1500, but the manifest declares 1000 bytes/],
    ['a blob that streams past its declared size', 'longer-than-said/app', /sent more than the 1000 bytes its descriptor declares/],
    ['an endless blob', 'endless-blob/app', /sent more than the 1000 bytes its descriptor declares/],
    [
      'a blob sent a byte at a time, each inside the stall time-out',
      'drip-blob/app',
      /\(1000 B\): not copied within 2 s, slower than the floor of 1\.0 MiB\/s \(--min-copy-rate\); abandoned/,
    ],
    ['a manifest sent a byte at a time', 'drip-manifest/app', /its manifests were not read within 2 s; abandoned/],
    ['an image that declares a 25 GiB layer', 'huge-layer/app', /declare 25\.0 GiB, more than --max-image-size \(20\.0 GiB\); not copied/],
    ['an index of 300 manifests of 64 KiB each', 'fanout/app', /its manifests are more than 16\.0 MiB together; not copied/],
    ['a redirect loop', 'redirect-loop/app', /more than 5 redirects \(a redirect loop\?\)/],
    ['a blob whose bytes do not hash to its digest', 'corrupt-blob/app', /digest|sha256/],
    ['a token server answering HTML', 'token-html/app', /token server http:\/\/127\.0\.0\.1:\d+\/token\/html did not answer with JSON/],
    ['a token server answering JSON without a token', 'token-empty/app', /answered without a token/],
    ['a token server answering an endless body', 'token-endless/app', /answered more than 1024 KiB, not a token/],
    ['a token server answering a 100 KiB token', 'token-huge/app', /answered a token of 102400 bytes, more than the 16 KiB a token may be/],
    [
      'a token realm on another host over plain http (an internal service)',
      'token-elsewhere/app',
      /its token realm http:\/\/127\.0\.0\.3:\d+\/token\/ok is not https on its own host; not asked/,
    ],
  ];

  for (const [label, repository, expected] of cases) {
    it(`refuses ${label}, clearly, and leaves no tag behind`, async () => {
      const { engine, close } = createRegistryStack({
        insecureRegistries: [address, backup.address],
        retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 },
        // Short deadlines, so the dripping registries are given up on in seconds (defaults: 60 s and 3 minutes).
        blobGraceMs: 1_500,
        manifestsDeadlineMs: 2_000,
      });
      const started = Date.now();
      try {
        await assert.rejects(
          engine.copy({ source: parseReference(`${address}/${repository}:1`), destination: parseReference(`${backup.address}/mirror/${repository}:1`) }),
          (error: unknown) => {
            assert.ok(error instanceof RegistryError, `a RegistryError, not ${(error as Error)?.constructor?.name}: ${(error as Error)?.message}`);
            assert.match(error.message, expected);
            assert.match(
              error.message,
              repository.startsWith('token-') ? new RegExp(address) : new RegExp(repository.replace('/', '\\/')),
              'the message names the image or the registry',
            );
            return true;
          },
        );
      } finally {
        await close();
      }
      assert.ok(Date.now() - started < 20_000, 'gave up promptly');
      assert.equal(await manifestDigestAt({ url: backup.url }, `mirror/${repository}`, '1'), undefined, 'no tag in the backup registry');
      if (repository === 'huge-layer/app') assert.ok(!blobRequests.includes(repository), 'refused before any blob was asked for');
    });
  }

  it("does not repeat what a host it was redirected to answered: an internal service's error stays out of the message", async () => {
    const { engine, close } = createRegistryStack({
      insecureRegistries: [address, backup.address, `127.0.0.4:${internalPort}`],
      retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 },
    });
    try {
      await assert.rejects(
        engine.copy({ source: parseReference(`${address}/redirect-internal/app:1`), destination: parseReference(`${backup.address}/mirror/internal:1`) }),
        (error: Error) => {
          assert.match(error.message, /HTTP 500 from http:\/\/127\.0\.0\.4:\d+\/internal\/status, where the registry redirected/);
          assert.doesNotMatch(error.message, /INTERNAL-SECRET/);
          return true;
        },
      );
    } finally {
      await close();
    }
  });

  it('--max-image-size is what one platform declares: a two-platform image within it per platform is copied, one platform over it is refused', async () => {
    const source = await startRegistryServer();
    try {
      await seedImage(
        { url: source.url },
        {
          repository: 'team/multi',
          tag: '1',
          format: 'oci',
          layers: [{ seed: 'multi', size: 50_000 }],
          platforms: [
            { os: 'linux', architecture: 'amd64' },
            { os: 'linux', architecture: 'arm64' },
          ],
        },
      );
      const copyWith = async (maxImageBytes: number, tag: string) => {
        const { engine, close } = createRegistryStack({ insecureRegistries: [source.address, backup.address], maxImageBytes });
        try {
          return await engine.copy({
            source: parseReference(`${source.address}/team/multi:1`),
            destination: parseReference(`${backup.address}/mirror/multi:${tag}`),
          });
        } finally {
          await close();
        }
      };
      // Each platform is one ~50 KB layer (random bytes: gzip keeps them near that), two together over 80 KB.
      const copied = await copyWith(80_000, 'fits');
      assert.equal(copied.outcome, 'copied');
      assert.ok(copied.totalBytes > 80_000, `both platforms together declare ${copied.totalBytes} bytes, more than the limit`);
      await assert.rejects(copyWith(40_000, 'over'), /declare \d+\.\d KiB for one platform, more than --max-image-size \(39\.1 KiB\); not copied/);
    } finally {
      await source.stop();
    }
  });

  it('ends the rest of an image when one part fails: no transfer goes on holding a slot for an image already given up', async () => {
    const { engine, close } = createRegistryStack({
      insecureRegistries: [address, backup.address],
      retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 },
      blobGraceMs: 60_000,
    });
    try {
      await assert.rejects(
        engine.copy({ source: parseReference(`${address}/half-broken/app:1`), destination: parseReference(`${backup.address}/mirror/half-broken:1`) }),
        /digest|sha256/,
      );
      for (const deadline = Date.now() + 2_000; slowOpen.size > 0 && Date.now() < deadline; ) await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(slowOpen.size, 0, 'the dripping layer of the failed image is no longer being read');
      assert.equal(engine.pending, 0);
    } finally {
      await close();
    }
  });

  it("never waits on another registry's transfer of the same digest: a hostile source naming a public layer and dripping it holds no one else back", async () => {
    const good = await startRegistryServer();
    const { engine, close } = createRegistryStack({
      insecureRegistries: [address, good.address, backup.address],
      retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 },
      blobGraceMs: 60_000,
    });
    try {
      const seeded = await seedImage({ url: good.url }, { repository: 'team/base', tag: '1', format: 'oci', layers: [{ seed: 'hijacked', size: 100_000 }] });
      const [digest] = seeded.layerDigests;
      hijack.digest = digest!;
      // The layer's size as the good registry serves it (compressed).
      const sizes = await fetch(`${good.url}/v2/team/base/blobs/${digest}`, { method: 'HEAD' });
      hijack.size = Number(sizes.headers.get('content-length'));
      const hostileCopy = engine.copy({ source: parseReference(`${address}/hijack/app:1`), destination: parseReference(`${backup.address}/mirror/hijack:1`) });
      hostileCopy.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      const result = await engine.copy({
        source: parseReference(`${good.address}/team/base:1`),
        destination: parseReference(`${backup.address}/mirror/base:1`),
      });
      assert.equal(result.outcome, 'copied');
      assert.ok(Date.now() - started < 5_000, `copied in ${Date.now() - started} ms beside the hostile transfer of the same digest`);
    } finally {
      await close();
      await good.stop();
    }
  });

  it('shares the blob slots fairly: a registry dripping its blobs holds only its own share, and another registry copies meanwhile', async () => {
    const good = await startRegistryServer();
    const { engine, close } = createRegistryStack({
      insecureRegistries: [address, good.address, backup.address],
      retry: { attempts: 1, baseDelayMs: 10, maxDelayMs: 20, maxRetryAfterSeconds: 1 },
      blobConcurrency: 3,
      blobGraceMs: 60_000,
    });
    try {
      await seedImage({ url: good.url }, { repository: 'team/app', tag: '1', format: 'oci', layers: [{ seed: 'fair', size: 200_000 }] });
      // Ten images whose one layer drips: on a plain shared limit they would take every slot for a minute.
      const slow = Array.from({ length: 10 }, (_, i) =>
        engine.copy({ source: parseReference(`${address}/drip-many/app:${i}`), destination: parseReference(`${backup.address}/mirror/drip/app:${i}`) }),
      );
      for (const copy of slow) copy.catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const started = Date.now();
      const result = await engine.copy({
        source: parseReference(`${good.address}/team/app:1`),
        destination: parseReference(`${backup.address}/mirror/team/app:1`),
      });
      const tookMs = Date.now() - started;
      assert.equal(result.outcome, 'copied');
      assert.ok(tookMs < 5_000, `the well-behaved registry's image was copied in ${tookMs} ms, beside the dripping one`);
    } finally {
      await close();
      await good.stop();
    }
  });

  it('copies the well-behaved repositories of the same server (the harness itself is sound), one behind a token that GET /v2/ did not announce', async () => {
    const { engine, close } = createRegistryStack({ insecureRegistries: [address, backup.address] });
    try {
      for (const repository of ['good/app', 'token-ok/app']) {
        const result = await engine.copy({
          source: parseReference(`${address}/${repository}:1`),
          destination: parseReference(`${backup.address}/mirror/${repository}:1`),
        });
        assert.equal(result.digest, sha(manifest));
        assert.equal(await manifestDigestAt({ url: backup.url }, `mirror/${repository}`, '1'), sha(manifest));
      }
    } finally {
      await close();
    }
  });
});
