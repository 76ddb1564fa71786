/**
 * One HTTP exchange with a registry, on undici: the scheme for each registry (HTTPS unless the
 * user named it insecure), TLS trust (system roots plus an optional extra CA), timeouts that catch
 * stalls, and redirects followed by hand so that the registry's Authorization header never travels
 * to another host (blob downloads are redirected to CDNs and object stores).
 *
 * Transport failures become retryable RegistryErrors; retrying is the caller's decision, because a
 * request whose body was a stream cannot simply be sent again.
 */
import { trustedCa } from '../util/trusted-ca.ts';
import type { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import { RegistryError } from '../errors.ts';
import { deadline } from '../util/deadline.ts';

export type Headers = Record<string, string | undefined>;

export interface TransportOptions {
  /** Registries (`host[:port]`) spoken to over plain HTTP, like Docker's `insecure-registries`. */
  readonly insecureRegistries?: readonly string[];
  /** PEM file with extra CA certificates to trust, on top of the system's roots. */
  readonly caFile?: string;
}

/** Connections kept open per origin, and how long without a byte before a transfer counts as stalled. */
const CONNECTIONS_PER_ORIGIN = 16;
const STALL_MS = 60_000;
/**
 * The whole of a request without its own deadline (a manifest, a token, a HEAD), body included:
 * the stall time-out alone lets a registry that sends a byte every 59 s hold a request for ever.
 */
export const REQUEST_DEADLINE_MS = 120_000;
const CLOSE_GRACE_MS = 5_000;
const USER_AGENT = 'image-clone-controller';

export interface SendRequest {
  readonly method: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  readonly url: string;
  readonly headers?: Headers;
  readonly body?: string | Buffer | Readable;
  /** For messages only: what this request was for, e.g. "GET manifest docker.io/library/nginx:1". */
  readonly what: string;
  /** Ends the request, or its body's streaming, with the signal's reason (default: REQUEST_DEADLINE_MS from now). */
  readonly signal?: AbortSignal;
}

export interface SendResponse {
  readonly status: number;
  readonly headers: Record<string, string | undefined>;
  readonly body: Dispatcher.ResponseData['body'];
  /** The URL that finally answered (after redirects). */
  readonly url: string;
  /** Whether that URL is on another origin than the one asked (a CDN, or wherever a registry sent us). */
  readonly redirected: boolean;
}

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
const DOCKER_HUB_ENDPOINT = 'registry-1.docker.io';

export class Transport {
  readonly #insecure: ReadonlySet<string>;
  readonly #dispatcher: Agent;

  constructor(options: TransportOptions = {}) {
    this.#insecure = new Set((options.insecureRegistries ?? []).map((r) => r.toLowerCase()));
    const ca = trustedCa(options.caFile);
    this.#dispatcher = new Agent({
      connections: CONNECTIONS_PER_ORIGIN,
      bodyTimeout: STALL_MS,
      headersTimeout: STALL_MS,
      keepAliveTimeout: 10_000,
      allowH2: false,
      connect: ca === undefined ? { rejectUnauthorized: true } : { ca, rejectUnauthorized: true },
    });
  }

  /** `https://host/v2` (or http for insecure registries); Docker Hub's API lives on registry-1.docker.io. */
  /** Whether the operator named `registry` insecure (plain HTTP). */
  isInsecure(registry: string): boolean {
    return this.#insecure.has(registry.toLowerCase());
  }

  baseUrl(registry: string): string {
    const host = registry === 'docker.io' ? DOCKER_HUB_ENDPOINT : registry;
    const scheme = this.#insecure.has(registry.toLowerCase()) ? 'http' : 'https';
    return `${scheme}://${host}/v2`;
  }

  async send(req: SendRequest): Promise<SendResponse> {
    if (req.signal !== undefined) return this.#send(req, req.signal);
    const limit = deadline(
      REQUEST_DEADLINE_MS,
      () => new RegistryError(`${req.what}: no complete answer within ${REQUEST_DEADLINE_MS / 1000} s; abandoned`, { retryable: true }),
    );
    try {
      const response = await this.#send(req, limit.signal);
      response.body.once('close', () => limit.clear());
      return response;
    } catch (error) {
      limit.clear();
      throw error;
    }
  }

  async #send(req: SendRequest, signal: AbortSignal): Promise<SendResponse> {
    let url = req.url;
    const origin = new URL(url).origin;
    for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
      const headers: Record<string, string> = { 'user-agent': USER_AGENT };
      for (const [name, value] of Object.entries(req.headers ?? {})) {
        if (value === undefined) continue;
        // The registry's credentials stay with the registry's origin.
        if (name.toLowerCase() === 'authorization' && new URL(url).origin !== origin) continue;
        headers[name.toLowerCase()] = value;
      }
      let response: Dispatcher.ResponseData;
      try {
        response = await request(url, {
          method: hop === 0 ? req.method : req.method === 'HEAD' ? 'HEAD' : 'GET',
          headers,
          body: hop === 0 ? (req.body ?? null) : null,
          dispatcher: this.#dispatcher,
          signal,
        });
      } catch (error) {
        // Our own errors come from a request body stream (a digest or size check): keep them.
        if (error instanceof RegistryError) throw error;
        throw transportError(req.what, url, error);
      }
      const status = response.statusCode;
      const flat = flattenHeaders(response.headers);
      if (REDIRECT_STATUSES.has(status) && flat.location !== undefined && (req.method === 'GET' || req.method === 'HEAD')) {
        await response.body.dump().catch(() => undefined);
        const next = new URL(flat.location, url);
        // Within https only: plain http only to a host the operator named insecure, so a hostile
        // registry cannot steer us to an internal plain-http service.
        if (next.protocol !== 'https:' && !(next.protocol === 'http:' && this.#insecure.has(next.host.toLowerCase())))
          throw new RegistryError(
            `${req.what}: the registry redirected to a ${next.protocol.replace(/:$/, '')} URL, which is not followed (only https, or a host named with --insecure-registry)`,
          );
        url = next.toString();
        continue;
      }
      return { status, headers: flat, body: response.body, url, redirected: new URL(url).origin !== origin };
    }
    throw new RegistryError(`${req.what}: more than ${MAX_REDIRECTS} redirects (a redirect loop?), last to ${redactUrl(url)}`);
  }

  /** Lets requests in flight finish for a few seconds, then ends them (a stop must not wait out a slow registry's deadline). */
  async close(): Promise<void> {
    const closed = this.#dispatcher.close();
    const gave = await Promise.race([closed.then(() => true), new Promise<false>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS, false).unref())]);
    if (!gave) await this.#dispatcher.destroy();
  }
}

function flattenHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [name, value] of Object.entries(headers)) out[name.toLowerCase()] = Array.isArray(value) ? value.join(', ') : value;
  return out;
}

/** A URL for messages: no credentials, no query (signed CDN URLs carry tokens there). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return '(unparseable URL)';
  }
}

function transportError(what: string, url: string, error: unknown): RegistryError {
  const code = (error as { code?: string }).code;
  const message = (error as Error).message ?? String(error);
  const tlsFailure = /certificate|self[- ]signed|CERT_|SSL|TLS/i.test(`${code} ${message}`);
  const reason = tlsFailure
    ? `TLS verification failed (${message}); trust the registry's CA with --ca-file, or name it with --insecure-registry if it speaks plain HTTP`
    : `${code ?? 'connection error'}: ${message}`;
  // A certificate problem does not fix itself; a dropped or refused connection may.
  return new RegistryError(`${what}: cannot reach ${redactUrl(url)}: ${reason}`, { retryable: !tlsFailure, cause: error });
}
