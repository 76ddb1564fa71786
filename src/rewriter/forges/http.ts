/**
 * One JSON call to a forge's API with undici, and errors that say which forge, which call, which
 * status and (for 401/403) what to check. Tokens travel only in the header given.
 */
import { request, type Dispatcher } from 'undici';
import { ImageCloneError } from '../../errors.ts';
import { scrub } from '../../observability/secrets.ts';
import { readBounded } from '../../util/bounded-body.ts';
import { withRetries, type RetryPolicy } from '../../util/retry.ts';
import type { PullRequest } from './forge.ts';

export class ForgeError extends ImageCloneError {
  override name = 'ForgeError';
  /** Whether the forge may answer the same call next time (a 5xx, 429, a dropped connection). */
  readonly transient: boolean;
  /** Whether the forge surely did not act on it (429, 503, no connection): only then is a POST sent again. */
  readonly notActedOn: boolean;
  constructor(message: string, options: { transient?: boolean; notActedOn?: boolean } = {}) {
    super(message);
    this.transient = options.transient ?? false;
    this.notActedOn = options.notActedOn ?? false;
  }
}

/**
 * A forge failing now and then (a 502 from its proxy, a 429) is asked twice more, after a short
 * jittered backoff, before the change fails: one stray 5xx otherwise failed the whole pass, and the
 * pass's own backoff (up to 5 minutes) held every change behind it. A POST (opening a pull request)
 * is sent again only when the forge surely did not act on it.
 */
const FORGE_RETRY: RetryPolicy = { attempts: 3, baseDelayMs: 1_000, maxDelayMs: 4_000, maxRetryAfterSeconds: 0 };

function forgeCall(call: ForgeCall): Promise<unknown> {
  return withRetries(
    () => forgeCallOnce(call),
    FORGE_RETRY,
    undefined,
    (error) => error instanceof ForgeError && error.transient && (call.method !== 'POST' || error.notActedOn),
  );
}

/** One forge's API as its client calls it: where it is, how the token is sent, and what the token needs. */
export class ForgeApi {
  readonly #base: string;
  readonly #fixed: Omit<ForgeCall, 'method' | 'url' | 'body'>;

  constructor(forge: string, apiBase: string, headers: Readonly<Record<string, string>>, authHint: string, dispatcher: Dispatcher | undefined) {
    this.#base = apiBase.replace(/\/+$/, '');
    this.#fixed = { forge, headers, authHint, ...(dispatcher ? { dispatcher } : {}) };
  }

  /** A URL the forge gave (a next page) as a path under this API, or a refusal: a link elsewhere is never followed with the token. */
  pathOf(link: string): string {
    if (!link.startsWith(`${this.#base}/`))
      throw new ForgeError(`${this.#fixed.forge} linked a next page outside its API (${JSON.stringify(link.slice(0, 100))})`);
    return link.slice(this.#base.length);
  }

  /** `options`: the body's media type where the API wants another than JSON's own (a JSON Patch), a tighter bound on the answer. */
  call(method: ForgeCall['method'], path: string, body?: object, options: Pick<ForgeCall, 'contentType' | 'maxBytes'> = {}): Promise<unknown> {
    return forgeCall({ ...this.#fixed, ...options, method, url: `${this.#base}${path}`, ...(body ? { body } : {}) });
  }
}

export interface ForgeCall {
  readonly forge: string;
  readonly method: 'GET' | 'POST' | 'PATCH' | 'PUT';
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: object;
  /** The body's media type (default application/json; Azure DevOps takes its JSON Patch documents as application/json-patch+json). */
  readonly contentType?: string;
  /** The largest answer read, in bytes (default FORGE_ANSWER_MAX_BYTES): more is refused, not buffered. */
  readonly maxBytes?: number;
  /** Appended to 401 and 403 errors: what the token needs. */
  readonly authHint: string;
  /** The connection pool to use (one trusting the operator's CA, --ca-file); undici's global one otherwise. */
  readonly dispatcher?: Dispatcher;
}

/**
 * A forge that stops answering fails the call after this long without a byte, as the registry
 * transport does (undici's own default, 300 s, held a whole rewriter pass on one stalled call).
 */
const FORGE_STALL_MS = 60_000;

/** No API answer we read (a page of pull requests, one pull request) comes near this. */
const FORGE_ANSWER_MAX_BYTES = 16 * 1024 * 1024;

async function forgeCallOnce(call: ForgeCall): Promise<unknown> {
  const what = `${call.forge} ${call.method} ${new URL(call.url).pathname}`;
  let response: Dispatcher.ResponseData;
  try {
    response = await request(call.url, {
      method: call.method,
      headers: { accept: 'application/json', ...call.headers, ...(call.body ? { 'content-type': call.contentType ?? 'application/json' } : {}) },
      // A pull request's body is made of rows from records; a held secret never reaches the forge in it.
      ...(call.body ? { body: scrub(JSON.stringify(call.body)) } : {}),
      headersTimeout: FORGE_STALL_MS,
      bodyTimeout: FORGE_STALL_MS,
      ...(call.dispatcher ? { dispatcher: call.dispatcher } : {}),
    });
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw new ForgeError(`${what}: ${(error as Error).message}`, { transient: true, notActedOn: code === 'ECONNREFUSED' });
  }
  const limit = call.maxBytes ?? FORGE_ANSWER_MAX_BYTES;
  const bytes = await readBounded(response.body, limit).catch((error: unknown) => {
    throw new ForgeError(`${what}: the answer broke off: ${(error as Error).message}`);
  });
  if (bytes === undefined) throw new ForgeError(`${what} answered HTTP ${response.statusCode} with more than ${limit >> 20} MiB (not an API answer)`);
  const text = bytes.toString('utf8');
  if (response.statusCode >= 300) {
    let message = '';
    try {
      // GitHub, Gitea, GitLab and Azure DevOps say `message`; Bitbucket Cloud `error.message`; Data Center `errors[0].message`. A forge's words, cut.
      const said = JSON.parse(text) as { message?: unknown; error?: { message?: unknown }; errors?: Array<{ message?: unknown }> };
      message = String(said.message ?? said.error?.message ?? said.errors?.[0]?.message ?? '').slice(0, 300);
    } catch {
      // not JSON: the status says enough
    }
    const hint = response.statusCode === 401 || response.statusCode === 403 ? ` (${call.authHint})` : '';
    const status = response.statusCode;
    throw new ForgeError(`${what} answered HTTP ${status}${message ? `: ${message}` : ''}${hint}`, {
      transient: status >= 500 || status === 429,
      notActedOn: status === 429 || status === 503,
    });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new ForgeError(`${what} answered HTTP ${response.statusCode} with a body that is not JSON`);
  }
}

/** A pull request as GitHub and Gitea answer it (the two shapes agree but for how "merged" is said). */
export interface AnsweredPull {
  number: number;
  html_url: string;
  state: 'open' | 'closed';
  title: string;
  body: string | null;
  head: { ref: string };
  base: { ref: string };
}

/** The pull request `forge` answered, checked: one missing its number, head or base, or whose title or body is not text, is the forge's error. */
export function answeredPullRequest(forge: string, pull: AnsweredPull, merged: boolean): PullRequest {
  if (typeof pull?.number !== 'number' || typeof pull.head?.ref !== 'string' || typeof pull.base?.ref !== 'string')
    throw new ForgeError(`${forge} answered with a pull request missing its number, head or base`);
  if (typeof pull.title !== 'string' || (pull.body != null && typeof pull.body !== 'string'))
    throw new ForgeError(`${forge} answered with pull request #${pull.number} whose title or body is not text`);
  return {
    number: pull.number,
    url: pull.html_url,
    state: merged ? 'merged' : pull.state,
    head: pull.head.ref,
    base: pull.base.ref,
    title: pull.title,
    body: pull.body ?? '',
  };
}
