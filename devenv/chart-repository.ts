/**
 * A Helm chart repository on loopback, as Helm and Flux's HelmRepository read one: a static HTTP
 * server for a directory holding `index.yaml` and the chart packages it lists (made by the real
 * `helm package` and `helm repo index`). Nothing else is served; every request is logged.
 */
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, normalize } from 'node:path';
import { freePort } from './process.ts';

export interface ChartRepository {
  readonly url: string;
  readonly requests: string[];
  stop(): Promise<void>;
}

export async function startChartRepository(dir: string): Promise<ChartRepository> {
  const port = await freePort();
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://localhost').pathname)).replace(/^\/+/, '');
    requests.push(`${req.method} /${path}`);
    if (req.method !== 'GET' || path.startsWith('..') || path === '') return void res.writeHead(404).end();
    readFile(join(dir, path)).then(
      (bytes) =>
        res.writeHead(200, { 'content-type': path.endsWith('.yaml') ? 'application/x-yaml' : 'application/gzip', 'content-length': bytes.length }).end(bytes),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}`, requests, stop: () => new Promise((resolve) => server.close(() => resolve())) };
}
