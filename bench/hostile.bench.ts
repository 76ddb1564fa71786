/**
 * Hostile-tenant benchmark (issue #22): each hostile input of the "Bounded by design" table run side
 * by side with a well-behaved tenant, on 127.0.0.1 only. Prints, per side, the well-behaved tenant's
 * completion time alone and beside the hostile one (target: within 1.5x), the process's peak RSS
 * (targets: the copier under 250 MiB, the rewriter under 300 MiB), and YAML planning's cost for 3x
 * the input (target: under 4x).
 *
 *   copier:   a registry dripping 10 images' blobs a byte a second, an image declaring a 25 GiB
 *             layer, 48 images behind a token server answering 1 MiB tokens; beside 8 images of
 *             8 MiB from a real docker-registry.
 *   rewriter: a chart repository serving a 10 MiB index.yaml, a FIFO and a 600 MB file in the
 *             handoff directory, a file of 3,000 Deployments; beside 20 records of a repository of
 *             20 Deployments (`image-clone rewriter --once`, the shipped CLI, real kustomize).
 *   planning: planRepository over one file of 1,000 and of 3,000 Deployments.
 *
 * Usage: npm run bench:hostile [-- --only copier,rewriter,planning] [--hostile bulk|chart|handoff]
 * (--hostile: only that one of the rewriter's hostile inputs, to see what each costs)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BIN_DIR, HELM_BIN } from '../devenv/cache.ts';
import { startRegistryServer } from '../devenv/registry-server.ts';
import { seedImage } from '../devenv/seed.ts';
import { Ledger } from '../src/handoff/ledger.ts';
import { parseReference } from '../src/image/reference.ts';
import { planRepository } from '../src/rewriter/edit/plan.ts';
import { bareRepository } from '../test/support/git.ts';
import { startHostileServer } from './hostile/server.ts';
import { containerNodeFlags, measure, type Measured } from './peers.ts';

const { values } = parseArgs({ options: { only: { type: 'string', default: 'copier,rewriter,planning' }, hostile: { type: 'string' } } });
const ONLY = new Set(values.only.split(','));
// Measured as the container runs it: the shipped build, with the Dockerfile's node flags.
execFileSync(process.execPath, [join(import.meta.dirname, '../node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, '../tsconfig.build.json')], {
  stdio: 'inherit',
});
const AS_CONTAINER = [...containerNodeFlags(), join(import.meta.dirname, '../dist/cli.js')];
const say = (line: string) => process.stdout.write(`${line}\n`);
const MiB = 1024 * 1024;
const mib = (m: Measured) => (m.maxRssBytes === undefined ? 'n/a' : `${Math.round(m.maxRssBytes / MiB)} MiB`);
const work = mkdtempSync(join(tmpdir(), 'image-clone-hostile-bench-'));
const DIGEST = `sha256:${'a'.repeat(64)}`;

const deployment = (i: number, image: string) =>
  [
    '---',
    'apiVersion: apps/v1',
    'kind: Deployment',
    'metadata:',
    `  name: app-${i}`,
    'spec:',
    '  template:',
    '    spec:',
    '      containers:',
    '        - name: app',
    `          image: ${image}`,
    '',
  ].join('\n');

try {
  // ---- The copier's side.
  if (ONLY.has('copier')) {
    const [source, backup] = await Promise.all([startRegistryServer(), startRegistryServer()]);
    // Two hosts: a registry's token flow is per host, so the token server gets one of its own.
    const hostile = await startHostileServer({ drips: 10, tokenRepos: 0 });
    const tokens = await startHostileServer({ drips: 0, tokenRepos: 48 });
    try {
      const good: string[] = [];
      for (let i = 0; i < 8; i++) {
        await seedImage({ url: source.url }, { repository: `team/app-${i}`, tag: '1', format: 'oci', layers: [{ seed: `hostile-bench-${i}`, size: 8 * MiB }] });
        good.push(`${source.address}/team/app-${i}:1`);
      }
      const copierRun = async (name: string, hostileImages: readonly string[]) => {
        const spec = join(work, `${name}.json`);
        writeFileSync(
          spec,
          JSON.stringify({
            insecure: [source.address, backup.address, hostile.address, tokens.address],
            backup: `${backup.address}/${name}`,
            good,
            hostile: hostileImages,
          }),
        );
        const measured = await measure(process.execPath, [...containerNodeFlags(), join(import.meta.dirname, 'hostile/copy-tenants.ts'), spec]);
        return {
          measured,
          result: JSON.parse(measured.stdout.trim().split('\n').pop()!) as { goodSeconds: number; hostileSeconds: number; hostile: Record<string, number> },
        };
      };
      say('## The copier: 8 images of 8 MiB, alone and beside a hostile registry');
      const alone = await copierRun('alone', []);
      const beside = await copierRun('beside', [...hostile.dripping, hostile.huge, ...tokens.bigTokens]);
      say('| run | well-behaved tenant done | process ran | peak RSS | hostile images ended |');
      say('|---|---|---|---|---|');
      say(`| alone | ${alone.result.goodSeconds.toFixed(2)} s | ${alone.measured.seconds.toFixed(1)} s | ${mib(alone.measured)} | - |`);
      say(
        `| beside 10 dripping, 1 of 25 GiB, 48 with 1 MiB tokens | ${beside.result.goodSeconds.toFixed(2)} s | ${beside.measured.seconds.toFixed(1)} s | ${mib(beside.measured)} | ${Object.entries(
          beside.result.hostile,
        )
          .map(([how, n]) => `${n}: ${how}`)
          .join('; ')} |`,
      );
      say(`well-behaved tenant, beside the hostile one vs alone: ${(beside.result.goodSeconds / alone.result.goodSeconds).toFixed(2)}x (target: within 1.5x)`);
    } finally {
      hostile.close();
      tokens.close();
      await Promise.all([source.stop(), backup.stop()]);
    }
  }

  // ---- The rewriter's side.
  if (ONLY.has('rewriter')) {
    const charts = await startHostileServer({ drips: 0, tokenRepos: 0 });
    try {
      const goodFiles: Record<string, string> = {};
      for (let i = 0; i < 20; i++) goodFiles[`apps/app-${i}.yaml`] = deployment(i, `docker.io/team/app-${i}:1`);
      const bulk: string[] = [];
      for (let i = 0; i < 3000; i++) bulk.push(deployment(i, `docker.io/bulk/app-${i}:1`));
      const rewriterRun = async (name: string, withHostile: boolean) => {
        const dir = join(work, name);
        mkdirSync(dir);
        const goodRepo = bareRepository(join(dir, 'good.git'), goodFiles);
        const ledger = new Ledger(join(dir, 'handoff'));
        const record = (repoURL: string, workload: string, sourceImage: string, extra: object = {}) =>
          ledger.write({
            workload: { kind: 'Deployment', namespace: 'apps', name: workload, uid: `uid-${workload}` },
            images: [
              { container: 'app', init: false, source: sourceImage, backup: `backup.example/${sourceImage}`, digest: DIGEST, platforms: [], sizeBytes: 1 },
            ],
            owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name: 'apps', sources: [{ repoURL, path: 'apps', revision: 'main' }], ...extra },
          });
        for (let i = 0; i < 20; i++) await record(`file://${goodRepo}`, `app-${i}`, `docker.io/team/app-${i}:1`);
        const only = values.hostile;
        if (withHostile && (!only || only === 'bulk')) {
          const bulkRepo = bareRepository(join(dir, 'bulk.git'), { 'apps/all.yaml': bulk.join('') });
          await record(`file://${bulkRepo}`, 'app-2999', 'docker.io/bulk/app-2999:1');
        }
        if (withHostile && (!only || only === 'chart')) {
          const chartRepo = bareRepository(join(dir, 'chart.git'), {
            'apps/release.yaml': 'apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: web, namespace: apps}\nspec: {}\n',
          });
          await ledger.write({
            workload: { kind: 'Deployment', namespace: 'apps', name: 'web', uid: 'uid-web' },
            images: [
              { container: 'web', init: false, source: 'docker.io/team/web:1', backup: 'backup.example/web:1', digest: DIGEST, platforms: [], sizeBytes: 1 },
            ],
            owner: {
              tool: 'flux',
              kind: 'HelmRelease',
              namespace: 'apps',
              name: 'web',
              sources: [{ repoURL: `file://${chartRepo}`, path: 'apps', revision: 'main' }],
              declares: { kind: 'HelmRelease', namespace: 'apps', name: 'web', chart: { repoURL: charts.chartRepo, name: 'web', version: '1.0.0' } },
            },
          });
        }
        if (withHostile && (!only || only === 'handoff')) {
          execFileSync('mkfifo', [join(ledger.dir, 'fifo.json')]);
          writeFileSync(join(ledger.dir, 'huge.json'), '');
          truncateSync(join(ledger.dir, 'huge.json'), 600 * 1000 * 1000);
        }
        const startedAt = Date.now();
        const measured = await measure(
          process.execPath,
          [
            ...AS_CONTAINER,
            'rewriter',
            '--once',
            '--handoff-dir',
            ledger.dir,
            '--cache-dir',
            join(dir, 'cache'),
            '--git-mode',
            'commit',
            '--kustomize',
            join(BIN_DIR, 'kustomize'),
            '--helm',
            HELM_BIN,
            '--credentials-for',
            `${charts.chartRepo}/`,
            '--health-address',
            '',
          ],
          { ...process.env, NODE_OPTIONS: '' },
          { allowFailure: true },
        );
        // When the well-behaved tenant's change was pushed, from the rewriter's own log.
        const lines = measured.stderr.split('\n').flatMap((line) => {
          try {
            return [JSON.parse(line) as { time: string; msg: string; repo?: string }];
          } catch {
            return [];
          }
        });
        const pushed = lines.find((l) => l.msg === 'change pushed' && l.repo?.includes('good.git'));
        return { measured, goodSeconds: pushed ? (Date.parse(pushed.time) - startedAt) / 1000 : Number.NaN, pending: ledger.pendingIds().length };
      };
      say('');
      say('## The rewriter: 20 records of a 20-Deployment repository, alone and beside the hostile inputs');
      const alone = await rewriterRun('rewriter-alone', false);
      const beside = await rewriterRun('rewriter-beside', true);
      say('| run | well-behaved change pushed | `rewriter --once` took | exit | peak RSS | records left pending |');
      say('|---|---|---|---|---|---|');
      for (const [label, run] of [
        ['alone', alone],
        ['beside a 10 MiB chart index, a FIFO, a 600 MB record, 3,000 Deployments in a file', beside],
      ] as const)
        say(
          `| ${label} | ${run.goodSeconds.toFixed(2)} s | ${run.measured.seconds.toFixed(2)} s | ${run.measured.exitCode} | ${mib(run.measured)} | ${run.pending} |`,
        );
      say(`well-behaved tenant, beside the hostile one vs alone: ${(beside.goodSeconds / alone.goodSeconds).toFixed(2)}x (target: within 1.5x)`);
      const refusals = beside.measured.stderr.split('\n').filter((l) => /unreadable handoff record|index|failed/.test(l));
      for (const line of refusals.slice(0, 8)) say(`    ${line.slice(0, 300)}`);
    } finally {
      charts.close();
    }
  }

  // ---- Planning.
  if (ONLY.has('planning')) {
    say('');
    say('## YAML planning: one file of 1,000 and of 3,000 Deployments');
    const plan = (count: number) => {
      const dir = join(work, `plan-${count}`);
      mkdirSync(dir);
      writeFileSync(join(dir, 'all.yaml'), Array.from({ length: count }, (_, i) => deployment(i, `docker.io/bulk/app-${i}:1`)).join(''));
      const replacements = [{ from: parseReference(`docker.io/bulk/app-${count - 1}:1`), to: 'backup.example/bulk/app:1' }];
      const times: number[] = [];
      for (let run = 0; run < 3; run++) {
        const started = performance.now();
        planRepository(dir, undefined, replacements);
        times.push((performance.now() - started) / 1000);
      }
      return times.sort((a, b) => a - b)[1]!;
    };
    const one = plan(1000);
    const three = plan(3000);
    say(`1,000: ${one.toFixed(3)} s; 3,000: ${three.toFixed(3)} s; ratio ${(three / one).toFixed(2)} for 3x the input (target < 4)`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
