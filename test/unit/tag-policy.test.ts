import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TagPolicy } from '../../src/image/tag-policy.ts';

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
