/**
 * The hostile tenant's servers for `npm run bench:hostile`, on 127.0.0.1: a registry (OCI
 * Distribution API) that drips its blobs a byte a second, declares a 25 GiB layer, and sends 1 MiB
 * tokens that claim to last a day; and a chart repository whose index.yaml is 10 MiB.
 */
import { createHash } from 'node:crypto';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const sha = (bytes: Buffer | string) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');

function manifest(layerDigest: string, layerSize: number): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layerSize }],
    }),
  );
}

export interface HostileServer {
  readonly address: string;
  /** Images whose one layer (64 KiB, distinct) is sent a byte a second. */
  readonly dripping: readonly string[];
  /** An image that declares a 25 GiB layer. */
  readonly huge: string;
  /** Images behind a token server that answers 1 MiB tokens. */
  readonly bigTokens: readonly string[];
  /** A chart repository whose index.yaml is 10 MiB. */
  readonly chartRepo: string;
  close(): void;
}

export async function startHostileServer(options: { drips: number; tokenRepos: number }): Promise<HostileServer> {
  const layers = Array.from({ length: options.drips }, (_, i) => Buffer.alloc(64 * 1024, i + 1));
  const dripManifests = layers.map((l) => manifest(sha(l), l.length));
  const hugeManifest = manifest(sha('never asked for'), 25 * 1024 ** 3);
  const smallLayer = Buffer.alloc(1024, 9);
  const tokenManifest = manifest(sha(smallLayer), smallLayer.length);
  const index = chartIndex(10 * 1024 * 1024);
  // Made once: the harness's own work would otherwise be counted against the copier it measures.
  const bigToken = Buffer.from(JSON.stringify({ token: 't'.repeat(1024 * 1024), expires_in: 86_400 }));
  const open = new Set<ServerResponse>();
  let address = '';

  const server = createServer((req, res) => {
    open.add(res);
    res.once('close', () => open.delete(res));
    const url = req.url ?? '/';
    const head = req.method === 'HEAD';
    if (url === '/v2/' || url === '/v2') return void res.writeHead(200).end('{}');
    if (url === '/charts/index.yaml') return void res.writeHead(200, { 'content-type': 'text/yaml', 'content-length': index.length }).end(index);
    if (url.startsWith('/token')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(bigToken);
    const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/?]+)$/.exec(url);
    if (!m) return void res.writeHead(404).end();
    const [, repository, kind, reference] = m as unknown as [string, string, string, string];
    if (repository.startsWith('tokens/') && !req.headers.authorization)
      return void res.writeHead(401, { 'www-authenticate': `Bearer realm="http://${address}/token",service="hostile"` }).end();
    const send = (type: string, body: Buffer) =>
      void res.writeHead(200, { 'content-type': type, 'docker-content-digest': sha(body), 'content-length': body.length }).end(head ? undefined : body);
    if (kind === 'manifests') {
      if (repository === 'huge/app') return send(OCI_MANIFEST, hugeManifest);
      if (repository.startsWith('tokens/')) return send(OCI_MANIFEST, tokenManifest);
      const own = dripManifests[Number(reference)] ?? dripManifests.find((d) => sha(d) === reference);
      return own ? send(OCI_MANIFEST, own) : void res.writeHead(404).end();
    }
    if (reference === sha(config)) return send('application/octet-stream', config);
    if (reference === sha(smallLayer)) return send('application/octet-stream', smallLayer);
    const layer = layers.find((l) => sha(l) === reference);
    if (!layer) return void res.writeHead(404).end();
    if (head) return void res.writeHead(200, { 'content-length': layer.length }).end();
    res.writeHead(200, { 'content-length': layer.length });
    let sent = 0;
    const timer = setInterval(() => (res.destroyed || sent >= layer.length ? clearInterval(timer) : res.write(layer.subarray(sent, ++sent))), 1000);
    res.once('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    dripping: layers.map((_, i) => `${address}/drip/app:${i}`),
    huge: `${address}/huge/app:1`,
    bigTokens: Array.from({ length: options.tokenRepos }, (_, i) => `${address}/tokens/app-${i}:1`),
    chartRepo: `http://${address}/charts`,
    close: () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      server.close();
    },
  };
}

/** An index.yaml of about `bytes`, of many charts that are not the one asked for. */
function chartIndex(bytes: number): Buffer {
  const lines = ['apiVersion: v1', 'entries:'];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const entry = [
      `  filler-${i}:`,
      '  - apiVersion: v2',
      `    name: filler-${i}`,
      '    version: 1.0.0',
      `    digest: ${'0'.repeat(64)}`,
      `    urls: [filler-${i}-1.0.0.tgz]`,
    ];
    size += entry.join('\n').length + 1;
    lines.push(...entry);
  }
  return Buffer.from(`${lines.join('\n')}\n`);
}
