/**
 * The soak (issue #6): the whole installation (test/support/installation.ts) under churn and
 * faults for a long time, watching the copier's and the rewriter's memory and open handles.
 *
 *   npm run soak -- [--minutes 60] [--fault-rate 0.05] [--seed N] [--sample-every 30] [--out FILE]
 *
 * Churn, as a platform team and Argo CD would make it: every couple of seconds a workload is
 * created (a manifest pushed to the repository, the Deployment created in the cluster), moved to
 * another image (both again), or deleted (both), keeping between 40 and 80 workloads. The platform's pushes race the rewriter's.
 * Faults: the given fraction of every request to both registries, the API server and Git.
 *
 * Every `--sample-every` seconds it records each process's RSS and open file descriptors and the
 * work left (copier queue depth, pending handoff records) to a JSON-lines file and the terminal.
 * At the end churn stops and the run must drain: no pending record, every live workload on its
 * backup, no half image. It fails (exit 1) if it does not drain, if a process died, if the RSS
 * of the last quarter exceeds the first quarter's by more than 15%, or if descriptors grew by more
 * than 10. Not part of `npm test`: it is slow by design.
 */
import { appendFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import { AppsV1Api } from '@kubernetes/client-node';
import { request } from 'undici';
import { seededRandom } from '../../devenv/seeded-random.ts';
import { recordManaged } from '../../devenv/gitops-crds.ts';
import { deploymentObject, deploymentYaml, git, startInstallation, type Installation, type Supervised, type Workload } from '../support/installation.ts';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    'fault-rate': { type: 'string', default: '0.05' },
    seed: { type: 'string' },
    'sample-every': { type: 'string', default: '30' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});
const minutes = Number(values.minutes);
const faultRate = Number(values['fault-rate']);
const seed = Number(values.seed ?? Date.now() % 100_000);
const sampleEveryMs = Number(values['sample-every']) * 1000;
const out = values.out ?? join(process.cwd(), `soak-${new Date().toISOString().replace(/[:.]/g, '-')}.jsonl`);
const say = (line: string) => console.log(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}`);

interface ProcessSample {
  pid: number | undefined;
  rssMiB: number;
  fds: number;
}
interface Sample {
  at: number;
  minute: number;
  copier: ProcessSample;
  rewriter: ProcessSample;
  queueDepth: number;
  pendingRecords: number;
  workloads: number;
  ops: number;
}

function processSample(p: Supervised): ProcessSample {
  const pid = p.pid;
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return { pid, rssMiB: Math.round((rssKiB / 1024) * 10) / 10, fds: readdirSync(`/proc/${pid}/fd`).length };
  } catch {
    return { pid, rssMiB: 0, fds: 0 };
  }
}

async function metric(url: string, name: string): Promise<number> {
  try {
    const response = await request(url);
    const text = await response.body.text();
    return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  } catch {
    return NaN;
  }
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? NaN : s[Math.floor(s.length / 2)]!;
};

async function churn(installation: Installation, stopAt: number, random: () => number, counter: { ops: number }): Promise<void> {
  const apps = installation.kubeConfig.makeApiClient(AppsV1Api);
  const clone = installation.platformClone;
  let created = 0;
  /** The images each workload has run (by name; names are never reused). */
  const history = new Map<string, Set<number>>();
  const platformPush = (message: string) => {
    git(clone, 'add', '-A');
    if (git(clone, 'status', '--porcelain') === '') return; // moved to the image it already had
    git(clone, 'commit', '-qm', message);
    for (let attempt = 0; ; attempt++) {
      try {
        git(clone, 'push', '-q', 'origin', 'HEAD:main');
        return;
      } catch (error) {
        if (attempt >= 20) throw error;
        git(clone, 'pull', '-q', '--rebase', 'origin', 'main');
      }
    }
  };
  while (Date.now() < stopAt) {
    await sleep(1_000 + random() * 2_000);
    git(clone, 'pull', '-q', '--rebase', 'origin', 'main');
    const roll = random();
    const live = installation.workloads;
    try {
      // Creations and deletions balance around the starting count, so memory measures leaks, not growth.
      const create = live.length < 40 || (live.length <= 80 && roll < 0.35);
      const remove = !create && (live.length > 80 || roll >= 0.65);
      if (create) {
        const namespace = `team-${Math.floor(random() * 10)}`;
        const w: Workload = { namespace, name: `soak-${created++}`, image: Math.floor(random() * installation.images.length), file: '' };
        Object.assign(w, { file: `apps/${namespace}/${w.name}.yaml` });
        writeFileSync(join(clone, w.file), deploymentYaml(w, installation.images[w.image]!.reference));
        platformPush(`add ${namespace}/${w.name}`);
        await apps.createNamespacedDeployment({ namespace, body: deploymentObject(w, installation.images[w.image]!.reference) });
        // Argo CD lists what it synced; the controller trusts only an owner that lists the workload.
        await recordManaged(installation.kubeConfig, 'Application', 'argocd', namespace, [{ group: 'apps', kind: 'Deployment', namespace, name: w.name }]);
        live.push(w);
      } else if (!remove) {
        // Always to an image this workload never ran: going back to an earlier one is a revert of
        // the controller's change, which it does not propose again (see docs/rewriter.md).
        const w = live[Math.floor(random() * live.length)]!;
        const ran = history.get(w.name) ?? new Set([w.image]);
        const fresh = installation.images.map((_, i) => i).filter((i) => !ran.has(i));
        if (fresh.length === 0) continue;
        w.image = fresh[Math.floor(random() * fresh.length)]!;
        history.set(w.name, ran.add(w.image));
        const image = installation.images[w.image]!.reference;
        writeFileSync(join(clone, w.file), deploymentYaml(w, image));
        platformPush(`move ${w.namespace}/${w.name} to ${image}`);
        await apps.patchNamespacedDeployment({
          namespace: w.namespace,
          name: w.name,
          body: [{ op: 'replace', path: '/spec/template/spec/containers/0/image', value: image }],
        });
      } else {
        const index = Math.floor(random() * live.length);
        const [w] = live.splice(index, 1);
        unlinkSync(join(clone, w!.file));
        platformPush(`remove ${w!.namespace}/${w!.name}`);
        await apps.deleteNamespacedDeployment({ namespace: w!.namespace, name: w!.name });
      }
      counter.ops++;
    } catch (error) {
      say(`churn operation failed (continuing): ${(error as Error).message.split('\n')[0]}`);
    }
  }
}

async function main(): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'image-clone-soak-'));
  const random = seededRandom(seed);
  say(`${minutes} minutes, ${faultRate * 100}% of requests faulted, seed ${seed}; samples to ${out}`);
  const installation = await startInstallation({ dir, images: 40, workloads: 60, faultRate, seed, progress: (line) => say(`setting up: ${line}`) });
  // Interrupted: stop every server and process it started, and remove its directory.
  process.once('SIGINT', () => {
    say('interrupted; stopping everything');
    void installation.stop().finally(() => {
      if (!values.keep) rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  });
  const samples: Sample[] = [];
  const counter = { ops: 0 };
  const started = Date.now();
  const sample = async () => {
    const s: Sample = {
      at: Date.now(),
      minute: Math.round(((Date.now() - started) / 60_000) * 10) / 10,
      copier: processSample(installation.copier),
      rewriter: processSample(installation.rewriter),
      queueDepth: await metric(installation.metricsUrls.copier, 'image_clone_queue_depth'),
      pendingRecords: installation.ledger.pendingIds().length,
      workloads: installation.workloads.length,
      ops: counter.ops,
    };
    samples.push(s);
    appendFileSync(out, `${JSON.stringify(s)}\n`);
    say(
      `t=${s.minute} min  copier ${s.copier.rssMiB} MiB ${s.copier.fds} fds  rewriter ${s.rewriter.rssMiB} MiB ${s.rewriter.fds} fds  queue ${s.queueDepth}  pending ${s.pendingRecords}  workloads ${s.workloads}  churn ops ${s.ops}`,
    );
  };
  try {
    await installation.converge(600_000);
    say(`initial 60 workloads converged in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const sampler = setInterval(() => void sample(), sampleEveryMs);
    await sample();
    const stopAt = Date.now() + minutes * 60_000;
    await churn(installation, stopAt, random, counter);
    const ops = counter.ops;
    say(`churn stopped after ${ops} operations; waiting for the work to drain`);
    const drainStarted = Date.now();
    let drained = true;
    try {
      await installation.converge(600_000, { exactlyOnce: false });
    } catch (error) {
      drained = false;
      say((error as Error).message);
    }
    const drainSeconds = (Date.now() - drainStarted) / 1000;
    clearInterval(sampler);
    await sample();

    const quarter = Math.max(1, Math.floor(samples.length / 4));
    const first = samples.slice(1, 1 + quarter);
    const last = samples.slice(-quarter - 1, -1);
    const verdicts: string[] = [];
    const report: string[] = [
      `soak: ${minutes} min, seed ${seed}, ${ops} churn operations, ${samples.length} samples, drain ${drainSeconds.toFixed(1)} s (${drained ? 'drained' : 'NOT DRAINED'})`,
    ];
    for (const role of ['copier', 'rewriter'] as const) {
      const rssFirst = median(first.map((s) => s[role].rssMiB));
      const rssLast = median(last.map((s) => s[role].rssMiB));
      const rssMax = Math.max(...samples.map((s) => s[role].rssMiB));
      const fdFirst = median(first.map((s) => s[role].fds));
      const fdLast = median(last.map((s) => s[role].fds));
      const restarts = installation[role].restarts;
      report.push(
        `${role}: RSS median first quarter ${rssFirst} MiB, last quarter ${rssLast} MiB (${((rssLast / rssFirst - 1) * 100).toFixed(1)}%), max ${rssMax} MiB; fds ${fdFirst} -> ${fdLast}; restarts ${restarts}`,
      );
      if (rssLast > rssFirst * 1.15) verdicts.push(`${role} memory grew ${((rssLast / rssFirst - 1) * 100).toFixed(1)}%`);
      if (fdLast > fdFirst + 10) verdicts.push(`${role} open descriptors grew ${fdFirst} -> ${fdLast}`);
      if (restarts > 0) verdicts.push(`${role} died ${restarts} times`);
    }
    for (const [name, p] of Object.entries(installation.proxies))
      report.push(`${name} proxy: ${p.stats.requests} requests, faults ${JSON.stringify(p.stats.faults)}`);
    report.push(
      `repository: ${git(installation.bareRepo, 'rev-list', '--count', 'main')} commits on main; handoff records: ${readdirSync(installation.ledger.dir).filter((n) => n.endsWith('.json')).length}`,
    );
    if (!drained) verdicts.push('the work did not drain');
    for (const line of report) say(line);
    say(verdicts.length === 0 ? 'PASS: memory flat, descriptors flat, no restarts, drained' : `FAIL: ${verdicts.join('; ')}`);
    writeFileSync(`${out.replace(/\.jsonl$/, '')}.summary.txt`, `${[...report, verdicts.length === 0 ? 'PASS' : `FAIL: ${verdicts.join('; ')}`].join('\n')}\n`);
    return verdicts.length === 0 ? 0 : 1;
  } finally {
    await installation.stop();
    if (!values.keep) rmSync(dir, { recursive: true, force: true });
    else say(`kept ${dir}`);
  }
}

process.exitCode = await main();
