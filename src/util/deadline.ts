/**
 * A deadline as an AbortSignal whose reason is our own error: undici fails the request, or the
 * body stream being read or sent, with that reason, so the caller sees what ran out and why.
 * The timer does not keep the process alive, and is cleared when the work ends first.
 */
export interface Deadline {
  readonly signal: AbortSignal;
  clear(): void;
}

export function deadline(ms: number, reason: () => Error): Deadline {
  const controller = new AbortController();
  // Node fires a time-out past 2^31 - 1 ms at once: a deadline of weeks is as good as none.
  const timer = setTimeout(() => controller.abort(reason()), Math.min(ms, 2 ** 31 - 1));
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
