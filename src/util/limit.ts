/**
 * A counting semaphore: at most `size` tasks of one kind run at once (the global bounds on image
 * copies and blob transfers).
 */
export class Limit {
  readonly size: number;
  #active = 0;
  readonly #waiting: Array<() => void> = [];

  constructor(size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`a concurrency limit must be a positive integer, got ${size}`);
    this.size = size;
  }

  /** Tasks running now plus tasks waiting for a slot. */
  get pending(): number {
    return this.#active + this.#waiting.length;
  }

  async run<T>(task: () => Promise<T>): Promise<T> {
    if (this.#active >= this.size) await new Promise<void>((resolve) => this.#waiting.push(resolve));
    else this.#active++;
    try {
      return await task();
    } finally {
      const next = this.#waiting.shift();
      // Hand the slot straight to the next waiter, so #active never dips and re-rises.
      if (next) next();
      else this.#active--;
    }
  }
}

/** Runs `task` over `items` with at most `concurrency` at once; results keep the input order. */
export async function mapLimited<T, R>(items: readonly T[], concurrency: number, task: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const limit = new Limit(Math.max(1, Math.min(concurrency, items.length || 1)));
  return Promise.all(items.map((item, index) => limit.run(() => task(item, index))));
}
