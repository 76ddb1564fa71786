/**
 * Canary credentials: the registry password, Git token and SSH key the end-to-end tests use, each
 * a string that must never be seen anywhere but in the files that hold it.
 *
 * How the whole suite is checked (test/support/global-setup.ts, `npm test`): while the tests run,
 * every process's argument list on the machine is sampled; each test hands what it saw (controller
 * logs, errors, commits, pull request descriptions, metrics, events) to `exhibit()`, which keeps it
 * in the run's exhibit directory; at the end every exhibit and every sample is searched for every
 * canary, and one hit fails the run.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const CANARIES = {
  registryPassword: 'canary-registry-password-5f1e0c7a',
  gitToken: 'canary-git-token-9d24b6e1',
} as const;

/** Where the run keeps exhibits (set by the global setup); unset when a test file runs alone. */
export const EXHIBIT_DIR_ENV = 'IMAGE_CLONE_CANARY_EXHIBITS';

const planted: string[] = [];

/** Registers a secret made during the run (a Gitea token, a generated password) as a canary. */
export function plantCanary(value: string): void {
  if (value.length < 8) throw new Error('a canary must be long enough not to match by chance');
  planted.push(value);
  const dir = process.env[EXHIBIT_DIR_ENV];
  if (dir) {
    mkdirSync(dir, { recursive: true });
    // Written whole, then renamed: the scanner reading a half-written (empty) file would take '' for a canary found everywhere.
    const name = `canaries-${process.pid}-${Date.now()}-${planted.length}.txt`;
    writeFileSync(join(dir, `.${name}`), value);
    renameSync(join(dir, `.${name}`), join(dir, name));
  }
}

/** Registers an SSH private key as a canary: every base64 line of its body. */
export function plantSshKey(keyFile: string): void {
  for (const line of readFileSync(keyFile, 'utf8').split('\n')) if (line.trim().length >= 40 && !line.startsWith('-----')) plantCanary(line.trim());
}

/** Every canary string known in this process: the fixed ones, those planted, and `extra`. */
export function canaryStrings(extra: readonly string[] = []): string[] {
  return [...Object.values(CANARIES), ...planted, ...extra].filter((c) => c.length >= 8);
}

/** The canaries found in `text`, named (never printed in full). */
export function leaksIn(text: string, canaries: readonly string[] = canaryStrings()): string[] {
  return canaries.filter((c) => text.includes(c)).map((c) => `${c.slice(0, 12)}…`);
}

/** Keeps `text` (what a test saw, labelled) for the end-of-run scan; also checks it right away. */
export function exhibit(label: string, text: string): string[] {
  const dir = process.env[EXHIBIT_DIR_ENV];
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${process.pid}-${Date.now()}-${label.replace(/[^a-z0-9-]+/gi, '_')}.txt`), text);
  }
  return leaksIn(text);
}
