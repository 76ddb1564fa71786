import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RegistryError } from '../../src/errors.ts';
import { parseRetryAfter, requeueDelay, withRetries } from '../../src/util/retry.ts';

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

describe('the requeue delay of a failed unit of work', () => {
  it('is 5 s after one failure, doubles with each failure in a row, and stops at 5 minutes', () => {
    assert.deepEqual(
      [1, 2, 3, 6, 7, 30].map((n) => requeueDelay(n)),
      [5_000, 10_000, 20_000, 160_000, 300_000, 300_000],
    );
    assert.equal(requeueDelay(3, 100, 250), 250, 'a base and a cap of its own');
    assert.equal(requeueDelay(0), 5_000, 'no failure yet is taken as the first');
  });
});
