/**
 * Bounded retries with exponential backoff and full jitter. An operation is retried only when its
 * error says it may succeed next time (`retryable`), and a server's Retry-After is honoured up to a
 * ceiling: past the ceiling we give up rather than hold a worker for minutes.
 *
 * The bound is time, not a count: a flaky network or a registry failing a quarter of its requests
 * fails several attempts in a row now and then, and five attempts gave up on copies that a little
 * patience finishes. An operation is retried until `budgetMs` has passed since its first attempt
 * (or `attempts` were made, a hard cap), then it gives up saying how long and how often it tried.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../errors.ts';

export interface RetryPolicy {
  /** Total attempts at most, the first included. */
  readonly attempts: number;
  /** No new attempt starts once this long has passed since the first (ms); none when undefined. */
  readonly budgetMs?: number;
  /** Backoff before the second attempt, in ms; doubled each time, full jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** The longest Retry-After we are willing to wait, in seconds. */
  readonly maxRetryAfterSeconds: number;
}

/** Five minutes of patience per operation; 60 attempts at most (8 s apart once backed off). */
export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 60, budgetMs: 5 * 60_000, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterSeconds: 60 };

/** The default policy with another time budget (the --retry-budget flags). */
export function retryPolicyWithBudget(budgetMs: number): RetryPolicy {
  return { ...DEFAULT_RETRY_POLICY, budgetMs };
}

export interface RetryEvent {
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

/** Socket errors that say the connection broke, not that the request was wrong. */
const BROKEN_CONNECTION = new Set([
  'ECONNRESET',
  'EPIPE',
  'ECONNREFUSED',
  'ETIMEDOUT',
  'ECONNABORTED',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_ABORTED',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
]);

/**
 * A registry's failure that may succeed next time (5xx, 429, a dropped connection), and a connection
 * that broke while a body was read or streamed (the error then surfaces raw, not as a RegistryError).
 */
function retryableRegistryError(error: unknown): boolean {
  if (error instanceof RegistryError) return error.retryable;
  const code = (error as { code?: unknown } | null)?.code ?? (error as { cause?: { code?: unknown } } | null)?.cause?.code;
  return typeof code === 'string' && BROKEN_CONNECTION.has(code);
}

/** `retryable` says which errors are worth another attempt; by default a retryable RegistryError or a broken connection. */
export async function withRetries<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (event: RetryEvent) => void,
  retryable: (error: unknown) => boolean = retryableRegistryError,
): Promise<T> {
  const started = Date.now();
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      if (!retryable(error)) throw error;
      const delayMs = retryDelay(error, attempt, policy);
      const spentMs = Date.now() - started;
      const outOfTime = policy.budgetMs !== undefined && spentMs + (delayMs ?? 0) > policy.budgetMs;
      if (delayMs === undefined || attempt >= policy.attempts || outOfTime) {
        if (attempt === 1 || !(error instanceof RegistryError)) throw error;
        // Said once, at the end: how long and how often, then the last failure as it was.
        throw new RegistryError(`${error.message} (gave up after ${attempt} attempts in ${(spentMs / 1000).toFixed(1)} s)`, {
          ...(error.status === undefined ? {} : { status: error.status }),
          ...(error.registry === undefined ? {} : { registry: error.registry }),
          retryable: error.retryable,
          cause: error,
        });
      }
      onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs);
    }
  }
}

/** How long to wait before the next attempt of a retryable failure, or undefined to give up. */
function retryDelay(error: unknown, attempt: number, policy: RetryPolicy): number | undefined {
  if (error instanceof RegistryError && error.retryAfterSeconds !== undefined) {
    if (error.retryAfterSeconds > policy.maxRetryAfterSeconds) return undefined;
    return error.retryAfterSeconds * 1000;
  }
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.round(Math.random() * ceiling);
}

/** Parses Retry-After: delta-seconds or an HTTP date. Undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined, now: number = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+$/.test(trimmed)) return Number(trimmed);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - now) / 1000));
}

/**
 * How long a failed unit of work (a workload's copy, a rewriter pass) waits before it is tried again:
 * `baseMs` after its first failure, doubling with each failure in a row, at most `maxMs`
 * (5 s doubling to 5 minutes by default). The retry of a whole unit, not of one request (withRetries).
 */
export function requeueDelay(failuresInARow: number, baseMs = 5_000, maxMs = 5 * 60_000): number {
  return Math.min(maxMs, baseMs * 2 ** (Math.max(1, failuresInARow) - 1));
}
