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
  const timer = setTimeout(() => controller.abort(reason()), ms);
  timer.unref();
  return { signal: controller.signal, clear: () => clearTimeout(timer) };
}
