import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { KeyedWorkQueue } from '../../src/copier/workqueue.ts';

/** A queue whose work waits until released, recording what ran and how many ran at once. */
function harness(workers: number, options: { baseMs?: number; maxMs?: number } = {}) {
  const started: string[] = [];
  const errors: string[] = [];
  const gates = new Map<string, Array<() => void>>();
  let running = 0;
  let peak = 0;
  let drains = 0;
  const queue = new KeyedWorkQueue({
    workers,
    ...options,
    work: async (key) => {
      started.push(key);
      running++;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => gates.set(key, [...(gates.get(key) ?? []), resolve]));
      running--;
      if (key.startsWith('throw')) throw new Error(`${key} broke`);
    },
    onError: (key, error) => errors.push(`${key}: ${(error as Error).message}`),
    onDrained: () => drains++,
  });
  const release = async (key: string) => {
    for (let i = 0; i < 50 && !gates.get(key)?.length; i++) await new Promise((r) => setImmediate(r));
    gates.get(key)!.shift()!();
    await new Promise((r) => setImmediate(r));
  };
  return { queue, started, errors, release, peak: () => peak, drains: () => drains };
}

describe('keyed work queue', () => {
  it('holds keys while paused, then works them, at most `workers` at once', async () => {
    const h = harness(2);
    h.queue.addAll(['a', 'b', 'c']);
    assert.deepEqual(h.started, []);
    assert.equal(h.queue.depth, 3);
    h.queue.run();
    assert.deepEqual(h.started, ['a', 'b']);
    await h.release('a');
    assert.deepEqual(h.started, ['a', 'b', 'c']);
    await h.release('b');
    await h.release('c');
    await h.queue.drained();
    assert.equal(h.peak(), 2);
    assert.equal(h.drains(), 1);
  });

  it('makes one entry of many adds, and never works one key twice at once: an add during its work runs it again after', async () => {
    const h = harness(4);
    h.queue.run();
    h.queue.addAll(['a', 'a', 'a']);
    assert.deepEqual(h.started, ['a']);
    h.queue.add('a');
    h.queue.add('a');
    assert.deepEqual(h.started, ['a'], 'not while a is being worked');
    await h.release('a');
    assert.deepEqual(h.started, ['a', 'a'], 'once more, for the adds made meanwhile');
    await h.release('a');
    await h.queue.drained();
    assert.deepEqual(h.started, ['a', 'a']);
  });

  it('a work that throws is reported and does not stop the queue', async () => {
    const h = harness(1);
    h.queue.run();
    h.queue.addAll(['throw-1', 'b']);
    await h.release('throw-1');
    assert.deepEqual(h.errors, ['throw-1: throw-1 broke']);
    assert.deepEqual(h.started, ['throw-1', 'b']);
    await h.release('b');
    await h.queue.drained();
  });

  it('pausing stops taking keys (work in flight finishes); running again resumes', async () => {
    const h = harness(1);
    h.queue.run();
    h.queue.addAll(['a', 'b']);
    h.queue.pause();
    await h.release('a');
    assert.deepEqual(h.started, ['a']);
    assert.equal(h.queue.depth, 1);
    h.queue.run();
    assert.deepEqual(h.started, ['a', 'b']);
    await h.release('b');
  });

  it('retries later with doubling, capped backoff; forget drops the pending retry and resets it', async () => {
    const h = harness(1, { baseMs: 20, maxMs: 50 });
    h.queue.run();
    const at: number[] = [];
    const t0 = performance.now();
    const retryAndTime = async () => {
      h.queue.retryLater('a');
      const before = h.started.length;
      while (h.started.length === before) await new Promise((r) => setTimeout(r, 2));
      at.push(performance.now() - t0);
      await h.release('a');
    };
    await retryAndTime(); // 20 ms
    await retryAndTime(); // 40 ms
    await retryAndTime(); // 50 ms (capped, not 80)
    const gaps = [at[0]!, at[1]! - at[0]!, at[2]! - at[1]!];
    assert.ok(gaps[0]! >= 19 && gaps[1]! >= 38 && gaps[2]! >= 48 && gaps[2]! < 78, `gaps ${gaps.map(Math.round).join(', ')} ms`);
    h.queue.forget('a');
    h.queue.retryLater('a');
    h.queue.forget('a');
    await new Promise((r) => setTimeout(r, 60));
    assert.equal(h.started.length, 3, 'a forgotten retry never fires');
  });

  it('drained() resolves at once when idle, and when the last work ends otherwise', async () => {
    const h = harness(1);
    await h.queue.drained();
    h.queue.run();
    h.queue.add('a');
    let done = false;
    const waiting = h.queue.drained().then(() => {
      done = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(done, false);
    await h.release('a');
    await waiting;
    assert.equal(done, true);
  });
});
