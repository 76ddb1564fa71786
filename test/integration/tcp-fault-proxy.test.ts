/**
 * The TCP fault proxy that the faults and soak runs put in front of every server: it must keep
 * HTTP framing intact across keep-alive requests with bodies (a real registry's chunked uploads),
 * inject each kind of fault it claims, and terminate TLS for HTTPS upstreams.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Agent, request } from 'undici';
import { freePort } from '../../devenv/process.ts';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { startTcpFaultProxy, type TcpFaultProxy } from '../../devenv/tcp-fault-proxy.ts';
import { createCertificateAuthority, createServerCertificate } from '../../devenv/tls.ts';
import { parseReference } from '../../src/image/reference.ts';
import { createRegistryStack } from '../../src/registry/index.ts';

const KiB = 1024;

describe('the TCP fault proxy', () => {
  let source: RegistryServer;
  let backup: RegistryServer;
  let work: string;
  before(async () => {
    work = mkdtempSync(join(tmpdir(), 'tcp-fault-proxy-'));
    [source, backup] = await Promise.all([startRegistryServer(), startRegistryServer()]);
  });
  after(async () => {
    await Promise.all([source?.stop(), backup?.stop()]);
    rmSync(work, { recursive: true, force: true });
  });

  const proxyFor = (registry: RegistryServer, faultRate: number, seed: number) => {
    const [host, port] = registry.address.split(':');
    return startTcpFaultProxy({ upstream: { host: host!, port: Number(port) }, faultRate, seed, stallMs: 200 });
  };

  it('passes keep-alive traffic with bodies through untouched when it injects nothing', async () => {
    const seeded = await seedImage(
      { url: source.url },
      {
        repository: 'clean/app',
        tag: '1',
        format: 'oci',
        layers: [
          { seed: 'clean', size: 700 * KiB },
          { seed: 'clean-2', size: 90 * KiB },
        ],
      },
    );
    const [from, to] = await Promise.all([proxyFor(source, 0, 1), proxyFor(backup, 0, 2)]);
    const { engine, close } = createRegistryStack({ insecureRegistries: [from.address, to.address] });
    try {
      const result = await engine.copy({ source: parseReference(`${from.address}/clean/app:1`), destination: parseReference(`${to.address}/clean/app:1`) });
      assert.equal(result.digest, seeded.digest);
      assert.equal(await manifestDigestAt({ url: backup.url }, 'clean/app', '1'), seeded.digest);
      assert.ok(to.stats.requests > 4 && to.stats.connections < to.stats.requests, 'several requests per kept-alive connection');
    } finally {
      await close();
      await Promise.all([from.stop(), to.stop()]);
    }
  });

  it('injects every kind of fault into a third of the requests, and the copy engine still lands each image with its digest', async () => {
    const seeded = [];
    for (let i = 0; i < 8; i++) {
      seeded.push(
        await seedImage(
          { url: source.url },
          {
            repository: `faulty/app${i}`,
            tag: 'v1',
            format: i % 2 ? 'docker' : 'oci',
            layers: [
              { seed: 'faulty-base', size: 256 * KiB, shared: true },
              { seed: `faulty-${i}`, size: 64 * KiB },
            ],
          },
        ),
      );
    }
    const [from, to] = await Promise.all([proxyFor(source, 0.33, 11), proxyFor(backup, 0.33, 12)]);
    const { engine, close } = createRegistryStack({
      insecureRegistries: [from.address, to.address],
      retry: { attempts: 12, baseDelayMs: 20, maxDelayMs: 200, maxRetryAfterSeconds: 2 },
    });
    try {
      const results = await engine.copyAll(
        seeded.map((_, i) => ({ source: parseReference(`${from.address}/faulty/app${i}:v1`), destination: parseReference(`${to.address}/faulty/app${i}:v1`) })),
      );
      for (const [i, r] of results.entries()) assert.ok(r.ok, `image ${i}: ${r.ok ? '' : r.error.message}`);
      for (const [i, s] of seeded.entries()) assert.equal(await manifestDigestAt({ url: backup.url }, `faulty/app${i}`, 'v1'), s.digest);
      for (const proxy of [from, to]) {
        const injected = Object.values(proxy.stats.faults).reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(injected - proxy.stats.requests * 0.33) <= 2, `${injected} faults in ${proxy.stats.requests} requests: a third, no more, no less`);
      }
      const faults = { ...from.stats.faults };
      for (const [kind, n] of Object.entries(to.stats.faults)) faults[kind as keyof typeof faults] += n;
      for (const [kind, n] of Object.entries(faults)) assert.ok(n > 0, `some ${kind} faults were injected: ${JSON.stringify(faults)}`);
    } finally {
      await close();
      await Promise.all([from.stop(), to.stop()]);
    }
  });

  it('answers matching requests with the refusal status while `refuse` is set', async () => {
    const proxy: TcpFaultProxy = await proxyFor(backup, 0, 3);
    try {
      proxy.refuse = { match: /^(PUT|POST|PATCH) /, status: 403 };
      const refused = await request(`${proxy.url}/v2/x/blobs/uploads/`, { method: 'POST' });
      assert.equal(refused.statusCode, 403);
      await refused.body.dump();
      const read = await request(`${proxy.url}/v2/`);
      assert.equal(read.statusCode, 200);
      await read.body.dump();
      proxy.refuse = undefined;
      const allowed = await request(`${proxy.url}/v2/x/blobs/uploads/`, { method: 'POST' });
      assert.equal(allowed.statusCode, 202);
      await allowed.body.dump();
    } finally {
      await proxy.stop();
    }
  });

  it('terminates TLS with a trusted certificate and speaks TLS upstream', async () => {
    const ca = await createCertificateAuthority(work, 'proxy test CA');
    const cert = await createServerCertificate(work, ca, 'upstream');
    const pem = { cert: readFileSync(cert.certFile, 'utf8'), key: readFileSync(cert.keyFile, 'utf8') };
    const caPem = readFileSync(ca.certFile, 'utf8');
    const port = await freePort();
    const server = createServer(pem, (req, res) => res.end(`tls upstream saw ${req.method} ${req.url}`));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const proxy = await startTcpFaultProxy({ upstream: { host: '127.0.0.1', port, tls: { ca: caPem } }, tls: pem });
    const dispatcher = new Agent({ connect: { ca: caPem } });
    try {
      const response = await request(`${proxy.url}/hello`, { dispatcher });
      assert.equal(await response.body.text(), 'tls upstream saw GET /hello');
      assert.ok(proxy.url.startsWith('https://'));
    } finally {
      await dispatcher.close();
      await proxy.stop();
      server.close();
    }
  });
});
