import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseChallenge } from '../../src/registry/auth.ts';

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
