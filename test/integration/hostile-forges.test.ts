/**
 * Forges that answer something other than what their API promises (issue #6): for each of Gitea,
 * GitHub and GitLab, a server of the test answers the list-pull-requests call (the first call the
 * rewriter makes) with HTML, an object instead of a list, a list of things that are not pull
 * requests, an endless body, a redirect loop, or a body cut off mid-way. Each must end in a
 * ForgeError that names the forge and what was wrong, promptly, and never echo the token.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { freePort } from '../../devenv/process.ts';
import { createCertificateAuthority, createServerCertificate } from '../../devenv/tls.ts';
import { forgeFor } from '../../src/rewriter/forges/registry.ts';
import { ForgeApi, ForgeError } from '../../src/rewriter/forges/http.ts';
import { CANARIES } from '../support/canaries.ts';

type Behaviour = (res: ServerResponse, url: string) => void;
const json =
  (value: unknown): Behaviour =>
  (res) =>
    void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value));

const behaviours: Array<[string, Behaviour, RegExp]> = [
  ['an HTML page', (res) => void res.writeHead(200, { 'content-type': 'text/html' }).end('<html>Sign in</html>'), /not JSON/],
  ['an object where a list belongs', json({ message: 'ok', data: [] }), /not a list/],
  ['a list of things that are not pull requests', json([{ id: 'x' }, 42]), /missing its (number|iid)/],
  [
    'an endless body',
    (res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      const chunk = Buffer.alloc(256 * 1024, 0x20);
      const pump = () => {
        while (!res.destroyed && res.write(chunk));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    },
    /more than 16 MiB/,
  ],
  ['a redirect loop', (res, url) => void res.writeHead(302, { location: url }).end(), /HTTP 302/],
  [
    'a body cut off mid-way',
    (res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
      res.write('[{"number": 1, "head"');
      setTimeout(() => res.socket?.destroy(), 20);
    },
    /broke off|not JSON|terminated|closed/i,
  ],
];

describe('hostile forges', () => {
  let server: Server;
  let base: string;
  let current: Behaviour = json([]);
  before(async () => {
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = createServer((req, res) => current(res, req.url ?? '/'));
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  });
  after(() => {
    server.closeAllConnections();
    server.close();
  });

  for (const kind of ['gitea', 'github', 'gitlab'] as const) {
    for (const [label, behaviour, expected] of behaviours) {
      it(`${kind}: ${label} is a clear ForgeError`, async () => {
        current = behaviour;
        const forge = forgeFor(`${base}/team/apps.git`, { kind, apiBase: `${base}/api`, token: CANARIES.gitToken });
        const started = Date.now();
        await assert.rejects(forge.pullRequests('image-clone/main', 'main'), (error: unknown) => {
          assert.ok(error instanceof ForgeError, `a ForgeError, not ${(error as Error)?.name}: ${(error as Error)?.message}`);
          assert.match(error.message, expected);
          assert.match(error.message, /Gitea|GitHub|GitLab/);
          assert.ok(!error.message.includes(CANARIES.gitToken), 'the token is never echoed');
          return true;
        });
        assert.ok(Date.now() - started < 15_000, 'promptly');
      });
    }
  }
});

describe('a forge failing now and then', () => {
  it('is asked again after a 5xx or a 429, and a POST only when the forge surely did not act on it', async () => {
    const seen: string[] = [];
    let failures: number[] = [];
    const server = createServer((req, res) => {
      seen.push(req.method!);
      const status = failures.shift();
      if (status !== undefined) return void res.writeHead(status, { 'content-type': 'application/json' }).end('{"message":"try later"}');
      res.writeHead(200, { 'content-type': 'application/json' }).end(req.method === 'POST' ? '{"number":7,"html_url":"u"}' : '[]');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
    const api = new ForgeApi('Gitea', `${base}/api/v1`, {}, '', undefined);
    const call = (method: 'GET' | 'POST') => api.call(method, '/repos/team/apps/pulls', method === 'POST' ? {} : undefined);
    try {
      failures = [502, 429];
      assert.deepEqual(await call('GET'), []);
      assert.deepEqual(seen.splice(0), ['GET', 'GET', 'GET']);
      failures = [503];
      assert.deepEqual(await call('POST'), { number: 7, html_url: 'u' });
      assert.deepEqual(seen.splice(0), ['POST', 'POST']);
      // A 500 to a POST may have opened the pull request: not sent again.
      failures = [500];
      await assert.rejects(call('POST'), /Gitea POST \/api\/v1\/repos\/team\/apps\/pulls answered HTTP 500: try later/);
      assert.deepEqual(seen.splice(0), ['POST']);
      failures = [500, 500, 500];
      await assert.rejects(call('GET'), /answered HTTP 500/);
      assert.deepEqual(seen.splice(0), ['GET', 'GET', 'GET'], 'three attempts, then the change fails');
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('a forge behind a private CA', () => {
  it('is trusted with --ca-file, and refused without it (TLS verified by default)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'forge-ca-'));
    const ca = await createCertificateAuthority(dir);
    const cert = await createServerCertificate(dir, ca);
    const server = createHttpsServer({ cert: readFileSync(cert.certFile), key: readFileSync(cert.keyFile) }, (_req, res) =>
      res.writeHead(200, { 'content-type': 'application/json' }).end('[]'),
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `https://127.0.0.1:${(server.address() as { port: number }).port}/org/apps.git`;
    try {
      assert.deepEqual(await forgeFor(url, { token: 't', kind: 'gitea', caFile: ca.certFile }).pullRequests('image-clone/main-1', 'main'), []);
      await assert.rejects(forgeFor(url, { token: 't', kind: 'gitea' }).pullRequests('image-clone/main-1', 'main'), /certificate|self[- ]signed|issuer/i);
    } finally {
      server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
