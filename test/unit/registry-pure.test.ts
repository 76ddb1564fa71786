import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveDestination } from '../../src/commands/copy.ts';
import { RegistryError } from '../../src/errors.ts';
import { formatReference, parseReference } from '../../src/image/reference.ts';
import { TagPolicy } from '../../src/image/tag-policy.ts';
import { parseChallenge } from '../../src/registry/auth.ts';
import { normaliseRegistryKey } from '../../src/registry/credentials.ts';
import { parseManifest } from '../../src/registry/manifest.ts';
import { parseRetryAfter, withRetries } from '../../src/util/retry.ts';

describe('WWW-Authenticate challenges', () => {
  it('parses Docker Hub style bearer challenges', () => {
    assert.deepEqual(parseChallenge('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull"'), {
      scheme: 'bearer',
      params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/nginx:pull' },
    });
  });
  it('parses basic, unquoted values and escaped quotes', () => {
    assert.deepEqual(parseChallenge('Basic realm="Registry \\"x\\""'), { scheme: 'basic', params: { realm: 'Registry "x"' } });
    assert.deepEqual(parseChallenge('Bearer realm=https://a/token, error=insufficient_scope'), {
      scheme: 'bearer',
      params: { realm: 'https://a/token', error: 'insufficient_scope' },
    });
    assert.equal(parseChallenge(undefined), undefined);
  });
});

describe('Retry-After and bounded retries', () => {
  it('reads seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('7'), 7);
    assert.equal(parseRetryAfter('Wed, 25 Nov 2026 10:00:30 GMT', Date.parse('Wed, 25 Nov 2026 10:00:00 GMT')), 30);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });
  it('stops after the attempt limit, and never retries what cannot succeed', async () => {
    let calls = 0;
    const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 2, maxRetryAfterSeconds: 1 };
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new RegistryError('boom', { status: 503, retryable: true });
      }, policy),
      /boom/,
    );
    assert.equal(calls, 3);
    calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new RegistryError('denied', { status: 403 });
      }, policy),
      /denied/,
    );
    assert.equal(calls, 1);
    calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new RegistryError('slow down', { status: 429, retryable: true, retryAfterSeconds: 3600 });
      }, policy),
      /slow down/,
    );
    assert.equal(calls, 1, 'a Retry-After beyond the ceiling gives up instead of waiting an hour');
  });
  it('retries a connection that broke while a body was read or streamed (a raw socket error), not any other raw error', async () => {
    const policy = { attempts: 3, baseDelayMs: 1, maxDelayMs: 2, maxRetryAfterSeconds: 1 };
    let calls = 0;
    const result = await withRetries(async () => {
      if (++calls < 3) throw Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' });
      return 'landed';
    }, policy);
    assert.equal(result, 'landed');
    calls = 0;
    await assert.rejects(
      withRetries(async () => {
        calls++;
        throw new TypeError('a bug');
      }, policy),
      /a bug/,
    );
    assert.equal(calls, 1);
  });
});

describe('tag policy', () => {
  it('treats latest as mutable by default, and accepts globs', () => {
    assert.ok(new TagPolicy().isMutable('latest'));
    assert.ok(!new TagPolicy().isMutable('1.25'));
    const policy = new TagPolicy(['latest', '*-SNAPSHOT', 'nightly-*', 'v1.2.3']);
    assert.ok(policy.isMutable('2.0-SNAPSHOT'));
    assert.ok(policy.isMutable('nightly-2026'));
    assert.ok(!policy.isMutable('v1x2x3'), 'dots are literal');
    assert.ok(!policy.isMutable(undefined));
  });
});

describe('credential keys', () => {
  it('normalises Docker Hub aliases and URLs', () => {
    assert.equal(normaliseRegistryKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normaliseRegistryKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normaliseRegistryKey('http://LOCALHOST:5000/v2/'), 'localhost:5000');
  });
});

describe('manifest parsing', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'1'.repeat(64)}`, size: 10 };
  it('reads images and indexes, with platforms', () => {
    const image = parseManifest(
      Buffer.from(JSON.stringify({ schemaVersion: 2, config: layer, layers: [layer] })),
      'application/vnd.oci.image.manifest.v1+json',
      'x',
    );
    assert.equal(image.kind, 'image');
    const index = parseManifest(
      Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.index.v1+json',
          manifests: [{ ...layer, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } }],
        }),
      ),
      undefined,
      'x',
    );
    assert.equal(index.kind, 'index');
    assert.deepEqual(index.kind === 'index' && index.manifests[0]?.platform, { os: 'linux', architecture: 'arm64', variant: 'v8' });
  });
  it('rejects schema 1, garbage and bad descriptors with the image named', () => {
    assert.throws(
      () => parseManifest(Buffer.from('{"schemaVersion":1}'), 'application/vnd.docker.distribution.manifest.v1+prettyjws', 'img:1'),
      /img:1: Docker schema 1/,
    );
    assert.throws(() => parseManifest(Buffer.from('<html>'), 'text/html', 'img:1'), /img:1: the manifest is not valid JSON/);
    assert.throws(
      () => parseManifest(Buffer.from(JSON.stringify({ config: layer, layers: [{ digest: 'nope', size: -1 }] })), undefined, 'img:1'),
      /layers\[0\] is not a valid descriptor/,
    );
  });
});

describe('copy destinations', () => {
  const D = `sha256:${'c'.repeat(64)}`;
  it('a destination without tag takes the source tag; an explicit one is kept', () => {
    assert.equal(formatReference(resolveDestination(parseReference('nginx:1.25'), 'localhost:5000/mirror/nginx')), 'localhost:5000/mirror/nginx:1.25');
    assert.equal(formatReference(resolveDestination(parseReference('nginx:1.25'), 'localhost:5000/mirror/nginx:stable')), 'localhost:5000/mirror/nginx:stable');
    assert.equal(formatReference(resolveDestination(parseReference(`nginx@${D}`), 'localhost:5000/n')), `localhost:5000/n:sha256-${'c'.repeat(64)}@${D}`);
  });
});
