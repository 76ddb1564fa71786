/**
 * The peers we measure against, in the same run and on the same registries: skopeo (Debian),
 * crane and regctl (built once from the Go module proxy into a cache outside the repository).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { BIN_DIR, CACHE_DIR } from '../devenv/cache.ts';
import { findExecutable } from '../devenv/process.ts';

const GO_TOOLS: Record<string, string> = {
  crane: 'github.com/google/go-containerregistry/cmd/crane@v0.22.1',
  regctl: 'github.com/regclient/regclient/cmd/regctl@v0.11.7',
};

/** The path of a Go-built peer, building it into the cache the first time. */
export function goTool(name: 'crane' | 'regctl'): string {
  const path = join(BIN_DIR, name);
  if (existsSync(path)) return path;
  mkdirSync(BIN_DIR, { recursive: true });
  process.stderr.write(`building ${name} from the Go module proxy (once, cached in ${BIN_DIR})…\n`);
  execFileSync('go', ['install', GO_TOOLS[name]!], { stdio: 'inherit', env: { ...process.env, GOBIN: BIN_DIR } });
  return path;
}

export function skopeo(): string {
  const path = findExecutable('skopeo');
  if (!path) throw new Error('skopeo is missing: apt-get install skopeo');
  return path;
}

/** The node flags of the Dockerfile's ENTRYPOINT: this project is measured as the container runs it. */
export function containerNodeFlags(): string[] {
  const dockerfile = readFileSync(join(import.meta.dirname, '../Dockerfile'), 'utf8');
  const entry = /^ENTRYPOINT (\[.+\])$/m.exec(dockerfile)?.[1];
  if (!entry) throw new Error('the Dockerfile has no ENTRYPOINT in exec form');
  const argv = JSON.parse(entry) as string[];
  return argv.slice(
    1,
    argv.findIndex((a) => a.endsWith('.js')),
  );
}

export interface Measured {
  readonly seconds: number;
  /** Peak resident set size in bytes, when /usr/bin/time is available. */
  readonly maxRssBytes: number | undefined;
  /** CPU time (user + system), when /usr/bin/time is available. */
  readonly cpuSeconds: number | undefined;
  /** The last 64 KiB (or `keep` bytes) the command printed, on standard output and on standard error. */
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number | null;
}

const GNU_TIME = '/usr/bin/time';

/** Runs a command to completion, timing it (and its peak RSS when GNU time exists); throws on failure. */
export function measure(
  command: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  options: { readonly allowFailure?: boolean; readonly keep?: number } = {},
): Promise<Measured> {
  const rssFile = join(CACHE_DIR, `rss-${process.pid}-${Math.random().toString(36).slice(2)}`);
  const timed = existsSync(GNU_TIME);
  const [cmd, argv] = timed ? [GNU_TIME, ['-f', '%M %U %S', '-o', rssFile, command, ...args]] : [command, [...args]];
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const keep = options.keep ?? 64 * 1024;
    child.stdout.on('data', (c: Buffer) => (stdout = (stdout + c.toString()).slice(-keep)));
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-keep)));
    child.on('error', reject);
    child.on('close', (code) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      let maxRssBytes: number | undefined;
      let cpuSeconds: number | undefined;
      if (timed && existsSync(rssFile)) {
        const [kib, user, system] = readFileSync(rssFile, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
        maxRssBytes = Number.isFinite(kib) ? kib! * 1024 : undefined;
        cpuSeconds = Number.isFinite(user) && Number.isFinite(system) ? user! + system! : undefined;
        rmSync(rssFile, { force: true });
      }
      if (code === 0 || options.allowFailure) resolve({ seconds, maxRssBytes, cpuSeconds, stdout, stderr, exitCode: code });
      else reject(new Error(`${command} ${args.slice(0, 4).join(' ')}… exited ${code}: ${stderr.trim().slice(-4000)}`));
    });
  });
}

/** Runs `jobs` commands with at most `concurrency` at once and returns the wall time. */
export async function measurePool(
  jobs: ReadonlyArray<readonly [string, readonly string[]]>,
  concurrency: number,
  env: NodeJS.ProcessEnv = process.env,
): Promise<Measured> {
  const started = process.hrtime.bigint();
  let next = 0;
  let maxRss = 0;
  let cpu: number | undefined;
  const worker = async () => {
    while (next < jobs.length) {
      const [command, args] = jobs[next++]!;
      const { maxRssBytes, cpuSeconds } = await measure(command, args, env);
      maxRss = Math.max(maxRss, maxRssBytes ?? 0);
      if (cpuSeconds !== undefined) cpu = (cpu ?? 0) + cpuSeconds;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { seconds: Number(process.hrtime.bigint() - started) / 1e9, maxRssBytes: maxRss || undefined, cpuSeconds: cpu, stdout: '', stderr: '', exitCode: 0 };
}
