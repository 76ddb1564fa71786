/**
 * The rewriter's intake, apart from what a pass does (as controller-runtime keeps its queue apart
 * from reconcile): a pass at start (records written while the rewriter was down are not lost), then
 * a chokidar watch of the handoff directory, debounced, so that a burst of records becomes one pass;
 * passes never overlap; a pass that failed is followed by another after the requeue delay (5 s
 * doubling to 5 minutes), whether or not new records arrive. And the stuck clock /healthz reads.
 */
import { watch, type FSWatcher } from 'chokidar';
import { describeError } from '../errors.ts';
import type { Logger } from '../observability/log.ts';
import { requeueDelay } from '../util/retry.ts';

/** What a pass tells the intake: whether it must be tried again, and what it did. */
export interface PassResult<T> {
  readonly ok: boolean;
  readonly result: T;
}

export class Intake<T> {
  readonly #dir: string;
  readonly #log: Logger;
  #watcher: FSWatcher | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #retry: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  /** A record arrived while a pass ran: another pass follows it. */
  #again = false;
  #failedPasses = 0;
  #stopped = false;

  constructor(dir: string, log: Logger) {
    this.#dir = dir;
    this.#log = log;
  }

  /** Runs `pass` now and on every burst of new records (within `debounceMs` of each other), until stop(). */
  async watch(pass: () => Promise<PassResult<T>>, debounceMs: number, onPass?: (result: T) => void, retryMs = 5_000): Promise<void> {
    const run = () => {
      clearTimeout(this.#retry);
      this.#running = this.#running.then(async () => {
        let ok = true;
        do {
          this.#again = false;
          const done = await pass().catch((error: unknown) => {
            this.#log.error('pass failed; retried later', { error: describeError(error) });
            return undefined;
          });
          ok = done?.ok ?? false;
          if (done) onPass?.(done.result);
        } while (this.#again);
        this.#failedPasses = ok ? 0 : this.#failedPasses + 1;
        if (this.#failedPasses > 0 && !this.#stopped) {
          const delay = requeueDelay(this.#failedPasses, retryMs);
          this.#log.info('some changes failed; next attempt scheduled', { inMs: delay, failedPassesInARow: this.#failedPasses });
          this.#retry = setTimeout(run, delay);
        }
      });
    };
    this.#watcher = watch(this.#dir, { ignoreInitial: true, depth: 0, ignored: (path) => /\/\.[^/]*$/.test(path) });
    this.#watcher.on('add', (path) => {
      if (!path.endsWith('.json')) return;
      this.#again = true;
      clearTimeout(this.#debounce);
      this.#debounce = setTimeout(run, debounceMs);
    });
    await new Promise<void>((resolve) => this.#watcher!.once('ready', () => resolve()));
    run();
    await this.#running;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#debounce);
    clearTimeout(this.#retry);
    await this.#watcher?.close();
    await this.#running;
  }
}

/**
 * For /healthz: one step of a pass (reading the records, one record, one repository's change) taking
 * longer than the limit means the intake is stuck (every Git call and render is bounded in time, so
 * a healthy step ends; a pass over many repositories is many steps); the kubelet then restarts the
 * container, and the records, still pending, are taken up again.
 */
export class StepClock {
  /** What the running pass works on now, and since when; undefined between passes. */
  #step: { startedAt: number; on: string } | undefined;

  /** The pass moves on to its next step (the clock starts again). */
  step(on: string): void {
    this.#step = { startedAt: Date.now(), on };
  }

  /** The pass ended. */
  idle(): void {
    this.#step = undefined;
  }

  healthy(limitMs: number, now = Date.now()): { ok: boolean; detail: string } {
    const step = this.#step;
    if (step === undefined || now - step.startedAt <= limitMs) return { ok: true, detail: step ? `pass running, on ${step.on}` : 'idle, watching for records' };
    return { ok: false, detail: `stuck: on ${step.on} for ${Math.round((now - step.startedAt) / 1000)} s, more than ${limitMs / 1000} s` };
  }
}
