/**
 * WAN copy benchmark: the source registry across a wide-area link, the backup registry near (on
 * loopback), as users copy from a public registry into one beside their cluster. This project
 * against skopeo, crane and regctl in one run, each doing the same work (all platforms, digests
 * preserved; crane and regctl 4 processes at once, having no batch mode):
 *
 *   1. one fresh 200 MiB image in 4 layers
 *   2. a cluster's worth: 60 images of mixed sizes (5 to 400 MiB), some multi-platform, sharing
 *      base layers, as one copier pass sees them
 *   3. re-checking 500 backed-up tags, of which 50 are mutable and 5 changed at the source
 *   4. 60 images, each signed (cosign) and with an SBOM (oras), copied with what refers to them,
 *      against the peers that copy referrers (bench/referrers.ts)
 *
 * The link: the source registry runs in a network namespace of its own, joined to this one by
 * `wanlink` (bench/wanlink, built once with Go into the cache), which carries every packet with a
 * delay, at a rate, with random loss and a bounded bottleneck queue, as `tc netem` would (this
 * kernel has no netem). Both ends have addresses in 127.0.0.0/8 (`route_localnet`), so nothing
 * leaves the machine; the namespace and devices are removed at the end. Needs root.
 *
 * Usage: npm run bench:wan [-- --rtt 40ms] [--rate 200] [--loss 0.1] [--runs 3] [--only 1,2,3] [--scale 1]
 * Prints per scenario each tool's median time, the link's own limit (bytes / bandwidth) beside it,
 * CPU seconds (and per GiB), and this project's speed-up over the fastest peer.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BIN_DIR } from '../devenv/cache.ts';
import { startRegistryServer, type RegistryServer } from '../devenv/registry-server.ts';
import { manifestDigestAt, seedImage, type SeedImageSpec } from '../devenv/seed.ts';
import { parseDuration } from '../src/util/duration.ts';
import { copyTools, MiB, PEER_POOL, runScenario, trustForRegctl, type ScenarioOptions, type ScenarioResult } from './copy-tools.ts';
import { referrerTools, seedSignedImages, signedBatchPlan, type SignedImage } from './referrers.ts';

const { values } = parseArgs({
  options: {
    rtt: { type: 'string', default: '40ms' },
    rate: { type: 'string', default: '200' },
    loss: { type: 'string', default: '0.1' },
    queue: { type: 'string', default: '50ms' },
    runs: { type: 'string', default: '3' },
    only: { type: 'string', default: '1,2,3,4' },
    scale: { type: 'string', default: '1' },
  },
});
const RTT_MS = parseDuration('--rtt', values.rtt);
parseDuration('--queue', values.queue);
const RATE_MBIT = Number(values.rate);
const LOSS_PERCENT = Number(values.loss);
const RUNS = Number(values.runs);
const ONLY = new Set(values.only.split(',').map(Number));
const SCALE = Number(values.scale);
const say = (line: string) => process.stdout.write(`${line}\n`);
const wireSeconds = (bytes: number) => (bytes * 8) / (RATE_MBIT * 1e6);

if (process.getuid?.() !== 0) {
  process.stderr.write('bench:wan needs root: it creates a network namespace and the devices of the emulated link\n');
  process.exit(2);
}
for (const [flag, value] of [
  ['--rate', RATE_MBIT],
  ['--loss', LOSS_PERCENT],
  ['--runs', RUNS],
  ['--scale', SCALE],
] as const) {
  if (!Number.isFinite(value) || value < 0) throw new Error(`${flag} must be a number ≥ 0, got ${JSON.stringify(value)}`);
}

/** The link emulator, built from its source into the cache (rebuilt when the source changes). */
function wanlinkBinary(): string {
  const dir = join(import.meta.dirname, 'wanlink');
  const hash = createHash('sha256')
    .update(readFileSync(join(dir, 'main.go')))
    .digest('hex')
    .slice(0, 12);
  const binary = join(BIN_DIR, `wanlink-${hash}`);
  if (!existsSync(binary)) {
    mkdirSync(BIN_DIR, { recursive: true });
    process.stderr.write(`building wanlink (once, cached in ${BIN_DIR})…\n`);
    execFileSync('go', ['build', '-o', binary, '.'], { cwd: dir, stdio: 'inherit', env: { ...process.env, CGO_ENABLED: '0', GOFLAGS: '-mod=mod' } });
  }
  return binary;
}

interface WanLink {
  readonly namespace: string;
  /** The far end's address: what the source registry listens on. */
  readonly farAddress: string;
  stop(): Promise<string>;
}

/** The namespace, the two devices, their addresses, and the emulator between them. */
async function startWanLink(): Promise<WanLink> {
  const id = process.pid % 250;
  const namespace = `icc-wan-${process.pid}`;
  const [near, far] = [`iccw${process.pid}a`.slice(0, 15), `iccw${process.pid}b`.slice(0, 15)];
  const [nearAddress, farAddress] = [`127.100.${id}.1`, `127.100.${id}.2`];
  const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'inherit'] });
  const inside = (...args: string[]) => execFileSync('ip', ['netns', 'exec', namespace, ...args], { stdio: ['ignore', 'ignore', 'inherit'] });
  ip('netns', 'add', namespace);
  let child: ChildProcess | undefined;
  try {
    child = spawn(
      wanlinkBinary(),
      [
        '-a',
        near,
        '-b',
        far,
        '-netns',
        `/var/run/netns/${namespace}`,
        '-delay',
        `${RTT_MS / 2}ms`,
        '-rate',
        String(RATE_MBIT),
        '-loss',
        String(LOSS_PERCENT / 100),
        '-queue',
        values.queue,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    await new Promise<void>((resolve, reject) => {
      const poll = setInterval(() => {
        if (!output.includes('ready')) return;
        clearInterval(poll);
        resolve();
      }, 20);
      child!.once('exit', (code) => {
        clearInterval(poll);
        reject(new Error(`wanlink exited ${code} before the link was up`));
      });
    });
    ip('addr', 'add', nearAddress, 'peer', farAddress, 'dev', near);
    ip('link', 'set', near, 'mtu', '1500', 'up');
    execFileSync('sysctl', ['-qw', `net.ipv4.conf.${near}.route_localnet=1`]);
    inside('ip', 'addr', 'add', farAddress, 'peer', nearAddress, 'dev', far);
    inside('ip', 'link', 'set', far, 'mtu', '1500', 'up');
    inside('ip', 'link', 'set', 'lo', 'up');
    inside('sysctl', '-qw', `net.ipv4.conf.${far}.route_localnet=1`);
    const running = child;
    return {
      namespace,
      farAddress,
      async stop() {
        const exited = new Promise<void>((resolve) => running.once('exit', () => resolve()));
        running.kill('SIGTERM');
        await exited;
        ip('netns', 'del', namespace);
        return output.trim().split('\n').at(-1) ?? '';
      },
    };
  } catch (error) {
    child?.kill('SIGKILL');
    ip('netns', 'del', namespace);
    throw error;
  }
}

// The shipped artifact (what the container image runs), built fresh for this run.
execFileSync(process.execPath, [join(import.meta.dirname, '../node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, '../tsconfig.build.json')], {
  stdio: 'inherit',
});
const CLI = join(import.meta.dirname, '../dist/cli.js');

const work = mkdtempSync(join(tmpdir(), 'image-clone-wan-'));
const sourceData = join(work, 'source');
const link = await startWanLink();
let src: RegistryServer | undefined;
let dst: RegistryServer | undefined;
const SOURCE_PORT = 5000;

/** Pushes the images on loopback (fast), then serves them from across the link; `more` seeds on loopback too. */
async function seedThenServe(specs: readonly SeedImageSpec[], more?: (local: RegistryServer) => Promise<void>): Promise<Map<string, string>> {
  await src?.stop();
  const local = await startRegistryServer({ dataDir: sourceData });
  const digests = new Map<string, string>();
  try {
    await more?.(local);
    for (let i = 0; i < specs.length; i += 8) {
      for (const [spec, seeded] of await Promise.all(specs.slice(i, i + 8).map(async (spec) => [spec, await seedImage({ url: local.url }, spec)] as const)))
        digests.set(`${spec.repository}:${spec.tag}`, seeded.digest);
    }
  } finally {
    await local.stop();
  }
  src = await startRegistryServer({ dataDir: sourceData, host: link.farAddress, port: SOURCE_PORT, netns: link.namespace });
  await trustForRegctl(work, src.address);
  return digests;
}

async function freshTarget(): Promise<void> {
  await dst?.stop();
  dst = await startRegistryServer();
  await trustForRegctl(work, dst.address);
}

async function expectDigest(repository: string, tag: string, expected: string) {
  const actual = await manifestDigestAt({ url: dst!.url }, repository, tag);
  if (actual !== expected) throw new Error(`${repository}:${tag} has digest ${actual}, expected ${expected}: a tool did not copy it faithfully`);
}

const source = () => src!.address;
const tools = copyTools({
  work,
  ours: [CLI],
  source,
  insecure: () => ['--insecure-registry', source(), '--insecure-registry', dst!.address, '--mutable-tag', 'latest*'],
});
const scenario = (options: Omit<ScenarioOptions, 'tools' | 'runs' | 'say' | 'freshTarget'>) => runScenario({ ...options, tools, runs: RUNS, say, freshTarget });

/** The bytes an image's layers hold, each distinct layer counted once. */
function uniqueBytes(specs: readonly SeedImageSpec[]): number {
  const seen = new Map<string, number>();
  for (const spec of specs) {
    for (const platform of spec.platforms ?? [undefined]) {
      for (const layer of spec.layers) seen.set(layer.shared || !platform ? layer.seed : `${layer.seed}/${platform.os}/${platform.architecture}`, layer.size);
    }
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

/** A cluster's images: a few large ones on a JVM base, a dozen on a Node base, many small Alpine ones (some for two platforms). */
function clusterImages(): SeedImageSpec[] {
  const mb = (n: number) => Math.max(64 * 1024, Math.round(n * SCALE * MiB));
  const debian = { seed: 'wan-base-debian', size: mb(30), shared: true };
  const jvm = { seed: 'wan-base-jvm', size: mb(60), shared: true };
  const node = { seed: 'wan-base-node', size: mb(40), shared: true };
  const alpine = { seed: 'wan-base-alpine', size: mb(4), shared: true };
  const images: SeedImageSpec[] = [];
  const add = (name: string, base: Array<{ seed: string; size: number; shared: boolean }>, own: number, multi = false) =>
    images.push({
      repository: `cluster/${name}`,
      tag: '1.0.0',
      format: 'oci',
      layers: [...base, { seed: `wan-${name}`, size: mb(own) }],
      ...(multi
        ? {
            platforms: [
              { os: 'linux', architecture: 'amd64' },
              { os: 'linux', architecture: 'arm64' },
            ],
          }
        : {}),
    });
  add('search', [debian, jvm], 310);
  for (let i = 0; i < 3; i++) add(`billing-${i}`, [debian, jvm], 100);
  for (let i = 0; i < 12; i++) add(`web-${i}`, [debian, node], 20);
  for (let i = 0; i < 44; i++) add(`tool-${i}`, [alpine], 1 + (i % 4), i < 8);
  return images;
}

const results: ScenarioResult[] = [];
try {
  say(`# WAN copy benchmark (${new Date().toISOString()}): ${RUNS} runs per tool, median wall time`);
  say(
    `link: ${RTT_MS} ms round trip, ${RATE_MBIT} Mbit/s each way, ${LOSS_PERCENT}% loss each way, ${values.queue} bottleneck queue (wanlink); source ${link.farAddress} across it, backup registry on 127.0.0.1`,
  );
  say(`peers: skopeo (Debian), crane and regctl (Go module proxy); crane/regctl run ${PEER_POOL} processes at once for batches`);

  if (ONLY.has(1)) {
    const big: SeedImageSpec = {
      repository: 'one/big',
      tag: 'v1',
      format: 'docker',
      layers: [0, 1, 2, 3].map((i) => ({ seed: `wan-one-${i}`, size: Math.round(50 * SCALE * MiB) })),
    };
    const digest = (await seedThenServe([big])).get('one/big:v1')!;
    const bytes = uniqueBytes([big]);
    results.push(
      await scenario({
        name: `1. one fresh image, ${(bytes / MiB).toFixed(0)} MiB in 4 layers`,
        mode: 'fresh',
        bytes,
        wireSeconds: wireSeconds(bytes),
        plan: (tool, run) => {
          const repo = `one-${tool.name}-${run}`;
          return {
            pairs: [[`${source()}/one/big:v1`, `${dst!.address}/${repo}/big:v1`]],
            sync: { images: { 'one/big': ['v1'] }, destination: `${dst!.address}/${repo}` },
            check: () => expectDigest(`${repo}/big`, 'v1', digest),
          };
        },
      }),
    );
  }

  if (ONLY.has(2)) {
    const images = clusterImages();
    const digests = await seedThenServe(images);
    const bytes = uniqueBytes(images);
    results.push(
      await scenario({
        name: `2. a cluster's worth: ${images.length} images, ${(bytes / MiB).toFixed(0)} MiB of distinct layers, sharing bases, ${images.filter((i) => i.platforms).length} multi-platform`,
        mode: 'fresh',
        bytes,
        wireSeconds: wireSeconds(bytes),
        plan: (tool, run) => {
          const prefix = `cluster-${tool.name}-${run}`;
          const name = (spec: SeedImageSpec) => spec.repository.split('/').pop()!;
          return {
            pairs: images.map((spec) => [`${source()}/${spec.repository}:${spec.tag}`, `${dst!.address}/${prefix}/${name(spec)}:${spec.tag}`]),
            sync: { images: Object.fromEntries(images.map((spec) => [spec.repository, [spec.tag]])), destination: `${dst!.address}/${prefix}` },
            check: async () => {
              for (const spec of images) await expectDigest(`${prefix}/${name(spec)}`, spec.tag, digests.get(`${spec.repository}:${spec.tag}`)!);
            },
          };
        },
      }),
    );
  }

  if (ONLY.has(3)) {
    const fixed = Array.from({ length: 450 }, (_, i) => `1.${i}.0`);
    const mutable = Array.from({ length: 50 }, (_, i) => `latest-${i}`);
    const tags = [...fixed, ...mutable];
    const image = (tag: string, edition = 0): SeedImageSpec => ({
      repository: 'many/app',
      tag,
      format: 'docker',
      layers: [
        { seed: 'wan-many-shared', size: 64 * 1024 },
        { seed: `wan-many-${tag}-${edition}`, size: 512 },
      ],
    });
    const digests = await seedThenServe(tags.map((t) => image(t)));
    let edition = 0;
    await freshTarget();
    results.push(
      await scenario({
        name: `3. re-checking ${tags.length} backed-up tags, ${mutable.length} mutable, 5 changed at the source before each run`,
        mode: 'recheck',
        // Before each timed run, 5 mutable tags move at the source (pushed across the link, untimed).
        prepare: async () => {
          edition++;
          for (const tag of mutable.slice(0, 5)) digests.set(`many/app:${tag}`, (await seedImage({ url: src!.url }, image(tag, edition))).digest);
        },
        plan: (tool) => {
          const prefix = `many-${tool.name}`;
          return {
            pairs: tags.map((t) => [`${source()}/many/app:${t}`, `${dst!.address}/${prefix}/app:${t}`]),
            sync: { images: { 'many/app': tags }, destination: `${dst!.address}/${prefix}` },
            check: async () => {
              for (const tag of [fixed[0]!, ...mutable.slice(0, 5)]) await expectDigest(`${prefix}/app`, tag, digests.get(`many/app:${tag}`)!);
            },
          };
        },
      }),
    );
  }

  if (ONLY.has(4)) {
    let images: SignedImage[] = [];
    await seedThenServe([], async (local) => {
      images = await seedSignedImages(local.url, local.address, 60, work);
    });
    const tally = new Map<string, { signatures: number; sboms: number }>();
    const result = await runScenario({
      name: '4. 60 images, each with a cosign signature (.sig) and an oras SBOM (referrer), copied with them',
      plan: signedBatchPlan(images, source, () => dst!, tally),
      mode: 'fresh',
      tools: referrerTools({ work, ours: [CLI], source, insecure: () => ['--insecure-registry', source(), '--insecure-registry', dst!.address] }),
      runs: RUNS,
      say,
      freshTarget,
    });
    for (const [tool, counts] of tally) say(`- ${tool} carried ${counts.signatures} of 60 signatures and ${counts.sboms} of 60 SBOMs`);
    results.push(result);
  }

  say('\n## Summary (targets: 1 ≥ 1.0x, 2 ≥ 2x, 3 ≥ 3x, 4 ≥ 2x faster than the fastest peer)');
  for (const s of results) say(`- ${s.name}: ${s.ratio.toFixed(2)}x`);
} finally {
  await src?.stop();
  await dst?.stop();
  say(`\nwanlink: ${await link.stop()}`);
  rmSync(work, { recursive: true, force: true });
}
