/**
 * Retries bounded by time, not by a count: `image-clone copy --from-file` through a proxy that faults
 * half of the requests to both registries (500, 503, 429 with Retry-After, bodies cut, stalls)
 * lands every image with its digest; five attempts gave up on one of them (2 runs of 2 failed with
 * the old policy; at a quarter of the requests three images did not fail it here). A registry that
 * never recovers is given up after --retry-budget, saying so.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { startTcpFaultProxy } from '../../devenv/tcp-fault-proxy.ts';

const CLI = join(import.meta.dirname, '../../src/cli.ts');
let work: string;
let source: RegistryServer;
let backup: RegistryServer;
before(async () => {
  work = mkdtempSync(join(tmpdir(), 'copy-retries-'));
  [source, backup] = await Promise.all([startRegistryServer(), startRegistryServer()]);
});
after(async () => {
  await Promise.all([source?.stop(), backup?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

const proxy = (registry: RegistryServer, faultRate: number, seed: number) => {
  const [host, port] = registry.address.split(':');
  return startTcpFaultProxy({ upstream: { host: host!, port: Number(port) }, faultRate, seed, stallMs: 500 });
};
const copy = (args: string[]) =>
  new Promise<{ code: number; stdout: string; stderr: string; seconds: number }>((resolve) => {
    const started = Date.now();
    execFile(process.execPath, [CLI, 'copy', ...args], { timeout: 240_000 }, (error, stdout, stderr) =>
      resolve({ code: error ? 1 : 0, stdout, stderr, seconds: (Date.now() - started) / 1000 }),
    );
  });

it('lands three images of 3 to 4 layers through 50% faults on both registries, with the default budget', async () => {
  const digests: string[] = [];
  for (let i = 0; i < 3; i++) {
    const layers = Array.from({ length: 3 + (i % 2) }, (_, l) => ({ seed: `retry-${i}-${l}`, size: (200 + 100 * l) * 1024 }));
    digests.push((await seedImage({ url: source.url }, { repository: `retry/app${i}`, tag: '1', format: 'oci', layers })).digest);
  }
  const [from, to] = await Promise.all([proxy(source, 0.5, 21), proxy(backup, 0.5, 22)]);
  try {
    const list = join(work, 'images.txt');
    writeFileSync(list, digests.map((_, i) => `${from.address}/retry/app${i}:1 ${to.address}/retry/app${i}:1`).join('\n'));
    const result = await copy(['--from-file', list, '--insecure-registry', from.address, '--insecure-registry', to.address]);
    assert.equal(result.code, 0, result.stderr);
    for (const [i, digest] of digests.entries()) assert.equal(await manifestDigestAt({ url: backup.url }, `retry/app${i}`, '1'), digest);
    const faults = [from, to].map((p) => Object.values(p.stats.faults).reduce((a, b) => a + b, 0));
    assert.ok(
      faults.every((n) => n > 0),
      `faults were injected: ${faults.join(', ')}`,
    );
  } finally {
    await Promise.all([from.stop(), to.stop()]);
  }
});

it('gives up on a registry that never recovers once --retry-budget is spent, and says how long it tried', async () => {
  await seedImage({ url: source.url }, { repository: 'retry/down', tag: '1', format: 'oci', layers: [{ seed: 'down', size: 1024 }] });
  const down = await proxy(backup, 1, 23);
  try {
    const result = await copy([
      `${source.address}/retry/down:1`,
      `${down.address}/retry/down:1`,
      '--insecure-registry',
      source.address,
      '--insecure-registry',
      down.address,
      '--retry-budget',
      '3s',
    ]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /\(gave up after \d+ attempts in \d+\.\d s\)/);
    assert.ok(result.seconds < 30, `bounded: ${result.seconds} s`);
  } finally {
    await down.stop();
  }
});
