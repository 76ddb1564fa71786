/**
 * A fault-injecting TCP proxy of our own, for the faults and soak runs: it sits in front of any
 * HTTP/1.1 server on loopback (a registry, the API server, a Git server, a forge), follows the
 * request framing of each connection (Content-Length and chunked bodies, keep-alive), and faults a
 * chosen fraction of requests the ways real networks and servers fail:
 *
 * - `500`, `503`: answered by the proxy with that status and the connection closed (the server
 *   never sees the request);
 * - `429`: the same, with `Retry-After: 1`;
 * - `reset`: the request goes through, and the connection is reset (TCP RST) part-way through the
 *   response body (or, for a streaming response such as a watch, soon after it starts);
 * - `stall`: the response is held for `stallMs` before it flows.
 *
 * With `tls` it terminates TLS (serving a certificate the clients already trust) and opens its own
 * TLS connection upstream, optionally with a client certificate: that is how it sees inside the
 * API server's HTTPS. `refuse` answers every matching request with a status while it is set (Git
 * refusing pushes). Which requests and which faults are drawn from a seeded generator, so a
 * failing run can be replayed.
 */
import { createServer as createNetServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { connect as tlsConnect, createServer as createTlsServer } from 'node:tls';
import { seededRandom } from './seeded-random.ts';
import { freePort } from './process.ts';

export const FAULT_KINDS = ['500', '503', '429', 'reset', 'stall'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface TcpFaultProxyOptions {
  readonly upstream: { readonly host: string; readonly port: number; readonly tls?: { readonly ca: string; readonly cert?: string; readonly key?: string } };
  /** Serve TLS with this certificate (PEM), for clients of an HTTPS upstream. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Fraction of requests faulted, 0..1; can be changed while running. */
  readonly faultRate?: number;
  readonly kinds?: readonly FaultKind[];
  readonly stallMs?: number;
  readonly seed?: number;
  /** Requests whose "METHOD path" matches are never faulted. */
  readonly spare?: RegExp;
}

export interface TcpFaultProxy {
  /** `127.0.0.1:PORT` */
  readonly address: string;
  readonly url: string;
  faultRate: number;
  /** While set, requests whose "METHOD path" matches get this status from the proxy. */
  refuse: { readonly match: RegExp; readonly status: number } | undefined;
  readonly stats: { requests: number; refused: number; connections: number; readonly faults: Record<FaultKind, number> };
  stop(): Promise<void>;
}

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_HEAD = 64 * 1024;

export async function startTcpFaultProxy(options: TcpFaultProxyOptions): Promise<TcpFaultProxy> {
  const random = seededRandom(options.seed ?? Date.now());
  const kinds = options.kinds ?? FAULT_KINDS;
  const stallMs = options.stallMs ?? 2_000;
  const port = await freePort();
  const sockets = new Set<Socket>();
  let owed = 0;
  const proxy: TcpFaultProxy = {
    address: `127.0.0.1:${port}`,
    url: `${options.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    faultRate: options.faultRate ?? 0,
    refuse: undefined,
    stats: { requests: 0, refused: 0, connections: 0, faults: { 500: 0, 503: 0, 429: 0, reset: 0, stall: 0 } },
    stop: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => socket.destroy());
  };

  const onConnection = (client: Socket) => {
    proxy.stats.connections++;
    track(client);
    const { host, port: upstreamPort, tls } = options.upstream;
    const upstream = tls
      ? tlsConnect({
          host,
          port: upstreamPort,
          ca: tls.ca,
          ...(tls.cert ? { cert: tls.cert, key: tls.key } : {}),
          servername: host === '127.0.0.1' ? undefined : host,
        })
      : netConnect({ host, port: upstreamPort });
    track(upstream);
    // Once the proxy answers itself, the client's socket ends after that answer is written.
    let answered = false;
    upstream.on('close', () => !answered && client.destroy());
    client.on('close', () => upstream.destroy());

    // Request side: where we are in the current request's framing.
    let state: 'head' | 'body' | 'chunk-size' | 'chunk-data' | 'chunk-crlf' | 'trailer' | 'tunnel' = 'head';
    let head = Buffer.alloc(0);
    let remaining = 0;
    let line = '';
    // Response side: the fault waiting for the response of the request in flight.
    let responseFault: 'reset' | 'stall' | undefined;
    let requestMethod = '';

    const answer = (status: number, reason: string, extra: string) => {
      const body = JSON.stringify({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        message: `fault injected by the test proxy: ${status}`,
        reason,
        code: status,
        errors: [{ code: 'UNAVAILABLE', message: `fault injected by the test proxy: ${status}` }],
      });
      answered = true;
      client.end(
        `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n${extra}\r\n${body}`,
      );
      upstream.destroy();
    };

    const onRequestHead = (text: string): boolean => {
      const [requestLine = '', ...headerLines] = text.split('\r\n');
      const [method = '', path = ''] = requestLine.split(' ');
      const headers = new Map(headerLines.map((l) => [l.slice(0, l.indexOf(':')).trim().toLowerCase(), l.slice(l.indexOf(':') + 1).trim()]));
      proxy.stats.requests++;
      requestMethod = method;
      const what = `${method} ${path}`;
      if (proxy.refuse?.match.test(what)) {
        proxy.stats.refused++;
        answer(proxy.refuse.status, 'Refused', '');
        return false;
      }
      // Exactly `faultRate` of the requests over a run, each at a random place: every request owes
      // a fraction of a fault, and an owed fault strikes at random within the next few requests.
      const spared = options.spare?.test(what) ?? false;
      owed = proxy.faultRate === 0 ? 0 : owed + (spared ? 0 : proxy.faultRate);
      if (!spared && (owed >= 2 || (owed >= 1 && random() < 0.5))) {
        owed -= 1;
        const kind = kinds[Math.floor(random() * kinds.length)]!;
        proxy.stats.faults[kind]++;
        const refusal = { '500': 'Internal Server Error', '503': 'Service Unavailable', '429': 'Too Many Requests' } as const;
        if (kind === '500' || kind === '503' || kind === '429') {
          answer(Number(kind), refusal[kind], kind === '429' ? 'retry-after: 1\r\n' : '');
          return false;
        }
        responseFault = kind;
      }
      if (/upgrade/i.test(headers.get('connection') ?? '') || method === 'CONNECT') state = 'tunnel';
      else if (/chunked/i.test(headers.get('transfer-encoding') ?? '')) state = 'chunk-size';
      else if (Number(headers.get('content-length') ?? 0) > 0) {
        state = 'body';
        remaining = Number(headers.get('content-length'));
      } else state = 'head';
      return true;
    };

    client.on('data', (chunk: Buffer) => {
      if (answered) return; // the rest of a request the proxy answered itself
      let at = 0;
      const out: Buffer[] = [];
      while (at < chunk.length) {
        if (state === 'tunnel') {
          out.push(chunk.subarray(at));
          break;
        }
        if (state === 'head') {
          const joined = Buffer.concat([head, chunk.subarray(at)]);
          const end = joined.indexOf(HEAD_END);
          if (end === -1) {
            if (joined.length > MAX_HEAD) return void client.destroy();
            head = joined;
            break;
          }
          const consumed = end + 4 - head.length;
          const requestHead = joined.subarray(0, end + 4);
          head = Buffer.alloc(0);
          at += consumed;
          if (!onRequestHead(requestHead.toString('latin1'))) return;
          out.push(requestHead);
        } else if (state === 'body' || state === 'chunk-data') {
          const take = Math.min(remaining, chunk.length - at);
          out.push(chunk.subarray(at, at + take));
          at += take;
          remaining -= take;
          if (remaining === 0) state = state === 'body' ? 'head' : 'chunk-crlf';
        } else {
          // chunk-size, chunk-crlf, trailer: line-based
          const newline = chunk.indexOf(0x0a, at);
          const end = newline === -1 ? chunk.length : newline + 1;
          out.push(chunk.subarray(at, end));
          line += chunk.subarray(at, end).toString('latin1');
          at = end;
          if (newline === -1) continue;
          const text = line.trim();
          line = '';
          if (state === 'chunk-size') {
            const size = parseInt(text.split(';')[0]!, 16);
            if (size === 0) state = 'trailer';
            else {
              remaining = size;
              state = 'chunk-data';
            }
          } else if (state === 'chunk-crlf') state = 'chunk-size';
          else if (text === '') state = 'head'; // end of trailers
        }
      }
      for (const piece of out) if (piece.length > 0) upstream.write(piece);
    });

    // Response side.
    let responseHead = Buffer.alloc(0);
    let headStartsAt = 0;
    let cutAt = -1;
    let sent = 0;
    const reset = () => {
      try {
        client.resetAndDestroy();
      } catch {
        client.destroy(); // a TLS socket without reset support: a plain close
      }
      upstream.destroy();
    };
    upstream.on('data', (chunk: Buffer) => {
      if (responseFault === 'stall') {
        responseFault = undefined;
        upstream.pause();
        setTimeout(() => {
          if (!client.destroyed) client.write(chunk);
          upstream.resume();
        }, stallMs).unref();
        return;
      }
      if (responseFault === 'reset' && cutAt === -1) {
        if (responseHead.length === 0) headStartsAt = sent;
        responseHead = Buffer.concat([responseHead, chunk]);
        const end = responseHead.indexOf(HEAD_END);
        if (end !== -1) {
          const headText = responseHead.subarray(0, end).toString('latin1');
          const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(headText)?.[1] ?? -1);
          const bodiless = requestMethod === 'HEAD' || /^HTTP\/1\.[01] (204|304)/.test(headText) || length === 0;
          // Part-way through a body of known length; a few bytes into a streamed one, or soon.
          cutAt = headStartsAt + end + 4 + (bodiless ? 0 : length > 0 ? Math.floor(random() * length) : Math.floor(random() * 256));
          if (length < 0 && !bodiless) setTimeout(reset, Math.floor(random() * 2_000)).unref();
          responseHead = Buffer.alloc(0);
        }
      }
      if (cutAt !== -1 && sent + chunk.length >= cutAt) {
        client.write(chunk.subarray(0, cutAt - sent));
        responseFault = undefined;
        return reset();
      }
      sent += chunk.length;
      client.write(chunk);
    });
  };

  const server: Server = options.tls ? createTlsServer({ cert: options.tls.cert, key: options.tls.key }, onConnection) : createNetServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  return proxy;
}
