/**
 * Copy benchmark: this project against skopeo, crane and regctl, in one run, on the same two
 * local docker-registry servers, each doing the same work (all platforms, digests preserved).
 *
 *   1. one fresh ~200 MB image in 4 layers
 *   2. a batch of 20 images sharing base layers, each into a new repository
 *   3. re-checking 500 tags that are already backed up
 *   4. 60 images, each signed (cosign) and with an SBOM (oras), copied with what refers to them,
 *      against the peers that copy referrers (bench/referrers.ts)
 *   and the peak RSS of this project copying one 2 GiB layer.
 *
 * Usage: npm run bench:copy [-- --runs N] [--skip-rss] [--only 1,2] [--recheck-tags N]
 * Prints each tool's median wall time and this project's speed-up over the fastest peer.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startRegistryServer } from '../devenv/registry-server.ts';
import { manifestDigestAt, seedImage, type SeedImageSpec } from '../devenv/seed.ts';
import { copyTools, MiB, PEER_POOL, runScenario, trustForRegctl, type ScenarioOptions, type ScenarioResult } from './copy-tools.ts';
import { containerNodeFlags, measure } from './peers.ts';
import { referrerTools, seedSignedImages, signedBatchPlan } from './referrers.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    'skip-rss': { type: 'boolean', default: false },
    'recheck-tags': { type: 'string', default: '500' },
    only: { type: 'string', default: '1,2,3,4' },
  },
});
const ONLY = new Set(values.only.split(',').map(Number));
const RUNS = Number(values.runs);
const RECHECK_TAGS = Number(values['recheck-tags']);
// The shipped artifact (what the container image runs), built fresh for this run.
execFileSync(process.execPath, [join(import.meta.dirname, '../node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, '../tsconfig.build.json')], {
  stdio: 'inherit',
});
const CLI = join(import.meta.dirname, '../dist/cli.js');
// Speed is measured as a user runs `image-clone copy` (Node's defaults); peak RSS both ways, since
// the container trades some throughput for memory with its node flags (see the Dockerfile).
const OURS = [CLI];
const AS_CONTAINER = [...containerNodeFlags(), CLI];

const work = mkdtempSync(join(tmpdir(), 'image-clone-bench-'));
const say = (line: string) => process.stdout.write(`${line}\n`);

const src = await startRegistryServer();
/** The registry copies go to; scenarios 1 and 2 get a fresh one per measurement (see freshTarget). */
let dst = await startRegistryServer();
const insecureArgs = () => ['--insecure-registry', src.address, '--insecure-registry', dst.address];
await trustForRegctl(work, src.address);
await trustForRegctl(work, dst.address);

/**
 * A new, empty target registry. Without it a peer's own cache (skopeo's blob-info cache
 * remembers blobs an earlier run pushed and mounts them) turns a "fresh copy" into a mount.
 */
async function freshTarget(): Promise<void> {
  await dst.stop();
  dst = await startRegistryServer();
  await trustForRegctl(work, dst.address);
}

const tools = copyTools({ work, ours: OURS, source: () => src.address, insecure: insecureArgs });
const scenario = (name: string, plan: ScenarioOptions['plan'], mode: ScenarioOptions['mode']) =>
  runScenario({ name, plan, mode, tools, runs: RUNS, say, freshTarget });

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
    const big: SeedImageSpec = {
      repository: 's1/big',
      tag: 'v1',
      format: 'docker',
      layers: [0, 1, 2, 3].map((i) => ({ seed: `s1-layer-${i}`, size: 50 * MiB })),
    };
    const bigDigest = (await seedImage({ url: src.url }, big)).digest;
    results.push(
      await scenario(
        '1. one fresh image, 200 MiB in 4 layers',
        (tool, run) => {
          const repo = `s1-${tool.name}-${run}`;
          return {
            pairs: [[`${src.address}/s1/big:v1`, `${dst.address}/${repo}/big:v1`]],
            sync: { images: { 's1/big': ['v1'] }, destination: `${dst.address}/${repo}` },
            check: () => expectDigest(`${repo}/big`, 'v1', bigDigest),
          };
        },
        'fresh',
      ),
    );
  }

  // Scenario 2: 20 images sharing two base layers (60 MiB), 5 MiB of their own each.
  if (ONLY.has(2)) {
    const names = Array.from({ length: 20 }, (_, i) => `img-${i}`);
    const s2Digests = new Map<string, string>();
    for (const n of names) {
      const seeded = await seedImage(
        { url: src.url },
        {
          repository: `s2/${n}`,
          tag: 'v1',
          format: 'oci',
          layers: [
            { seed: 's2-base-os', size: 40 * MiB },
            { seed: 's2-base-runtime', size: 20 * MiB },
            { seed: `s2-${n}`, size: 5 * MiB },
          ],
        },
      );
      s2Digests.set(n, seeded.digest);
    }
    results.push(
      await scenario(
        '2. batch of 20 images sharing base layers, each into a new repository',
        (tool, run) => {
          const prefix = `s2-${tool.name}-${run}`;
          return {
            pairs: names.map((n) => [`${src.address}/s2/${n}:v1`, `${dst.address}/${prefix}/${n}:v1`]),
            sync: { images: Object.fromEntries(names.map((n) => [`s2/${n}`, ['v1']])), destination: `${dst.address}/${prefix}` },
            check: async () => {
              for (const n of names) await expectDigest(`${prefix}/${n}`, 'v1', s2Digests.get(n)!);
            },
          };
        },
        'fresh',
      ),
    );
    await freshTarget();
  }

  // Scenario 3: RECHECK_TAGS tags already backed up (each tool backs them up once, untimed).
  if (ONLY.has(3)) {
    const tags = Array.from({ length: RECHECK_TAGS }, (_, i) => `t${i}`);
    const s3Digests: string[] = [];
    for (let i = 0; i < tags.length; i += 25) {
      s3Digests.push(
        ...(await Promise.all(
          tags.slice(i, i + 25).map((tag) =>
            seedImage(
              { url: src.url },
              {
                repository: 's3/app',
                tag,
                format: 'docker',
                layers: [
                  { seed: 's3-shared', size: 64 * 1024 },
                  { seed: `s3-${tag}`, size: 512 },
                ],
              },
            ).then((s) => s.digest),
          ),
        )),
      );
    }
    results.push(
      await scenario(
        `3. re-checking ${RECHECK_TAGS} tags already backed up`,
        (tool) => {
          const prefix = `s3-${tool.name}`;
          return {
            pairs: tags.map((t) => [`${src.address}/s3/app:${t}`, `${dst.address}/${prefix}/app:${t}`]),
            sync: { images: { 's3/app': tags }, destination: `${dst.address}/${prefix}` },
            check: async () => {
              await expectDigest(`${prefix}/app`, tags[0]!, s3Digests[0]!);
              await expectDigest(`${prefix}/app`, tags.at(-1)!, s3Digests.at(-1)!);
            },
          };
        },
        'recheck',
      ),
    );
  }

  // Scenario 4: 60 images with a signature and an SBOM each, copied with them.
  if (ONLY.has(4)) {
    const images = await seedSignedImages(src.url, src.address, 60, work);
    const tally = new Map<string, { signatures: number; sboms: number }>();
    const result = await runScenario({
      name: '4. 60 images, each with a cosign signature (.sig) and an oras SBOM (referrer), copied with them',
      plan: signedBatchPlan(
        images,
        () => src.address,
        () => dst,
        tally,
      ),
      mode: 'fresh',
      tools: referrerTools({ work, ours: OURS, source: () => src.address, insecure: insecureArgs }),
      runs: RUNS,
      say,
      freshTarget,
    });
    for (const [tool, counts] of tally) say(`- ${tool} carried ${counts.signatures} of 60 signatures and ${counts.sboms} of 60 SBOMs`);
    results.push(result);
  }

  say('\n## Summary (targets: 1 ≥ 1.0x, 2 ≥ 1.5x, 3 ≥ 2x faster than the fastest peer; 4 is judged over the WAN, bench:wan)');
  for (const s of results) say(`- ${s.name}: ${s.ratio.toFixed(2)}x`);

  if (!values['skip-rss']) {
    say('\n## Peak RSS copying one 2 GiB layer (target: under 200 MB)');
    const hugeDigest = (
      await seedImage({ url: src.url }, { repository: 's4/huge', tag: 'v1', format: 'docker', layers: [{ seed: 's4-2gib', size: 2048 * MiB }] })
    ).digest;
    for (const [label, runtime] of [
      ['as the CLI runs (Node defaults)', OURS],
      [`as the container runs (node ${containerNodeFlags().join(' ')})`, AS_CONTAINER],
    ] as const) {
      await freshTarget();
      const measured = await measure(process.execPath, [...runtime, 'copy', `${src.address}/s4/huge:v1`, `${dst.address}/s4/huge:v1`, ...insecureArgs()]);
      await expectDigest('s4/huge', 'v1', hugeDigest);
      say(
        measured.maxRssBytes === undefined
          ? `${label}: copied in ${measured.seconds.toFixed(1)} s; peak RSS unknown (/usr/bin/time missing: apt-get install time)`
          : `${label}: copied in ${measured.seconds.toFixed(1)} s; peak RSS ${(measured.maxRssBytes / MiB).toFixed(1)} MiB`,
      );
    }
  }
} finally {
  await Promise.all([src.stop(), dst.stop()]);
  rmSync(work, { recursive: true, force: true });
}
