/**
 * Node's test runner global setup for `npm test`: the canary scan over the whole suite.
 *
 * While the tests run, the argument list of every process on the machine (registries, git, ssh,
 * kube-apiserver, the copier and rewriter processes, the tests themselves) is read every 25 ms
 * and searched for the canaries. At the end the exhibits the tests kept (logs, errors, commits,
 * pull request descriptions, metrics, events) are searched too. A single hit fails the run.
 */
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { BIN_DIR } from '../../devenv/cache.ts';
import { canaryStrings, EXHIBIT_DIR_ENV, leaksIn } from './canaries.ts';

const dir = mkdtempSync(join(tmpdir(), 'image-clone-canaries-'));
let sampler: NodeJS.Timeout | undefined;
let samples = 0;
const argumentLeaks = new Set<string>();

let known: { at: number; canaries: string[] } = { at: 0, canaries: [] };

/** The fixed canaries and those the test processes planted (re-read once a second). */
function currentCanaries(): string[] {
  if (Date.now() - known.at > 1_000) {
    const planted = readdirSync(dir)
      .filter((f) => f.startsWith('canaries-'))
      .map((f) => readFileSync(join(dir, f), 'utf8'));
    known = { at: Date.now(), canaries: canaryStrings(planted) };
  }
  return known.canaries;
}

function sampleArgumentLists(): void {
  samples++;
  const canaries = currentCanaries();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1');
    } catch {
      continue; // gone already
    }
    for (const leak of leaksIn(cmdline, canaries)) argumentLeaks.add(`${leak} in the arguments of ${cmdline.split('\0').slice(0, 3).join(' ')}`);
  }
}

export async function globalSetup(): Promise<void> {
  process.env[EXHIBIT_DIR_ENV] = dir;
  // The rewriter proves its edits with kustomize found on PATH, as in the image: the cached build.
  process.env.PATH = `${BIN_DIR}${delimiter}${process.env.PATH ?? ''}`;
  sampler = setInterval(sampleArgumentLists, 25);
}

export async function globalTeardown(): Promise<void> {
  clearInterval(sampler);
  const files = readdirSync(dir);
  const plantedFiles = files.filter((f) => f.startsWith('canaries-'));
  const canaries = canaryStrings(plantedFiles.map((f) => readFileSync(join(dir, f), 'utf8')));
  const leaks = [...argumentLeaks];
  let exhibits = 0;
  for (const file of files) {
    if (file.startsWith('canaries-')) continue;
    exhibits++;
    for (const leak of leaksIn(readFileSync(join(dir, file), 'utf8'), canaries)) leaks.push(`${leak} in ${file}`);
  }
  rmSync(dir, { recursive: true, force: true });
  const summary = `canary scan: ${canaries.length} canaries, ${samples} samples of every process's arguments, ${exhibits} exhibits`;
  if (leaks.length > 0) {
    console.error(`${summary}: ${leaks.length} LEAKS\n${leaks.join('\n')}`);
    throw new Error(`a canary credential leaked (${leaks.length})`);
  }
  console.log(`${summary}: no canary anywhere`);
}
