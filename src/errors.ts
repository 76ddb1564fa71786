/**
 * The project's own error types. Everything the product reports to a user is one of these, so a
 * caller can tell "bad input / remote refused" (show the message) from a bug (show the stack).
 */
import { scrub } from './observability/secrets.ts';
export class ImageCloneError extends Error {
  override name = 'ImageCloneError';
}

/** An image reference that does not follow the distribution reference grammar. */
export class ImageReferenceError extends ImageCloneError {
  override name = 'ImageReferenceError';
  readonly input: string;
  constructor(input: string, reason: string) {
    super(`invalid image reference ${JSON.stringify(input)}: ${reason}`);
    this.input = input;
  }
}

/** A registry answered with something we cannot use (status, body, digest mismatch). */
export class RegistryError extends ImageCloneError {
  override name = 'RegistryError';
  /** HTTP status when the registry answered; undefined for transport failures. */
  readonly status: number | undefined;
  /** Whether trying the same request again may succeed (5xx, 429, dropped connection). */
  readonly retryable: boolean;
  /** Seconds the registry asked us to wait (Retry-After), when it said. */
  readonly retryAfterSeconds: number | undefined;
  /** The registry that refused, when known (tells "source not public" from "backup refused"). */
  readonly registry: string | undefined;
  constructor(message: string, options: { status?: number; retryable?: boolean; retryAfterSeconds?: number; registry?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.status = options.status;
    this.registry = options.registry;
    this.retryable = options.retryable ?? false;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** Configuration or credentials that are missing or malformed. */
export class ConfigError extends ImageCloneError {
  override name = 'ConfigError';
}

/** The message of any thrown value, for logs and CLI output. */
export function describeError(error: unknown): string {
  return scrub(describeUnscrubbed(error));
}

function describeUnscrubbed(error: unknown): string {
  const api = kubernetesApiFailure(error);
  if (api !== undefined) return api;
  // A program we run is missing (git in an image built without it): simple-git wraps Node's
  // spawn error with its stack, which names neither the program's absence nor the remedy.
  const missing = error instanceof Error ? /\bspawn (\S+) ENOENT\b/.exec(error.message) : null;
  if (missing) return `${missing[1]} is not installed or not on the PATH (spawn ${missing[1]} ENOENT)`;
  // fetch's own message is only "fetch failed"; why (refused, reset, a TLS failure) is its cause.
  if (error instanceof Error && error.message === 'fetch failed' && error.cause instanceof Error) return `fetch failed: ${describeUnscrubbed(error.cause)}`;
  if (error instanceof Error) return error.message;
  return String(error);
}

/**
 * client-node's ApiException ("HTTP-Code: 500\nMessage: Unknown API Status Code!\nBody: …\nHeaders: …")
 * as one line: the status and the API server's own Status message. Recognised by shape, so the
 * CLI's light commands need not load client-node.
 */
function kubernetesApiFailure(error: unknown): string | undefined {
  if (!(error instanceof Error) || !/^HTTP-Code: \d+/.test(error.message)) return undefined;
  const { code, body } = error as Error & { code?: unknown; body?: unknown };
  if (typeof code !== 'number') return undefined;
  let status: { message?: string; reason?: string } | undefined;
  try {
    status = (typeof body === 'string' ? JSON.parse(body) : body) as typeof status;
  } catch {
    status = undefined;
  }
  const detail = [status?.reason, status?.message].filter(Boolean).join(': ');
  return `the Kubernetes API answered HTTP ${code}${detail ? ` (${detail})` : ''}`;
}
