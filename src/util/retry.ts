/**
 * Bounded retries with exponential backoff and full jitter. An operation is retried only when its
 * error says it may succeed next time (`retryable`), and a server's Retry-After is honoured up to a
 * ceiling: past the ceiling we give up rather than hold a worker for minutes.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RegistryError } from '../errors.ts';

export interface RetryPolicy {
  /** Total attempts, the first included. */
  readonly attempts: number;
  /** Backoff before the second attempt, in ms; doubled each time, full jitter. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
  /** The longest Retry-After we are willing to wait, in seconds. */
  readonly maxRetryAfterSeconds: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000, maxRetryAfterSeconds: 60 };

export interface RetryEvent {
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

/** A registry's failure that may succeed next time (5xx, 429, a dropped connection). */
function retryableRegistryError(error: unknown): boolean {
  return error instanceof RegistryError && error.retryable;
}

/** `retryable` says which errors are worth another attempt; by default a retryable RegistryError. */
export async function withRetries<T>(
  operation: (attempt: number) => Promise<T>,
  policy: RetryPolicy = DEFAULT_RETRY_POLICY,
  onRetry?: (event: RetryEvent) => void,
  retryable: (error: unknown) => boolean = retryableRegistryError,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const delayMs = attempt < policy.attempts && retryable(error) ? retryDelay(error, attempt, policy) : undefined;
      if (delayMs === undefined) throw error;
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
