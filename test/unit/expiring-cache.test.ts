import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ExpiringCache } from '../../src/util/expiring-cache.ts';

describe('expiring cache', () => {
  it('shares one pending answer among askers, and trusts an answer for as long as its value says', async () => {
    let now = 0;
    let asked = 0;
    const cache = new ExpiringCache<string>({ ttlMs: (v) => (v === 'bad' ? 5 : 100), now: () => now });
    const ask = (answer: string) => () => {
      asked++;
      return Promise.resolve(answer);
    };
    const [a, b] = [cache.get('k', ask('good')), cache.get('k', ask('other'))];
    assert.equal(a, b);
    assert.equal(await a, 'good');
    now = 99;
    assert.equal(await cache.get('k', ask('other')), 'good');
    now = 100;
    assert.equal(await cache.get('k', ask('bad')), 'bad');
    now = 104;
    assert.equal(await cache.get('k', ask('again')), 'bad');
    now = 105;
    assert.equal(await cache.get('k', ask('again')), 'again');
    assert.equal(asked, 3);
  });

  it('forgets a rejected answer at once, so the next asker asks again', async () => {
    const cache = new ExpiringCache<number>({ ttlMs: () => 1_000 });
    await assert.rejects(
      cache.get('k', () => Promise.reject(new Error('down'))),
      /down/,
    );
    await new Promise((r) => setImmediate(r));
    assert.equal(await cache.get('k', () => Promise.resolve(7)), 7);
  });

  it('keeps at most maxEntries, dropping the oldest, and sweeps expired entries as new ones come', async () => {
    let now = 0;
    const bounded = new ExpiringCache<number>({ ttlMs: () => Number.POSITIVE_INFINITY, maxEntries: 2 });
    for (const k of ['a', 'b', 'c']) await bounded.get(k, () => Promise.resolve(1));
    assert.equal(bounded.size, 2);
    let asked = 0;
    await bounded.get('a', () => Promise.resolve(++asked));
    assert.equal(asked, 1, 'a was dropped');

    const expiring = new ExpiringCache<number>({ ttlMs: () => 10, now: () => now });
    for (let i = 0; i < 100; i++) await expiring.get(`k${i}`, () => Promise.resolve(i));
    assert.equal(expiring.size, 100);
    now = 60_001;
    await expiring.get('new', () => Promise.resolve(0));
    assert.equal(expiring.size, 1);
  });
});
