import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normaliseRegistryKey } from '../../src/registry/credentials.ts';

describe('credential keys', () => {
  it('normalises Docker Hub aliases and URLs', () => {
    assert.equal(normaliseRegistryKey('https://index.docker.io/v1/'), 'docker.io');
    assert.equal(normaliseRegistryKey('registry-1.docker.io'), 'docker.io');
    assert.equal(normaliseRegistryKey('http://LOCALHOST:5000/v2/'), 'localhost:5000');
  });
});
