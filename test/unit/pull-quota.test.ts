import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PullQuotas, RateLimited, parseRegistryRates, type QuotaAnswer } from '../../src/registry/pull-quota.ts';

/** Docker Hub's headers, as its documentation shows them. */
const hub = (remaining: number, limit = 100, w = 21600): QuotaAnswer => ({
  status: 200,
  headers: { 'ratelimit-limit': `${limit};w=${w}`, 'ratelimit-remaining': `${remaining};w=${w}` },
});
/** A manifest GET that gets this answer. */
const pull = async (quotas: PullQuotas, registry: string, answer: QuotaAnswer = { status: 200, headers: {} }) => (await quotas.admit(registry))(answer);
const limitedUntil = (until: number) => (error: unknown) => error instanceof RateLimited && error.until === until && !error.retryable;

describe('registry pull quotas', () => {
  it("reads Docker Hub's ratelimit headers and counts its own GETs down until none are left, then defers by one pull's share of the window", async () => {
    let now = 1_000_000;
    const quotas = new PullQuotas({ now: () => now, maxWaitMs: 0 });
    await pull(quotas, 'docker.io', hub(2));
    await pull(quotas, 'docker.io', hub(1));
    await pull(quotas, 'docker.io', hub(0));
    assert.deepEqual(quotas.remaining(), [{ registry: 'docker.io', remaining: 0 }]);
    await assert.rejects(
      quotas.admit('docker.io'),
      (error: unknown) =>
        limitedUntil(now + 216_000)(error) && /^docker\.io: pull quota spent \(100 per 21600 s, as it says\); deferred until /.test((error as Error).message),
    );
    // A HEAD (free) later says some are back; another registry was never touched.
    now += 216_000;
    quotas.observe('docker.io', hub(5));
    await pull(quotas, 'docker.io', hub(4));
    await pull(quotas, 'ghcr.io');
  });

  it('a 429 that says when blocks the registry that long: waited out in place when short, deferred when long; a bare 429 is left to the retry policy', async () => {
    let now = 0;
    const quotas = new PullQuotas({ now: () => now, maxWaitMs: 60_000 });
    quotas.observe('quay.io', { status: 429, headers: {}, retryAfterSeconds: 120 });
    assert.ok(quotas.deferral('quay.io') instanceof RateLimited);
    await assert.rejects(quotas.admit('quay.io'), limitedUntil(120_000));
    now = 120_000;
    await pull(quotas, 'quay.io');
    quotas.observe('ghcr.io', { status: 429, headers: {} });
    assert.equal(quotas.deferral('ghcr.io'), undefined);
    await pull(quotas, 'ghcr.io');
    // A short one: admitted after the wait, for real time.
    const short = new PullQuotas({ maxWaitMs: 60_000 });
    short.observe('quay.io', { status: 429, headers: {}, retryAfterSeconds: 0.2 });
    assert.equal(short.deferral('quay.io'), undefined);
    const started = Date.now();
    await pull(short, 'quay.io');
    assert.ok(Date.now() - started >= 150);
    // Docker Hub's own 429: its headers say the window; deferred by a pull's share of it.
    const docker = new PullQuotas({ now: () => 0, maxWaitMs: 0 });
    docker.observe('docker.io', { ...hub(0, 10, 3600), status: 429 });
    await assert.rejects(docker.admit('docker.io'), limitedUntil(360_000));
  });

  it('--registry-rate: at most N manifest GETs in any PERIOD, the next one deferred until the oldest leaves the window', async () => {
    let now = 0;
    const quotas = new PullQuotas({ rates: parseRegistryRates(['quay.io=3/10s']), now: () => now, maxWaitMs: 0 });
    for (const t of [0, 1000, 2000]) {
      now = t;
      await pull(quotas, 'quay.io');
    }
    now = 5000;
    await assert.rejects(quotas.admit('quay.io'), limitedUntil(10_000));
    now = 10_000;
    await pull(quotas, 'quay.io');
    assert.deepEqual(quotas.remaining(), [{ registry: 'quay.io', remaining: 0 }]);
    assert.throws(() => parseRegistryRates(['quay.io=0/1h']), /--registry-rate "quay.io=0\/1h": expected HOST=N\/PERIOD, N ≥ 1/);
    assert.throws(() => parseRegistryRates(['quay.io:300/1h']), /expected HOST=N\/PERIOD/);
    assert.throws(() => parseRegistryRates(['quay.io=300/soon']), /--registry-rate must be a duration/);
  });

  it('the first GET to a registry not heard from goes alone: the others wait for what its answer says', async () => {
    const quotas = new PullQuotas({ maxWaitMs: 0 });
    const order: string[] = [];
    const first = await quotas.admit('docker.io');
    const second = quotas.admit('docker.io').then((done) => {
      order.push('second admitted');
      return done;
    });
    await new Promise((r) => setTimeout(r, 20));
    assert.equal(order.length, 0, 'held while the first is out');
    order.push('first answered');
    first(hub(1));
    (await second)(hub(0));
    assert.deepEqual(order, ['first answered', 'second admitted']);
    await assert.rejects(quotas.admit('docker.io'), RateLimited, 'the one pull left went to the second');
  });

  it('counts its own GETs still unanswered against what a HEAD says is left: two images asking at once cannot both take the last pull', async () => {
    const quotas = new PullQuotas({ maxWaitMs: 0 });
    await pull(quotas, 'docker.io', hub(2));
    const a = await quotas.admit('docker.io');
    // A HEAD for another image is answered before the registry has counted a's GET: it says 2 are left.
    quotas.observe('docker.io', hub(2));
    const b = await quotas.admit('docker.io');
    await assert.rejects(quotas.admit('docker.io'), RateLimited, 'a and b are out: none left, whatever the HEAD said');
    a(hub(1));
    b(hub(0));
    assert.deepEqual(quotas.remaining(), [{ registry: 'docker.io', remaining: 0 }]);
  });

  it("a hostile registry's numbers cannot make it spin or sleep for years: a window of 0 waits a second, a Retry-After of ages a day", async () => {
    const now = 0;
    const zero = new PullQuotas({ now: () => now, maxWaitMs: 0 });
    zero.observe('evil.example', { status: 200, headers: { 'ratelimit-limit': '1;w=0', 'ratelimit-remaining': '0;w=0' } });
    await assert.rejects(zero.admit('evil.example'), limitedUntil(1_000));
    const ages = new PullQuotas({ now: () => now, maxWaitMs: 0 });
    ages.observe('evil.example', { status: 429, headers: {}, retryAfterSeconds: Number('9'.repeat(400)) });
    await assert.rejects(ages.admit('evil.example'), limitedUntil(86_400_000));
    const huge = new PullQuotas({ now: () => now, maxWaitMs: 0 });
    huge.observe('evil.example', { status: 200, headers: { 'ratelimit-limit': '1;w=999999999', 'ratelimit-remaining': '0;w=999999999' } });
    await assert.rejects(huge.admit('evil.example'), limitedUntil(86_400_000));
  });

  it("splits a known quota among the namespaces pulling from it: one tenant's images cannot spend what the others need", async () => {
    let now = 0;
    const quotas = new PullQuotas({ rates: parseRegistryRates(['docker.io=10/100s']), now: () => now, maxWaitMs: 0 });
    const take = async (share: string) => (await quotas.admit('docker.io', undefined, share))();
    for (let i = 0; i < 3; i++) await take('team-a'); // alone: it may take all ten
    now = 1000;
    await take('team-b'); // two now: five each
    await take('team-a');
    await take('team-a');
    await assert.rejects(quotas.admit('docker.io', undefined, 'team-a'), (error: unknown) => {
      assert.ok(error instanceof RateLimited);
      assert.equal(error.until, 100_000, 'when its oldest pull leaves the window');
      assert.match(error.message, /this share's part of the pulls spent: 5 of 10 per 100 s, split among 2/);
      return true;
    });
    for (let i = 0; i < 4; i++) await take('team-b');
    assert.deepEqual(quotas.remaining(), [{ registry: 'docker.io', remaining: 0 }]);
    // Without a share (a pull no namespace asked for), only the registry's own budget applies.
    now = 100_001;
    await pull(quotas, 'docker.io');
  });
});
