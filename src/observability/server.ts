/**
 * The HTTP endpoints a kubelet and Prometheus use: `/healthz` (the process is alive and its loops
 * make progress), `/readyz` (it has done its first full pass, or stands by as a non-leader) and
 * `/metrics`. Each answers a short text body saying why.
 */
import { createServer, type Server } from 'node:http';
import type { MetricsRegistry } from './metrics.ts';

export type Probe = () => { ok: boolean; detail: string };

export interface HealthServer {
  readonly port: number;
  close(): Promise<void>;
}

export async function startHealthServer(options: { address: string; metrics: MetricsRegistry; healthy: Probe; ready: Probe }): Promise<HealthServer> {
  const [host, portText] = splitAddress(options.address);
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const answer = (probe: Probe) => {
      const { ok, detail } = probe();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' }).end(`${ok ? 'ok' : 'not ok'}: ${detail}\n`);
    };
    if (path === '/healthz' || path === '/livez') answer(options.healthy);
    else if (path === '/readyz') answer(options.ready);
    else if (path === '/metrics') res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(options.metrics.render());
    else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found: try /healthz, /readyz or /metrics\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(portText), host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : Number(portText),
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** `:8080` → all interfaces; `127.0.0.1:0` → a free port on loopback. */
function splitAddress(address: string): [string | undefined, string] {
  const colon = address.lastIndexOf(':');
  if (colon < 0) return [undefined, address];
  const host = address.slice(0, colon);
  return [host === '' ? undefined : host, address.slice(colon + 1)];
}
