/**
 * The programs the render proofs run (helm, kustomize): each call bounded in time and output, its
 * failure turned into a one-line reason (the program's last words, or that it is missing).
 */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { ImageCloneError } from '../../errors.ts';
import { Limit } from '../../util/limit.ts';
import { memoryLimitBytes } from '../../util/memory-limit.ts';

const run = promisify(execFile);
const TOOL_TIMEOUT_MS = 120_000;
/**
 * What one render may print: 8 MiB, several times the largest real render we met (kube-prometheus-stack,
 * under 1 MiB without CRDs), and what the rewriter can hold and compare: composing 8 MiB of
 * Deployments costs it up to ~200 MiB (see ./documents.ts).
 */
export const OUTPUT_MAX_BYTES = 8 * 1024 * 1024;
/** What one render at the cap may cost the rewriter while it is compared (its output, both sides' objects). */
const RENDER_MEMORY_BYTES = 200 * 1024 * 1024;
/** The rewriter's own footprint besides renders (Node, Git, the ledger). */
const BASELINE_MEMORY_BYTES = 160 * 1024 * 1024;

/**
 * Renders (helm, kustomize) run at once: as many as the memory limit holds at their worst, one at
 * least, four at most (each is a short process; a change of many images touches many overlays).
 * The rewriter's 512 MiB limit holds one at a time; 1 GiB, four.
 */
export function renderSlots(limitBytes = memoryLimitBytes()): number {
  if (limitBytes === undefined) return 4;
  return Math.max(1, Math.min(4, Math.floor((limitBytes - BASELINE_MEMORY_BYTES) / RENDER_MEMORY_BYTES)));
}
const running = new Limit(renderSlots());
const ERROR_MAX_CHARS = 4_000;
/**
 * How the Go programs' collector runs: half as often as by default (a kustomize build of 100
 * Deployments: -25% CPU, measured), with the heap held to 128 MiB where a large render would grow it
 * past that (Go then collects as often as needed). A change of many images builds hundreds of roots.
 */
const GO_COLLECTOR = { GOGC: '200', GOMEMLIMIT: '128MiB' } as const;

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/**
 * What every `helm template` of the proofs adds: no test hooks (neither GitOps tool applies them), and
 * no values schema check: helm follows a chart's `values.schema.json` `$ref` to any `file://` path or
 * http(s) URL, so a tenant's chart would have it read the rewriter's mounted secrets or probe internal
 * services, and repeat what it found in its error (helm/helm#32245). The values are ours, not the chart's to judge.
 */
export const HELM_TEMPLATE_FLAGS = ['--skip-tests', '--skip-schema-validation'] as const;

/** The programs the proof runs (names looked up on PATH, or paths). */
export interface RenderTools {
  readonly helm: string;
  readonly kustomize: string;
}

export class RenderProofError extends ImageCloneError {
  override name = 'RenderProofError';
}

/** Runs a program; its standard output, or a RenderProofError naming `what` and why. */
export function tool(program: string, args: readonly string[], what: string): Promise<string> {
  return running.run(() => runTool(program, args, what));
}

async function runTool(program: string, args: readonly string[], what: string): Promise<string> {
  try {
    const { stdout } = await run(program, [...args], {
      timeout: TOOL_TIMEOUT_MS,
      maxBuffer: OUTPUT_MAX_BYTES,
      // Nothing of the rewriter's environment: only what finds the programs and where they may write.
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        HOME: tmpdir(),
        TMPDIR: tmpdir(),
        HELM_CACHE_HOME: tmpdir(),
        HELM_CONFIG_HOME: tmpdir(),
        HELM_DATA_HOME: tmpdir(),
        ...GO_COLLECTOR,
      },
    });
    return stdout;
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new RenderProofError(`${what}: the program ${program} was not found (install it, or name it with --helm / --kustomize)`);
    if (e.code === 'ERR_CHILD_PROCESS_STDIO_MAXBUFFER')
      throw new RenderProofError(`${what} printed more than ${OUTPUT_MAX_BYTES / 1024 / 1024} MiB; a render that large is not compared`);
    // The whole error, bounded: a chart's message (Bitnami's substitution check) says its cause and its fix over several lines.
    const detail = (e.stderr ?? '')
      .trim()
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .join(' ');
    throw new RenderProofError(`${what} failed: ${bounded(detail, ERROR_MAX_CHARS) || e.message}`);
  }
}
