/**
 * An HTTP proxy of our own in front of a real server on loopback, that injects the faults real
 * networks and registries produce: an error status (500, 429 with Retry-After), a connection cut
 * in the middle of a response body, a stall, and blob downloads redirected to a "CDN" on another
 * host (which records whether our Authorization header followed it). With `quota`, it is also a
 * stand-in for Docker Hub's pull limit, as Docker documents it: each manifest GET is a pull (a HEAD
 * is not), every manifest answer carries `ratelimit-limit: N;w=SECONDS` and `ratelimit-remaining:
 * R;w=SECONDS` (and `docker-ratelimit-source`), and a GET past N in the sliding window is answered
 * 429 `TOOMANYREQUESTS` without reaching the registry.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { request } from 'undici';
import { freePort } from './process.ts';

export type Fault =
  | { readonly kind: 'status'; readonly status: number; readonly headers?: Readonly<Record<string, string>> }
  | { readonly kind: 'cut-body'; readonly afterBytes: number }
  | { readonly kind: 'stall'; readonly ms: number }
  | { readonly kind: 'redirect-to-cdn' };

export interface FaultRule {
  readonly method?: string;
  readonly path: RegExp;
  readonly fault: Fault;
  /** How many matching requests get the fault (then the rule is spent); Infinity for all. */
  times: number;
}

export interface FaultProxy {
  readonly address: string;
  readonly url: string;
  readonly rules: FaultRule[];
  /** Requests seen, as "METHOD path". */
  readonly log: string[];
  /** For each CDN download: whether it carried an Authorization header. */
  readonly cdnAuthorization: Array<string | undefined>;
  /** The CDN's `host:port` (plain HTTP: a client must be told it is insecure to follow a redirect there). */
  readonly cdnAddress: string;
  /** With `quota`: the time of every manifest GET let through, and of every one refused. */
  readonly pulls: { readonly allowed: number[]; readonly refused: number[] };
  stop(): Promise<void>;
}

export interface PullQuota {
  readonly limit: number;
  readonly windowSeconds: number;
}

/** The most manifest GETs let through within any `windowMs` (for a test: the quota was never exceeded). */
export function mostPullsInWindow(times: readonly number[], windowMs: number): number {
  let most = 0;
  for (let start = 0, end = 0; end < times.length; end++) {
    while (times[end]! - times[start]! >= windowMs) start++;
    most = Math.max(most, end - start + 1);
  }
  return most;
}

export async function startFaultProxy(upstream: string, options: { cdnHost?: string; quota?: PullQuota } = {}): Promise<FaultProxy> {
  const rules: FaultRule[] = [];
  const pulls = { allowed: [] as number[], refused: [] as number[] };
  const quota = options.quota;
  /** Docker Hub's headers: what is left of the sliding window now. */
  const quotaHeaders = (): Record<string, string> => {
    if (!quota) return {};
    const since = Date.now() - quota.windowSeconds * 1000;
    const used = pulls.allowed.filter((t) => t > since).length;
    return {
      'ratelimit-limit': `${quota.limit};w=${quota.windowSeconds}`,
      'ratelimit-remaining': `${Math.max(0, quota.limit - used)};w=${quota.windowSeconds}`,
      'docker-ratelimit-source': '127.0.0.1',
    };
  };
  const log: string[] = [];
  const cdnAuthorization: Array<string | undefined> = [];
  const cdnObjects = new Map<string, Buffer>();
  const cdnHost = options.cdnHost ?? '127.0.0.2';
  const cdnPort = await freePort(cdnHost);
  const port = await freePort();

  const cdn = createServer((req, res) => {
    cdnAuthorization.push(req.headers.authorization);
    const body = cdnObjects.get(req.url ?? '');
    if (!body) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-length': String(body.length), 'content-type': 'application/octet-stream' }).end(body);
  });

  const forward = async (req: IncomingMessage, res: ServerResponse, body: Buffer, fault: Fault | undefined) => {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (v !== undefined && k !== 'connection') headers[k] = Array.isArray(v) ? v.join(', ') : v;
    const upstreamResponse = await request(upstream + (req.url ?? '/'), {
      method: req.method as 'GET',
      headers,
      body: body.length > 0 || req.method === 'PUT' || req.method === 'POST' || req.method === 'PATCH' ? body : null,
    });
    if (fault?.kind === 'redirect-to-cdn' && upstreamResponse.statusCode === 200) {
      const id = `/objects/${randomUUID()}`;
      cdnObjects.set(id, Buffer.from(await upstreamResponse.body.arrayBuffer()));
      res.writeHead(307, { location: `http://${cdnHost}:${cdnPort}${id}`, 'content-length': '0' }).end();
      return;
    }
    const outHeaders: Record<string, string | string[]> = /\/manifests\//.test(req.url ?? '') ? quotaHeaders() : {};
    for (const [k, v] of Object.entries(upstreamResponse.headers)) if (v !== undefined && k !== 'transfer-encoding' && k !== 'connection') outHeaders[k] = v;
    res.writeHead(upstreamResponse.statusCode, outHeaders);
    let sent = 0;
    for await (const chunk of upstreamResponse.body) {
      const buffer = chunk as Buffer;
      if (fault?.kind === 'cut-body' && sent + buffer.length > fault.afterBytes) {
        res.write(buffer.subarray(0, Math.max(0, fault.afterBytes - sent)));
        res.socket?.destroy();
        upstreamResponse.body.destroy();
        return;
      }
      sent += buffer.length;
      res.write(buffer);
    }
    res.end();
  };

  const proxy: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      log.push(`${req.method} ${path}`);
      const rule = rules.find((r) => r.times > 0 && (r.method === undefined || r.method === req.method) && r.path.test(path));
      if (rule) rule.times--;
      const fault = rule?.fault;
      const go = async () => {
        if (quota && req.method === 'GET' && /\/manifests\//.test(path)) {
          const since = Date.now() - quota.windowSeconds * 1000;
          if (pulls.allowed.filter((t) => t > since).length >= quota.limit) {
            pulls.refused.push(Date.now());
            const body = JSON.stringify({
              errors: [
                { code: 'TOOMANYREQUESTS', message: 'You have reached your unauthenticated pull rate limit. https://www.docker.com/increase-rate-limit' },
              ],
            });
            res.writeHead(429, { 'content-type': 'application/json', ...quotaHeaders() }).end(body);
            return;
          }
          pulls.allowed.push(Date.now());
        }
        if (fault?.kind === 'status') {
          res
            .writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers })
            .end(JSON.stringify({ errors: [{ code: 'INJECTED', message: `fault injected: ${fault.status}` }] }));
          return;
        }
        if (fault?.kind === 'stall') await new Promise((r) => setTimeout(r, fault.ms));
        await forward(req, res, Buffer.concat(chunks), fault);
      };
      go().catch(() => res.socket?.destroy());
    });
  });

  await new Promise<void>((resolve) => proxy.listen(port, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => cdn.listen(cdnPort, cdnHost, resolve));
  return {
    address: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    rules,
    log,
    cdnAuthorization,
    cdnAddress: `${cdnHost}:${cdnPort}`,
    pulls,
    async stop() {
      proxy.closeAllConnections();
      cdn.closeAllConnections();
      await Promise.all([new Promise((r) => proxy.close(r)), new Promise((r) => cdn.close(r))]);
    },
  };
}
