/** describeError: what a user reads in logs and CLI output for each kind of failure. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'node:test';
import { ApiException } from '@kubernetes/client-node';
import { simpleGit } from 'simple-git';
import { describeError, RegistryError } from '../../src/errors.ts';

it("renders client-node's ApiException as one line with the API server's Status message", () => {
  const body = JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    status: 'Failure',
    message: 'leases.coordination.k8s.io "x" is forbidden',
    reason: 'Forbidden',
    code: 403,
  });
  const error = new ApiException(
    403,
    `HTTP-Code: 403\nMessage: Unknown API Status Code!\nBody: ${JSON.stringify(body)}\nHeaders: {"content-type":"application/json"}`,
    body,
    { 'content-type': 'application/json' },
  );
  assert.equal(describeError(error), 'the Kubernetes API answered HTTP 403 (Forbidden: leases.coordination.k8s.io "x" is forbidden)');
  assert.equal(
    describeError(new ApiException(502, 'HTTP-Code: 502\nMessage: Bad Gateway\nBody: "<html>"', '<html>', {})),
    'the Kubernetes API answered HTTP 502',
  );
});

it('keeps the message of our own errors and of anything else thrown', () => {
  assert.equal(describeError(new RegistryError('HEAD manifest r/x:1: HTTP 500')), 'HEAD manifest r/x:1: HTTP 500');
  assert.equal(describeError('plain'), 'plain');
});

it('names a program that is not installed, as simple-git reports it (git missing from an image)', async () => {
  const empty = mkdtempSync(join(tmpdir(), 'no-git-'));
  try {
    const failure = await simpleGit({ baseDir: empty })
      .env({ PATH: empty })
      .raw(['--version'])
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    assert.ok(failure instanceof Error, 'git cannot be found on an empty PATH');
    assert.equal(describeError(failure), 'git is not installed or not on the PATH (spawn git ENOENT)');
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});

it('says why a fetch failed (its cause), as the watches of an unreachable API server report it', async () => {
  // A port nothing listens on: taken, then freed.
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  const failure = await fetch(`http://127.0.0.1:${port}/`).then(
    () => undefined,
    (error: unknown) => error,
  );
  assert.equal(describeError(failure), `fetch failed: connect ECONNREFUSED 127.0.0.1:${port}`);
});
