/** The rewriter's intake (src/rewriter/intake.ts): passes at start, per burst of records, again after a failure; the stuck clock. */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createLogger } from '../../src/observability/log.ts';
import { Intake, StepClock } from '../../src/rewriter/intake.ts';

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const quiet = createLogger({ write: () => {} });

async function until(test: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 200 && !test(); i++) await sleep(25);
  assert.ok(test(), what);
}

describe('the intake', () => {
  it('passes at start, once per burst of records, never two at once, and again after a failed pass', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'intake-'));
    dirs.push(dir);
    const intake = new Intake<number>(dir, quiet);
    let passes = 0;
    let running = 0;
    let overlapped = false;
    let failNext = false;
    const seen: number[] = [];
    const watching = intake.watch(
      async () => {
        overlapped ||= running > 0;
        running++;
        passes++;
        await sleep(30);
        running--;
        const ok = !failNext;
        failNext = false;
        return { ok, result: passes };
      },
      50,
      (n) => seen.push(n),
      40,
    );
    try {
      await until(() => passes === 1 && running === 0, 'a pass at start');
      // A burst of three records within the debounce: one pass.
      for (const n of [1, 2, 3]) writeFileSync(join(dir, `r${n}.json`), '{}');
      writeFileSync(join(dir, 'ignored.txt'), '');
      await until(() => passes === 2 && running === 0, 'one pass for the burst');
      await sleep(400);
      assert.equal(passes, 2, 'not one per record, and nothing for a file that is not a record');
      // A failed pass is followed by another after the requeue delay, with no new record.
      failNext = true;
      writeFileSync(join(dir, 'r4.json'), '{}');
      await until(() => passes === 4, 'the failed pass tried again by itself');
    } finally {
      await intake.stop();
      await watching;
    }
    assert.equal(overlapped, false);
    assert.deepEqual(seen, [1, 2, 3, 4]);
  });

  it('says a step is stuck once it runs past the limit, naming it; idle or fresh steps are healthy', () => {
    const clock = new StepClock();
    assert.deepEqual(clock.healthy(1_000), { ok: true, detail: 'idle, watching for records' });
    clock.step('repo https://git.example/apps main (2 records)');
    assert.equal(clock.healthy(1_000).ok, true);
    const later = Date.now() + 5_000;
    assert.deepEqual(clock.healthy(1_000, later), {
      ok: false,
      detail: 'stuck: on repo https://git.example/apps main (2 records) for 5 s, more than 1 s',
    });
    clock.idle();
    assert.equal(clock.healthy(1_000, later).ok, true);
  });
});
