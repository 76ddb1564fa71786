/**
 * A counting semaphore: at most `size` tasks of one kind run at once (Events in flight, renders,
 * the items of mapLimited). A FairLimit with a single key.
 */
export class Limit {
  readonly size: number;
  readonly #slots: FairLimit;

  constructor(size: number) {
    this.#slots = new FairLimit(size, size);
    this.size = size;
  }

  /** Tasks running now plus tasks waiting for a slot. */
  get pending(): number {
    return this.#slots.pending;
  }

  run<T>(task: () => Promise<T>): Promise<T> {
    return this.#slots.run('', task);
  }
}

/** Runs `task` over `items` with at most `concurrency` at once; results keep the input order. */
export async function mapLimited<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limit = new Limit(Math.max(1, Math.min(concurrency, items.length || 1)));
  return Promise.all(items.map((item, index) => limit.run(() => task(item, index))));
}

/**
 * A Limit shared fairly between keys (the source registries of copies): one key holds at most
 * `perKey` slots and all keys together `total` (twice `perKey` unless told), so a key alone runs at
 * its full share and a second one still gets a full share beside it; a freed slot goes to the
 * waiting key that holds the fewest. A slow or hostile registry then holds its own share, never
 * everyone's.
 */
export class FairLimit {
  readonly perKey: number;
  readonly total: number;
  #active = 0;
  readonly #held = new Map<string, number>();
  /** Per key, its waiters in arrival order. */
  readonly #waiting = new Map<string, Array<() => void>>();
  #waitingCount = 0;

  constructor(perKey: number, total = 2 * perKey) {
    for (const n of [perKey, total]) if (!Number.isInteger(n) || n < 1) throw new RangeError(`a concurrency limit must be a positive integer, got ${n}`);
    this.perKey = perKey;
    this.total = Math.max(total, perKey);
  }

  get pending(): number {
    return this.#active + this.#waitingCount;
  }

  /** Slots `key` holds now. */
  heldBy(key: string): number {
    return this.#held.get(key) ?? 0;
  }

  async run<T>(key: string, task: () => Promise<T>): Promise<T> {
    if (this.#admits(key)) this.#take(key);
    else {
      // The slot is taken for us by #dispatch before we are woken.
      await new Promise<void>((resolve) => {
        const queue = this.#waiting.get(key) ?? [];
        queue.push(resolve);
        this.#waiting.set(key, queue);
        this.#waitingCount++;
      });
    }
    try {
      return await task();
    } finally {
      this.#active--;
      const held = this.heldBy(key) - 1;
      if (held === 0) this.#held.delete(key);
      else this.#held.set(key, held);
      this.#dispatch();
    }
  }

  #admits(key: string): boolean {
    return this.#active < this.total && this.heldBy(key) < this.perKey;
  }

  #take(key: string): void {
    this.#active++;
    this.#held.set(key, this.heldBy(key) + 1);
  }

  #dispatch(): void {
    while (this.#active < this.total) {
      let next: string | undefined;
      for (const key of this.#waiting.keys()) if (this.#admits(key) && (next === undefined || this.heldBy(key) < this.heldBy(next))) next = key;
      if (next === undefined) return;
      const queue = this.#waiting.get(next)!;
      const wake = queue.shift()!;
      if (queue.length === 0) this.#waiting.delete(next);
      this.#waitingCount--;
      this.#take(next);
      wake();
    }
  }
}
