/**
 * Small helpers for starting real components on loopback: free ports, waiting until a server
 * answers, and child processes that are stopped with their launcher.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, host, () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** The absolute path of `name` on PATH, or undefined. */
export function findExecutable(name: string, extraDirs: readonly string[] = []): string | undefined {
  for (const dir of [...extraDirs, ...(process.env.PATH ?? '').split(delimiter)]) {
    if (dir === '') continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Polls `probe` until it resolves true, or throws after `timeoutMs` with `what` and the last error. */
export async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 20_000, child?: ChildProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what}: the process exited with code ${child.exitCode}`);
    try {
      if (await probe()) return;
    } catch (error) {
      last = error;
    }
    await sleep(50);
  }
  throw new Error(`${what}: not ready after ${timeoutMs} ms${last ? ` (${(last as Error).message})` : ''}`);
}

export interface Daemon {
  readonly child: ChildProcess;
  /** Everything it wrote, for diagnosing a failed start. */
  output(): string;
  stop(): Promise<void>;
}

/** Starts a long-running child, captures its output (bounded), and stops it with SIGTERM then SIGKILL. */
export function startDaemon(command: string, args: readonly string[], options: SpawnOptions = {}): Daemon {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  let captured = '';
  const keep = (chunk: Buffer) => {
    captured = (captured + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => captured,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Runs a command to completion with optional stdin; rejects with its stderr on a non-zero exit. */
export function run(command: string, args: readonly string[], input?: string, options: SpawnOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    // No input: no stdin pipe at all. With input: a command that exits without reading it makes
    // the write fail with EPIPE, which must not become an uncaught exception.
    const child = spawn(command, args, { stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve(stdout) : reject(new Error(`${command} exited with ${code}: ${stderr.trim()}`))));
    child.stdin?.on('error', () => {});
    child.stdin?.end(input);
  });
}
