/**
 * The programs the render proofs run (helm, kustomize): each call bounded in time and output, its
 * failure turned into a one-line reason (the program's last words, or that it is missing).
 */
import { execFile } from 'node:child_process';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import { ImageCloneError } from '../../errors.ts';

const run = promisify(execFile);
const TOOL_TIMEOUT_MS = 120_000;
/** What one render may print: far beyond a real chart's or overlay's render, far below the rewriter's memory limit (4 run at once). */
export const OUTPUT_MAX_BYTES = 32 * 1024 * 1024;
const ERROR_MAX_CHARS = 4_000;

function bounded(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}

/** The programs the proof runs (names looked up on PATH, or paths). */
export interface RenderTools {
  readonly helm: string;
  readonly kustomize: string;
}

export class RenderProofError extends ImageCloneError {
  override name = 'RenderProofError';
}

/** Runs a program; its standard output, or a RenderProofError naming `what` and why. */
export async function tool(program: string, args: readonly string[], what: string): Promise<string> {
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
