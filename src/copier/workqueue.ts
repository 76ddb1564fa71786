/**
 * A keyed work queue, as controllers keep one: a set of keys (any number of adds before a key is
 * taken make one entry), worked by up to `workers` at once, never the same key twice at once (a key
 * added while it is worked is worked again afterwards), held while paused (a standby replica keeps
 * its caches, not its queue moving), and with capped exponential backoff for keys whose work failed.
 */
import { requeueDelay } from '../util/retry.ts';

export interface WorkQueueOptions {
  readonly workers: number;
  readonly work: (key: string) => Promise<void>;
  /** A `work` that threw (it should not: failures are its own to handle). */
  readonly onError: (key: string, error: unknown) => void;
  /** Called each time the queue empties with nothing running. */
  readonly onDrained?: () => void;
  /** Backoff of `retryLater`: `baseMs` doubling per attempt up to `maxMs` (default 5 s to 5 minutes). */
  readonly baseMs?: number;
  readonly maxMs?: number;
}

export class KeyedWorkQueue {
  readonly #options: WorkQueueOptions;
  readonly #queued = new Set<string>();
  readonly #working = new Set<string>();
  /** Added while being worked: queued again when that work ends. */
  readonly #dirty = new Set<string>();
  readonly #retries = new Map<string, { attempt: number; timer: NodeJS.Timeout }>();
  #running = false;
  #waiters: Array<() => void> = [];

  constructor(options: WorkQueueOptions) {
    this.#options = options;
  }

  /** Keys waiting or being worked. */
  get depth(): number {
    return this.#queued.size + this.#working.size;
  }

  add(key: string): void {
    this.addAll([key]);
  }

  addAll(keys: Iterable<string>): void {
    for (const key of keys) {
      if (this.#working.has(key)) this.#dirty.add(key);
      else this.#queued.add(key);
    }
    this.#pump();
  }

  /** Starts (or resumes) working the queue. */
  run(): void {
    this.#running = true;
    this.#pump();
  }

  /** Stops taking keys; work already running finishes. */
  pause(): void {
    this.#running = false;
  }

  /** Adds the key again after a backoff that doubles with each call until `forget`. */
  retryLater(key: string): void {
    const attempt = (this.#retries.get(key)?.attempt ?? 0) + 1;
    this.#schedule(key, attempt, requeueDelay(attempt, this.#options.baseMs, this.#options.maxMs));
  }

  /** Adds the key again after `ms` exactly (a registry's quota says when), its backoff left as it was. */
  retryAfter(key: string, ms: number): void {
    this.#schedule(key, this.#retries.get(key)?.attempt ?? 0, Math.max(0, ms));
  }

  #schedule(key: string, attempt: number, delay: number): void {
    clearTimeout(this.#retries.get(key)?.timer);
    const timer = setTimeout(() => this.add(key), delay);
    timer.unref();
    this.#retries.set(key, { attempt, timer });
  }

  /** The key's work succeeded (or no longer applies): its backoff is reset and any pending retry dropped. */
  forget(key: string): void {
    const retry = this.#retries.get(key);
    if (!retry) return;
    clearTimeout(retry.timer);
    this.#retries.delete(key);
  }

  /** Resolves when nothing is queued or being worked. */
  drained(): Promise<void> {
    if (this.depth === 0) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Pauses and drops every pending retry. */
  stop(): void {
    this.pause();
    for (const { timer } of this.#retries.values()) clearTimeout(timer);
    this.#retries.clear();
  }

  #pump(): void {
    if (!this.#running) return;
    while (this.#working.size < this.#options.workers && this.#queued.size > 0) {
      const key = this.#queued.values().next().value!;
      this.#queued.delete(key);
      this.#working.add(key);
      this.#options
        .work(key)
        .catch((error: unknown) => this.#options.onError(key, error))
        .finally(() => {
          this.#working.delete(key);
          if (this.#dirty.delete(key)) this.#queued.add(key);
          this.#pump();
        });
    }
    if (this.depth > 0) return;
    this.#options.onDrained?.();
    for (const resolve of this.#waiters.splice(0)) resolve();
  }
}
