/**
 * Registries' pull quotas. Docker Hub counts every manifest GET as a pull (a HEAD is free) and says
 * on its manifest answers how many are left (`ratelimit-limit: 100;w=21600`,
 * `ratelimit-remaining: 76;w=21600`: pulls per window of `w` seconds), answering 429 past them;
 * other registries publish nothing, and the operator gives their rate (`--registry-rate
 * HOST=N/PERIOD`). Every manifest GET to a registry takes one pull from its budget first, shared by
 * every image copied from it; when none is left the copy is deferred (RateLimited: until when), not
 * failed, and no request is sent, so the quota is never exceeded by us.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError, RegistryError } from '../errors.ts';
import { parseDuration } from '../util/duration.ts';

/** A copy put off because a registry's pull quota is spent: tried again after `until` (epoch ms), not a failure. */
export class RateLimited extends RegistryError {
  override name = 'RateLimited';
  readonly until: number;
  constructor(registry: string, until: number, why: string) {
    super(`${registry}: pull quota spent (${why}); deferred until ${new Date(until).toISOString()}`, { registry, retryable: false });
    this.until = until;
  }
}

export interface RegistryRate {
  readonly limit: number;
  readonly periodMs: number;
}

/** When a registry said none are left but not when more come: one pull's share of its window, at least this. */
const MIN_DEFERRAL_MS = 30_000;
/** No wait is shorter (a window of 0 must not spin) or longer (a hostile Retry-After of years): a day, then it is asked again. */
const MIN_WAIT_MS = 1_000;
const MAX_WAIT_MS = 86_400_000;
const clampWait = (ms: number) => Math.min(MAX_WAIT_MS, Math.max(MIN_WAIT_MS, Number.isFinite(ms) ? ms : MAX_WAIT_MS));

interface Budget {
  /** What the operator set (--registry-rate), and the times of the pulls taken within its period. */
  readonly rate?: RegistryRate;
  readonly taken: number[];
  /** What the registry said last: its limit and window, and what was left (counted down by our own pulls since). */
  learned?: { limit: number; windowMs: number; remaining: number };
  /** No pull before `until` (a 429, or none left), and why. */
  blocked?: { until: number; why: string };
  /** Our GETs sent and not yet answered: what the registry says is left does not count them yet. */
  inFlight: number;
  /** The times of the pulls each share (a namespace) took within the window: no share takes more than its part. */
  readonly byShare: Map<string, number[]>;
}

/** What a registry answered a manifest request, as the quota reads it. */
export interface QuotaAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly retryAfterSeconds?: number;
}

export interface PullQuotaOptions {
  /** --registry-rate, by registry host. */
  readonly rates?: ReadonlyMap<string, RegistryRate>;
  /** A wait this short is waited out in place (a Retry-After of seconds), longer ones defer the copy (default 60 s: the retry policy's Retry-After ceiling). */
  readonly maxWaitMs?: number;
  readonly now?: () => number;
}

export class PullQuotas {
  readonly #budgets = new Map<string, Budget>();
  /** Registries whose first manifest GET is out and unanswered: the others wait for what it says (no burst past an unknown quota). */
  readonly #probing = new Map<string, Promise<void>>();
  readonly #answered = new Set<string>();
  readonly #maxWaitMs: number;
  readonly #now: () => number;

  constructor(options: PullQuotaOptions = {}) {
    this.#now = options.now ?? Date.now;
    this.#maxWaitMs = options.maxWaitMs ?? 60_000;
    for (const [registry, rate] of options.rates ?? []) this.#budgets.set(registry.toLowerCase(), { rate, taken: [], inFlight: 0, byShare: new Map() });
  }

  /**
   * Before a manifest GET to `registry`: waits while the first GET to a registry not heard from is
   * out (its answer says the quota, if any), and while a short block lasts (a Retry-After of
   * seconds); then takes one pull, or throws RateLimited (nothing sent) when the wait is longer.
   * `share` (a namespace): whom the pull is for; while several shares pull from a registry whose
   * quota is known, none takes more than its part of the window, so one tenant's images cannot
   * spend what every other namespace needs. Returns what to call with the answer (none: the request failed).
   */
  async admit(registry: string, signal?: AbortSignal, share?: string): Promise<(answer?: QuotaAnswer) => void> {
    const key = registry.toLowerCase();
    while (!this.#answered.has(key) && this.#probing.has(key)) {
      signal?.throwIfAborted();
      await this.#probing.get(key);
    }
    for (let wait = this.#blocked(key, share); wait !== undefined; wait = this.#blocked(key, share)) {
      if (wait.until - this.#now() > this.#maxWaitMs) throw new RateLimited(registry, wait.until, wait.why);
      await sleep(Math.max(0, wait.until - this.#now()), undefined, signal ? { signal } : {});
    }
    let release = () => {};
    if (!this.#answered.has(key)) this.#probing.set(key, new Promise<void>((resolve) => (release = resolve)));
    const counted = this.#take(key, share);
    return (answer) => {
      if (counted) counted.inFlight--;
      if (answer) this.observe(registry, answer);
      this.#answered.add(key);
      this.#probing.delete(key);
      release();
    };
  }

  /** Whether `registry` takes no pull now (for `share`), until when and why: a block (a 429, none left), the operator's rate, or the share's part spent. */
  #blocked(key: string, share: string | undefined): { until: number; why: string } | undefined {
    const budget = this.#budgets.get(key);
    if (budget === undefined) return undefined;
    const now = this.#now();
    if (budget.blocked && budget.blocked.until > now) return budget.blocked;
    if (budget.rate) {
      const since = now - budget.rate.periodMs;
      while (budget.taken.length > 0 && budget.taken[0]! <= since) budget.taken.shift();
      if (budget.taken.length >= budget.rate.limit)
        return { until: budget.taken[0]! + budget.rate.periodMs, why: `${budget.rate.limit} per ${budget.rate.periodMs / 1000} s, --registry-rate` };
    }
    if (budget.learned && budget.learned.remaining <= 0) {
      budget.blocked = {
        until: now + deferral(budget.learned),
        why: `${budget.learned.limit} per ${Math.round(budget.learned.windowMs / 1000)} s, as it says`,
      };
      return budget.blocked;
    }
    return share === undefined ? undefined : shareSpent(budget, share, now);
  }

  /** One pull counted (returned, to count it in flight until answered). */
  #take(key: string, share: string | undefined): Budget | undefined {
    const budget = this.#budgets.get(key);
    if (budget === undefined) return undefined;
    if (budget.learned) budget.learned.remaining--;
    // Only a rate reads (and prunes) them: a learned budget would keep one per GET for the process's life.
    if (budget.rate) budget.taken.push(this.#now());
    if (share !== undefined) budget.byShare.set(share, [...(budget.byShare.get(share) ?? []), this.#now()]);
    budget.inFlight++;
    return budget;
  }

  /** The deferral a registry's 429 has set (after `observe`), when it is longer than a wait in place; undefined for a short one. */
  deferral(registry: string): RateLimited | undefined {
    const blocked = this.#budgets.get(registry.toLowerCase())?.blocked;
    if (blocked === undefined || blocked.until - this.#now() <= this.#maxWaitMs) return undefined;
    return new RateLimited(registry, blocked.until, blocked.why);
  }

  /**
   * After a manifest answer (GET or HEAD) from `registry`: what it says is left, less our GETs it
   * has not counted yet; a 429 that says when (Retry-After) or how much (ratelimit headers) blocks it
   * that long, or for a share of its window. A bare 429 is a throttle the retry policy handles.
   */
  observe(registry: string, { status, headers, retryAfterSeconds }: QuotaAnswer): void {
    const limit = parseRateHeader(headers['ratelimit-limit']);
    const remaining = parseRateHeader(headers['ratelimit-remaining']);
    const key = registry.toLowerCase();
    if (limit === undefined && (status !== 429 || retryAfterSeconds === undefined)) return;
    const budget: Budget = this.#budgets.get(key) ?? { taken: [], inFlight: 0, byShare: new Map() };
    this.#budgets.set(key, budget);
    if (limit !== undefined && remaining !== undefined)
      budget.learned = {
        limit: Math.max(1, limit.count),
        windowMs: clampWait((limit.windowSeconds ?? remaining.windowSeconds ?? 3600) * 1000),
        remaining: remaining.count - budget.inFlight,
      };
    if (status === 429) {
      const wait = clampWait(retryAfterSeconds !== undefined ? retryAfterSeconds * 1000 : budget.learned ? deferral(budget.learned) : MIN_DEFERRAL_MS);
      budget.blocked = { until: this.#now() + wait, why: 'it answered 429' };
      if (budget.learned) budget.learned.remaining = 0;
    }
  }

  /** What is left per registry, as known (for the metric): the registry's own word, or the operator's rate. */
  remaining(): Array<{ registry: string; remaining: number }> {
    const now = this.#now();
    return [...this.#budgets].map(([registry, b]) => ({
      registry,
      remaining: b.learned ? Math.max(0, b.learned.remaining) : b.rate ? b.rate.limit - b.taken.filter((t) => t > now - b.rate!.periodMs).length : 0,
    }));
  }
}

/**
 * Whether `share` has taken its part of the registry's window: the limit split evenly among the
 * shares that pulled within it (and this one), so a share alone may take it all, and a second one
 * arriving gets half of the next window whatever the first still wants. Until its oldest pull leaves.
 */
function shareSpent(budget: Budget, share: string, now: number): { until: number; why: string } | undefined {
  const limit = budget.rate?.limit ?? budget.learned?.limit;
  const windowMs = budget.rate?.periodMs ?? budget.learned?.windowMs;
  if (limit === undefined || windowMs === undefined) return undefined;
  for (const [name, times] of budget.byShare) {
    const kept = times.filter((t) => t > now - windowMs);
    if (kept.length === 0) budget.byShare.delete(name);
    else budget.byShare.set(name, kept);
  }
  const shares = new Set([...budget.byShare.keys(), share]).size;
  const part = Math.max(1, Math.ceil(limit / shares));
  const mine = budget.byShare.get(share) ?? [];
  if (mine.length < part) return undefined;
  return {
    until: mine[0]! + windowMs,
    why: `this share's part of the pulls spent: ${part} of ${limit} per ${Math.round(windowMs / 1000)} s, split among ${shares}`,
  };
}

/** One pull's share of the window (a sliding window frees about that often), at least MIN_DEFERRAL_MS or the window if shorter. */
function deferral(learned: { limit: number; windowMs: number }): number {
  return clampWait(Math.max(Math.ceil(learned.windowMs / Math.max(1, learned.limit)), Math.min(MIN_DEFERRAL_MS, learned.windowMs)));
}

/** `100;w=21600` → 100 per 21,600 s (RFC draft "RateLimit Header Fields" as Docker Hub writes them). */
function parseRateHeader(value: string | undefined): { count: number; windowSeconds?: number } | undefined {
  const match = value === undefined ? null : /^\s*(\d{1,9})\s*(?:;\s*w\s*=\s*(\d{1,9}))?/.exec(value);
  if (!match) return undefined;
  return { count: Number(match[1]), ...(match[2] !== undefined ? { windowSeconds: Number(match[2]) } : {}) };
}

/** `--registry-rate HOST=N/PERIOD` (`docker.io=100/6h`): manifest GETs a registry allows per period. */
export function parseRegistryRates(flags: readonly string[]): Map<string, RegistryRate> {
  const rates = new Map<string, RegistryRate>();
  for (const flag of flags) {
    const match = /^([a-z0-9.-]+(?::\d+)?)=(\d+)\/(\S+)$/i.exec(flag);
    if (!match || Number(match[2]) < 1)
      throw new ConfigError(`--registry-rate ${JSON.stringify(flag)}: expected HOST=N/PERIOD, N ≥ 1 manifest GETs per period (as docker.io=100/6h)`);
    rates.set(match[1]!.toLowerCase(), { limit: Number(match[2]), periodMs: parseDuration('--registry-rate', match[3]!) });
  }
  return rates;
}
