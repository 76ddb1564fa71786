/**
 * Answers that cost a network round trip, kept as promises so concurrent askers share one request:
 * each trusted for a time that may depend on the answer (a failure briefly, a success longer), a
 * rejected one forgotten at once, expired ones swept as new ones come, and at most `maxEntries` kept
 * (the oldest dropped first).
 */
export interface ExpiringCacheOptions<T> {
  /** How long an answer is trusted, from when it was asked for. */
  readonly ttlMs: (value: T) => number;
  /** How long a pending answer is trusted (default: for as long as it is pending). */
  readonly pendingTtlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry<T> {
  readonly at: number;
  ttlMs: number;
  readonly value: Promise<T>;
}

export class ExpiringCache<T> {
  readonly #options: ExpiringCacheOptions<T>;
  readonly #entries = new Map<string, Entry<T>>();
  #sweptAt: number;

  constructor(options: ExpiringCacheOptions<T>) {
    this.#options = options;
    this.#sweptAt = this.#now();
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The trusted answer for `key`, or a new one from `ask`. */
  get(key: string, ask: () => Promise<T>): Promise<T> {
    const now = this.#now();
    const cached = this.#entries.get(key);
    if (cached && now - cached.at < cached.ttlMs) return cached.value;
    this.#entries.delete(key);
    this.#sweep(now);
    const entry: Entry<T> = { at: now, ttlMs: this.#options.pendingTtlMs ?? Number.POSITIVE_INFINITY, value: ask() };
    this.#entries.set(key, entry);
    const max = this.#options.maxEntries;
    if (max !== undefined && this.#entries.size > max) this.#entries.delete(this.#entries.keys().next().value!);
    entry.value.then(
      (value) => {
        entry.ttlMs = this.#options.ttlMs(value);
      },
      () => {
        if (this.#entries.get(key) === entry) this.#entries.delete(key);
      },
    );
    return entry.value;
  }

  /** At most once a minute: drop what has expired, so keys no longer asked for do not pile up. */
  #sweep(now: number): void {
    if (now - this.#sweptAt < 60_000) return;
    this.#sweptAt = now;
    for (const [key, entry] of this.#entries) if (now - entry.at >= entry.ttlMs) this.#entries.delete(key);
  }

  #now(): number {
    return this.#options.now?.() ?? Date.now();
  }
}
