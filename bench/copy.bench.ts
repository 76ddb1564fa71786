/**
 * Copy benchmark: this project against skopeo, crane and regctl, in one run, on the same two
 * local docker-registry servers, each doing the same work (all platforms, digests preserved).
 *
 *   1. one fresh ~200 MB image in 4 layers
 *   2. a batch of 20 images sharing base layers, each into a new repository
 *   3. re-checking 500 tags that are already backed up
 *   and the peak RSS of this project copying one 2 GiB layer.
 *
 * Usage: npm run bench:copy [-- --runs N] [--skip-rss] [--only 1,2] [--recheck-tags N]
 * Prints each tool's median wall time and this project's speed-up over the fastest peer.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { request } from 'undici';
import { startRegistryServer, type RegistryServer } from '../devenv/registry-server.ts';
import { manifestDigestAt, seedImage, type SeedImageSpec } from '../devenv/seed.ts';
import { containerNodeFlags, goTool, measure, measurePool, skopeo, type Measured } from './peers.ts';

const MiB = 1 << 20;
const { values } = parseArgs({ options: { runs: { type: 'string', default: '3' }, 'skip-rss': { type: 'boolean', default: false }, 'recheck-tags': { type: 'string', default: '500' }, only: { type: 'string', default: '1,2,3' } } });
const ONLY = new Set(values.only.split(',').map(Number));
const RUNS = Number(values.runs);
const RECHECK_TAGS = Number(values['recheck-tags']);
// The shipped artifact (what the container image runs), built fresh for this run.
execFileSync(process.execPath, [join(import.meta.dirname, '../node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, '../tsconfig.build.json')], { stdio: 'inherit' });
const CLI = join(import.meta.dirname, '../dist/cli.js');
// Speed is measured as a user runs `image-clone copy` (Node's defaults); peak RSS both ways, since
// the container trades some throughput for memory with its node flags (see the Dockerfile).
const OURS = [CLI];
const AS_CONTAINER = [...containerNodeFlags(), CLI];
const PEER_POOL = 4; // crane and regctl have no batch mode: 4 processes at once (crane's own default job count)

const work = mkdtempSync(join(tmpdir(), 'image-clone-bench-'));
const say = (line: string) => process.stdout.write(`${line}\n`);

const src = await startRegistryServer();
/** The registry copies go to; scenarios 1 and 2 get a fresh one per measurement (see freshTarget). */
let dst = await startRegistryServer();
const insecureArgs = () => ['--insecure-registry', src.address, '--insecure-registry', dst.address];
const regctlHome = join(work, 'regctl-home');
const regctlEnv = { ...process.env, HOME: regctlHome };
const crane = goTool('crane');
const regctl = goTool('regctl');
const trustForRegctl = async (address: string) => void (await measure(regctl, ['registry', 'set', '--tls', 'disabled', address], regctlEnv));
await trustForRegctl(src.address);
await trustForRegctl(dst.address);

/**
 * A new, empty target registry. Without it a peer's own cache (skopeo's blob-info cache
 * remembers blobs an earlier run pushed and mounts them) turns a "fresh copy" into a mount.
 */
async function freshTarget(): Promise<void> {
  await dst.stop();
  dst = await startRegistryServer();
  await trustForRegctl(dst.address);
}

interface Tool {
  readonly name: string;
  readonly peer: boolean;
  /** Copies `pairs` (source, destination) as this tool's users would; `prefix` for skopeo sync. */
  run(pairs: ReadonlyArray<readonly [string, string]>, syncSpec: SyncSpec): Promise<Measured>;
}

/** skopeo sync copies from a YAML list into DEST/<last path component>. */
interface SyncSpec {
  readonly images: Record<string, string[]>;
  readonly destination: string;
}

const tools: Tool[] = [
  {
    name: 'image-clone',
    peer: false,
    run(pairs) {
      if (pairs.length === 1) return measure(process.execPath, [...OURS, 'copy', pairs[0]![0], pairs[0]![1], ...insecureArgs()]);
      const file = join(work, `pairs-${Date.now()}.txt`);
      writeFileSync(file, pairs.map((p) => p.join(' ')).join('\n'));
      return measure(process.execPath, [...OURS, 'copy', '--from-file', file, ...insecureArgs()]);
    },
  },
  {
    name: 'skopeo',
    peer: true,
    run(pairs, sync) {
      const tls = ['--src-tls-verify=false', '--dest-tls-verify=false'];
      if (pairs.length === 1) return measure(skopeo(), ['copy', '--all', '--preserve-digests', ...tls, `docker://${pairs[0]![0]}`, `docker://${pairs[0]![1]}`]);
      const file = join(work, `sync-${Date.now()}.yaml`);
      const lines = [`${src.address}:`, '  tls-verify: false', '  images:', ...Object.entries(sync.images).map(([repo, tags]) => `    ${repo}: [${tags.join(', ')}]`)];
      writeFileSync(file, lines.join('\n') + '\n');
      return measure(skopeo(), ['sync', '--all', '--preserve-digests', '--src', 'yaml', '--dest', 'docker', '--dest-tls-verify=false', file, sync.destination]);
    },
  },
  {
    name: 'crane',
    peer: true,
    run: (pairs) => measurePool(pairs.map(([s, d]) => [crane, ['copy', '--insecure', s, d]] as const), PEER_POOL),
  },
  {
    name: 'regctl',
    peer: true,
    run: (pairs) => measurePool(pairs.map(([s, d]) => [regctl, ['image', 'copy', s, d]] as const), PEER_POOL, regctlEnv),
  },
];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface ScenarioResult {
  readonly name: string;
  readonly medians: Map<string, number>;
}

/**
 * Runs one scenario for every tool, RUNS times, alternating tools so drift hits all alike.
 * `plan(tool, run)` gives the pairs and the sync spec; `check` proves the copy is right.
 */
async function scenario(name: string, plan: (tool: Tool, run: number) => { pairs: Array<[string, string]>; sync: SyncSpec; check: () => Promise<void> }, mode: 'fresh' | 'recheck'): Promise<ScenarioResult> {
  const warmUp = mode === 'recheck';
  say(`\n## ${name}`);
  const times = new Map<string, number[]>(tools.map((t) => [t.name, []]));
  if (warmUp) {
    for (const tool of tools) {
      const p = plan(tool, 0);
      await tool.run(p.pairs, p.sync);
      await p.check();
    }
  }
  for (let run = 1; run <= RUNS; run++) {
    for (const tool of tools) {
      if (mode === 'fresh') await freshTarget();
      const p = plan(tool, warmUp ? 0 : run);
      const measured = await tool.run(p.pairs, p.sync);
      await p.check();
      times.get(tool.name)!.push(measured.seconds);
    }
  }
  const medians = new Map([...times].map(([tool, xs]) => [tool, median(xs)]));
  const fastestPeer = Math.min(...tools.filter((t) => t.peer).map((t) => medians.get(t.name)!));
  const ours = medians.get('image-clone')!;
  say('| tool | median s | runs (s) |');
  say('|---|---|---|');
  for (const tool of tools) say(`| ${tool.name} | ${medians.get(tool.name)!.toFixed(3)} | ${times.get(tool.name)!.map((t) => t.toFixed(2)).join(', ')} |`);
  say(`image-clone vs fastest peer: ${(fastestPeer / ours).toFixed(2)}x faster (ratio of times ${(ours / fastestPeer).toFixed(3)})`);
  return { name, medians };
}

async function expectDigest(repository: string, tag: string, expected: string) {
  const actual = await manifestDigestAt({ url: dst.url }, repository, tag);
  if (actual !== expected) throw new Error(`${repository}:${tag} has digest ${actual}, expected ${expected}: a tool did not preserve the digest`);
}

try {
  say(`# Copy benchmark (${new Date().toISOString()}), ${RUNS} runs per tool, median wall time`);
  say(`peers: skopeo (Debian), crane and regctl (Go module proxy); crane/regctl run ${PEER_POOL} processes at once for batches`);

  const results: ScenarioResult[] = [];
  // Scenario 1: one image, ~200 MB in 4 layers.
  if (ONLY.has(1)) {
    const big: SeedImageSpec = { repository: 's1/big', tag: 'v1', format: 'docker', layers: [0, 1, 2, 3].map((i) => ({ seed: `s1-layer-${i}`, size: 50 * MiB })) };
    const bigDigest = (await seedImage({ url: src.url }, big)).digest;
    results.push(await scenario('1. one fresh image, 200 MiB in 4 layers', (tool, run) => {
      const repo = `s1-${tool.name}-${run}`;
      return {
        pairs: [[`${src.address}/s1/big:v1`, `${dst.address}/${repo}/big:v1`]],
        sync: { images: { 's1/big': ['v1'] }, destination: `${dst.address}/${repo}` },
        check: () => expectDigest(`${repo}/big`, 'v1', bigDigest),
      };
    }, 'fresh'));
  }

  // Scenario 2: 20 images sharing two base layers (60 MiB), 5 MiB of their own each.
  if (ONLY.has(2)) {
    const names = Array.from({ length: 20 }, (_, i) => `img-${i}`);
    const s2Digests = new Map<string, string>();
    for (const n of names) {
      const seeded = await seedImage({ url: src.url }, {
        repository: `s2/${n}`,
        tag: 'v1',
        format: 'oci',
        layers: [{ seed: 's2-base-os', size: 40 * MiB }, { seed: 's2-base-runtime', size: 20 * MiB }, { seed: `s2-${n}`, size: 5 * MiB }],
      });
      s2Digests.set(n, seeded.digest);
  }
  results.push(await scenario('2. batch of 20 images sharing base layers, each into a new repository', (tool, run) => {
    const prefix = `s2-${tool.name}-${run}`;
    return {
      pairs: names.map((n) => [`${src.address}/s2/${n}:v1`, `${dst.address}/${prefix}/${n}:v1`]),
      sync: { images: Object.fromEntries(names.map((n) => [`s2/${n}`, ['v1']])), destination: `${dst.address}/${prefix}` },
      check: async () => {
        for (const n of names) await expectDigest(`${prefix}/${n}`, 'v1', s2Digests.get(n)!);
      },
    };
  }, 'fresh'));
  await freshTarget();
  }

  // Scenario 3: RECHECK_TAGS tags already backed up (each tool backs them up once, untimed).
  if (ONLY.has(3)) {
    const tags = Array.from({ length: RECHECK_TAGS }, (_, i) => `t${i}`);
    const s3Digests: string[] = [];
    for (let i = 0; i < tags.length; i += 25) {
      s3Digests.push(...(await Promise.all(tags.slice(i, i + 25).map((tag) => seedImage({ url: src.url }, { repository: 's3/app', tag, format: 'docker', layers: [{ seed: 's3-shared', size: 64 * 1024 }, { seed: `s3-${tag}`, size: 512 }] }).then((s) => s.digest)))));
  }
  results.push(await scenario(`3. re-checking ${RECHECK_TAGS} tags already backed up`, (tool) => {
    const prefix = `s3-${tool.name}`;
    return {
      pairs: tags.map((t) => [`${src.address}/s3/app:${t}`, `${dst.address}/${prefix}/app:${t}`]),
      sync: { images: { 's3/app': tags }, destination: `${dst.address}/${prefix}` },
      check: async () => {
        await expectDigest(`${prefix}/app`, tags[0]!, s3Digests[0]!);
        await expectDigest(`${prefix}/app`, tags.at(-1)!, s3Digests.at(-1)!);
      },
    };
  }, 'recheck'));
  }

  say('\n## Summary (targets: 1 ≥ 1.0x, 2 ≥ 1.5x, 3 ≥ 2x faster than the fastest peer)');
  for (const s of results) {
    const fastest = Math.min(...tools.filter((t) => t.peer).map((t) => s.medians.get(t.name)!));
    say(`- ${s.name}: ${(fastest / s.medians.get('image-clone')!).toFixed(2)}x`);
  }

  if (!values['skip-rss']) {
    say('\n## Peak RSS copying one 2 GiB layer (target: under 200 MB)');
    const hugeDigest = (await seedImage({ url: src.url }, { repository: 's4/huge', tag: 'v1', format: 'docker', layers: [{ seed: 's4-2gib', size: 2048 * MiB }] })).digest;
    for (const [label, runtime] of [['as the CLI runs (Node defaults)', OURS], [`as the container runs (node ${containerNodeFlags().join(' ')})`, AS_CONTAINER]] as const) {
      await freshTarget();
      const measured = await measure(process.execPath, [...runtime, 'copy', `${src.address}/s4/huge:v1`, `${dst.address}/s4/huge:v1`, ...insecureArgs()]);
      await expectDigest('s4/huge', 'v1', hugeDigest);
      say(measured.maxRssBytes === undefined
        ? `${label}: copied in ${measured.seconds.toFixed(1)} s; peak RSS unknown (/usr/bin/time missing: apt-get install time)`
        : `${label}: copied in ${measured.seconds.toFixed(1)} s; peak RSS ${(measured.maxRssBytes / MiB).toFixed(1)} MiB`);
    }
  }
} finally {
  await Promise.all([src.stop(), dst.stop()]);
  rmSync(work, { recursive: true, force: true });
}
