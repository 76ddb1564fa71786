/**
 * Copier benchmark: 10,000 Deployments across 500 namespaces in a real kube-apiserver, every image
 * already backed up. Measures, for `image-clone copier --once` run as a process (the built
 * dist/cli.js): the time from start until every workload is decided, its peak RSS, and the API
 * requests it made (the API server's own apiserver_request_total, before and after).
 *
 * Two runs: the first writes a handoff record per workload (they still name the source images);
 * the second is a restart with everything already done, the steady state.
 *
 * Usage: npm run bench:copier [-- --deployments N --namespaces M --images K]
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { AppsV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import { startCluster } from '../devenv/cluster.ts';
import { startRegistryServer } from '../devenv/registry-server.ts';
import { seedImage } from '../devenv/seed.ts';
import { backupReference, parseBackupTarget } from '../src/image/backup.ts';
import { parseReference } from '../src/image/reference.ts';
import { createRegistryStack } from '../src/registry/index.ts';
import { mapLimited } from '../src/util/limit.ts';
import { containerNodeFlags } from './peers.ts';

const { values } = parseArgs({
  options: { deployments: { type: 'string', default: '10000' }, namespaces: { type: 'string', default: '500' }, images: { type: 'string', default: '20' } },
});
const DEPLOYMENTS = Number(values.deployments);
const NAMESPACES = Number(values.namespaces);
const IMAGES = Number(values.images);
const say = (line: string) => process.stdout.write(`${line}\n`);

execFileSync(process.execPath, [join(import.meta.dirname, '../node_modules/typescript/bin/tsc'), '-p', join(import.meta.dirname, '../tsconfig.build.json')], {
  stdio: 'inherit',
});
const CLI = join(import.meta.dirname, '../dist/cli.js');
const work = mkdtempSync(join(tmpdir(), 'image-clone-copier-bench-'));

const [cluster, source, backup] = await Promise.all([
  startCluster({ dir: join(work, 'cluster'), progress: (l) => process.stderr.write(`cluster: ${l}\n`) }),
  startRegistryServer(),
  startRegistryServer(),
]);
try {
  const kc = new KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const apps = kc.makeApiClient(AppsV1Api);

  say(`# Copier benchmark (${new Date().toISOString()}): ${DEPLOYMENTS} Deployments, ${NAMESPACES} namespaces, ${IMAGES} distinct images, all backed up`);
  const images: string[] = [];
  const target = parseBackupTarget(`${backup.address}/mirror`);
  const stack = createRegistryStack({ insecureRegistries: [source.address, backup.address] });
  for (let i = 0; i < IMAGES; i++) {
    await seedImage(
      { url: source.url },
      {
        repository: `bench/app-${i}`,
        tag: '1.0',
        format: 'oci',
        layers: [
          { seed: 'bench-base', size: 4096 },
          { seed: `app-${i}`, size: 512 },
        ],
      },
    );
    const image = `${source.address}/bench/app-${i}:1.0`;
    await stack.engine.copy({ source: parseReference(image), destination: backupReference(parseReference(image), target) });
    images.push(image);
  }
  await stack.close();

  const started = Date.now();
  await mapLimited(
    Array.from({ length: NAMESPACES }, (_, i) => `bench-${i}`),
    16,
    (name) => core.createNamespace({ body: { metadata: { name } } }),
  );
  await mapLimited(
    Array.from({ length: DEPLOYMENTS }, (_, i) => i),
    32,
    (i) =>
      apps.createNamespacedDeployment({
        namespace: `bench-${i % NAMESPACES}`,
        body: {
          metadata: { name: `app-${i}` },
          spec: {
            selector: { matchLabels: { app: `app-${i}` } },
            template: { metadata: { labels: { app: `app-${i}` } }, spec: { containers: [{ name: 'app', image: images[i % IMAGES]! }] } },
          },
        },
      }),
  );
  say(`created ${NAMESPACES} namespaces and ${DEPLOYMENTS} Deployments in ${((Date.now() - started) / 1000).toFixed(1)} s`);

  const adminDispatcher = adminAgent(cluster.kubeconfig);
  const handoff = join(work, 'handoff');
  for (const label of ['first run (writes a record per workload)', 'restart (everything already done)']) {
    const before = await apiRequests(cluster.server, adminDispatcher);
    const run = await runCopier([
      'copier',
      '--once',
      '--kubeconfig',
      cluster.kubeconfig,
      '--backup-registry',
      `${backup.address}/mirror`,
      '--handoff-dir',
      handoff,
      '--insecure-registry',
      source.address,
      '--insecure-registry',
      backup.address,
      '--controller-namespace',
      'image-clone-namespace',
      '--log-level',
      'warn',
    ]);
    const after = await apiRequests(cluster.server, adminDispatcher);
    const delta = diff(before, after);
    const total = [...delta.values()].reduce((a, b) => a + b, 0);
    say(`\n## ${label}`);
    say(
      `- start to every workload decided: ${run.decided} inside the process; process wall time ${run.seconds.toFixed(2)} s, start-up and exit included (target < 10 s)`,
    );
    say(`- peak RSS: ${run.maxRssMiB === undefined ? 'unknown (/usr/bin/time missing)' : `${run.maxRssMiB.toFixed(0)} MiB`} (target < 200 MiB, #14)`);
    say(`- API requests: ${total} (target: none per workload), by verb and resource:`);
    for (const [key, n] of [...delta].sort((a, b) => b[1] - a[1])) say(`  - ${key}: ${n}`);
    say(`- handoff records on disk: ${readdirSync(handoff).filter((f) => f.endsWith('.json')).length}; exit code ${run.code}`);
  }
  await adminDispatcher.close();
} finally {
  await Promise.all([cluster.stop(), source.stop(), backup.stop()]);
  rmSync(work, { recursive: true, force: true });
}

function runCopier(args: string[]): Promise<{ seconds: number; decided: string; maxRssMiB: number | undefined; code: number | null }> {
  const rssFile = join(work, 'rss');
  const timed = existsSync('/usr/bin/time');
  // Run as the container runs it: the Dockerfile's node flags.
  const node = [process.execPath, ...containerNodeFlags(), CLI, ...args];
  const [cmd, argv] = timed ? ['/usr/bin/time', ['-f', '%M', '-o', rssFile, ...node]] : [node[0]!, node.slice(1)];
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv as string[], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
      const maxRssMiB = timed && existsSync(rssFile) ? Number(readFileSync(rssFile, 'utf8').trim().split('\n').pop()) / 1024 : undefined;
      resolve({ seconds, decided: /decided in ([\d.]+ s)/.exec(stdout)?.[1] ?? '?', maxRssMiB, code });
    });
  });
}

function adminAgent(kubeconfig: string): Agent {
  const config = JSON.parse(readFileSync(kubeconfig, 'utf8')) as {
    clusters: Array<{ cluster: Record<string, string> }>;
    users: Array<{ user: Record<string, string> }>;
  };
  const b64 = (v: string | undefined) => Buffer.from(v ?? '', 'base64').toString('utf8');
  return new Agent({
    connect: {
      ca: b64(config.clusters[0]!.cluster['certificate-authority-data']),
      cert: b64(config.users[0]!.user['client-certificate-data']),
      key: b64(config.users[0]!.user['client-key-data']),
    },
  });
}

/** apiserver_request_total summed by verb and resource (excluding the metrics scrape itself). */
async function apiRequests(server: string, dispatcher: Agent): Promise<Map<string, number>> {
  const response = await request(`${server}/metrics`, { dispatcher });
  const text = await response.body.text();
  const counts = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.resource === '' && labels.subresource === '') continue; // non-resource paths (/metrics, /healthz)
    const key = `${labels.verb} ${labels.group ? `${labels.group}/` : ''}${labels.resource}${labels.subresource ? `/${labels.subresource}` : ''}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.split(' ').pop()));
  }
  return counts;
}

function diff(before: Map<string, number>, after: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [key, n] of after) {
    const d = n - (before.get(key) ?? 0);
    if (d > 0) out.set(key, d);
  }
  return out;
}
