import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parseReference } from '../../src/image/reference.ts';
import { planRepository } from '../../src/rewriter/edit/plan.ts';
import { renderedObjects } from '../../src/rewriter/proof/documents.ts';
import { OUTPUT_MAX_BYTES, renderSlots } from '../../src/rewriter/proof/tools.ts';
import { memoryLimitBytes } from '../../src/util/memory-limit.ts';
import { NamespaceBudget } from '../../src/copier/namespace-budget.ts';
import { FairLimit } from '../../src/util/limit.ts';
import { parseSize } from '../../src/util/size.ts';

/** A task that runs until released, recording when it started. */
function gate(log: string[], name: string): { task: () => Promise<void>; release: () => void } {
  let release!: () => void;
  const done = new Promise<void>((resolve) => (release = resolve));
  return {
    task: async () => {
      log.push(name);
      await done;
    },
    release: () => release(),
  };
}

describe('FairLimit', () => {
  it('holds a key to its share, gives another key a full share beside it, and a freed slot to the key holding fewest', async () => {
    const limit = new FairLimit(2, 3);
    const log: string[] = [];
    const slow = Array.from({ length: 4 }, (_, i) => gate(log, `slow${i}`));
    const runs = slow.map((g) => limit.run('slow.example', g.task));
    await Promise.resolve();
    assert.deepEqual(log, ['slow0', 'slow1'], 'one key holds at most its share');
    const fast = [gate(log, 'fast0'), gate(log, 'fast1'), gate(log, 'fast2')];
    const fastRuns = fast.map((g) => limit.run('fast.example', g.task));
    await Promise.resolve();
    assert.deepEqual(log.slice(2), ['fast0'], 'another key starts at once, up to the total');
    slow[0]!.release();
    await new Promise((resolve) => setImmediate(resolve));
    // slow holds 1, fast 1: the freed slot goes to the key that waited first among the fewest.
    assert.equal(log.length, 4);
    assert.equal(limit.heldBy('slow.example') + limit.heldBy('fast.example'), 3);
    for (const g of [...slow, ...fast]) g.release();
    await Promise.all([...runs, ...fastRuns]);
    assert.equal(limit.pending, 0);
  });

  it('lets a key alone use its whole share, and the total defaults to two shares', async () => {
    assert.equal(await new FairLimit(1).run('a', async () => 7), 7);
    const limit = new FairLimit(4);
    assert.equal(limit.total, 8);
    let peak = 0;
    await Promise.all(
      Array.from({ length: 10 }, () =>
        limit.run('a', async () => {
          peak = Math.max(peak, limit.heldBy('a'));
          await new Promise((resolve) => setTimeout(resolve, 5));
        }),
      ),
    );
    assert.equal(peak, 4);
  });
});

describe('parseSize', () => {
  it('reads binary and decimal units, and names the flag when it cannot', () => {
    assert.equal(parseSize('--max-image-size', '20GiB'), 20 * 1024 ** 3);
    assert.equal(parseSize('--x', '1MB'), 1_000_000);
    assert.equal(parseSize('--x', '1.5Ki'), 1536);
    assert.equal(parseSize('--x', '4096'), 4096);
    assert.throws(() => parseSize('--max-image-size', '20 parsecs'), /--max-image-size must be a positive size like 20GiB/);
    assert.throws(() => parseSize('--x', '0'), /positive size/);
  });
});

describe('NamespaceBudget', () => {
  it('counts images as copies start, gives back only what found the backup there, stops at the byte share, and settles in the interval it admitted', () => {
    let now = 0;
    const budget = new NamespaceBudget({ images: 2, bytes: 1000 }, 60_000, () => now);
    const first = budget.admit('team');
    assert.ok(first.ok && first.bytesLeft === 1000);
    const second = budget.admit('team');
    assert.ok(second.ok);
    const third = budget.admit('team');
    assert.ok(
      !third.ok && third.reason === 'namespace-images' && /copied 2 images in this 1-minute interval, its share \(--namespace-max-images\)/.test(third.why),
    );
    assert.equal(budget.admit('other').ok, true, 'another namespace has its own share');
    budget.settle(first, false, 0);
    assert.equal(budget.admit('team').ok, true, 'a backup found there gave its image back');
    // A failed copy keeps its image counted (it may have moved bytes).
    budget.settle(second, true, 1200);
    const full = budget.admit('team');
    assert.ok(!full.ok && full.reason === 'namespace-images');
    now = 60_000;
    const fresh = budget.admit('team');
    assert.ok(fresh.ok && fresh.bytesLeft === 1000, 'a new interval starts afresh');
    // A copy admitted in the last interval settles nothing in this one.
    budget.settle(second, false, 5000);
    budget.settle(fresh, true, 1000);
    const bytes = budget.admit('team');
    assert.ok(!bytes.ok && bytes.reason === 'namespace-bytes' && /\(--namespace-max-bytes 1000 B\)/.test(bytes.why), JSON.stringify(bytes));
  });
});

describe('the parse budget, whatever the documents', () => {
  it('counts a file parsed whole after all (a bare document after ...), and each document rewrite only checks', () => {
    const dir = mkdtempSync(join(tmpdir(), 'budget-docs-'));
    try {
      const deployment =
        'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: docker.io/team/app:1\n';
      const dense = `kind: ConfigMap\ndata: {x: [${Array.from({ length: 400_000 }, () => 'a').join(',')}]}\n`;
      writeFileSync(join(dir, 'bare.yaml'), `${deployment}...\nbare: doc\n---\n${dense}`);
      writeFileSync(join(dir, 'checked.yaml'), `${deployment.replace('team/app', 'team/other')}---\n${dense}`);
      const plan = planRepository(dir, undefined, [{ from: parseReference('docker.io/team/app:1'), to: 'b.io/app:1' }], { reportEveryBrokenFile: true });
      const errors = plan.errors.map((e) => e.message).sort();
      assert.equal(errors.length, 2, errors.join('\n'));
      assert.match(errors[0]!, /^bare\.yaml: not parsed: it holds more YAML lines and flow items than the \d+ left to parse$/);
      assert.match(errors[1]!, /^checked\.yaml:11: a document holds more than 300000 YAML lines and flow items; not parsed$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('render slots from the memory limit', () => {
  it("finds the limit of the process's own cgroup, as a process placed in one without a cgroup namespace sees it", async (t) => {
    // A real cgroup (v1 memory, or v2) holding a child process; needs root, as .ci/run is.
    const v1 = '/sys/fs/cgroup/memory';
    const base = existsSync(`${v1}/cgroup.procs`) ? v1 : '/sys/fs/cgroup';
    const dir = join(base, `image-clone-test-${process.pid}`);
    try {
      mkdirSync(dir);
      writeFileSync(join(dir, base === v1 ? 'memory.limit_in_bytes' : 'memory.max'), String(384 * 1024 ** 2));
    } catch (error) {
      t.skip(`cannot make a cgroup here (${(error as Error).message})`);
      return;
    }
    try {
      const module = new URL('../../src/util/memory-limit.ts', import.meta.url).pathname;
      const script = `require('node:fs').writeFileSync('${dir}/cgroup.procs', String(process.pid)); import('${module}').then((m) => console.log(m.memoryLimitBytes()))`;
      const out = execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' });
      assert.equal(Number(out.trim()), 384 * 1024 ** 2);
    } finally {
      rmdirSync(dir);
    }
  });

  it("reads the cgroup's limit, and runs as many renders as it holds at their worst (one at least, four at most)", () => {
    const dir = mkdtempSync(join(tmpdir(), 'cgroup-'));
    try {
      writeFileSync(join(dir, 'v2'), '536870912\n');
      writeFileSync(join(dir, 'unlimited'), 'max\n');
      writeFileSync(join(dir, 'v1-unlimited'), '9223372036854771712\n');
      assert.equal(memoryLimitBytes([join(dir, 'missing'), join(dir, 'v2')]), 512 * 1024 ** 2);
      assert.equal(memoryLimitBytes([join(dir, 'unlimited')]), undefined);
      assert.equal(memoryLimitBytes([join(dir, 'v1-unlimited')]), undefined);
      // A cgroup without a limit of its own under a parent that has one: the parent's binds.
      assert.equal(memoryLimitBytes([join(dir, 'unlimited'), join(dir, 'v2'), join(dir, 'v1-unlimited')]), 512 * 1024 ** 2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    assert.equal(renderSlots(512 * 1024 ** 2), 1, "the rewriter's 512 MiB");
    assert.equal(renderSlots(256 * 1024 ** 2), 1);
    assert.equal(renderSlots(1024 ** 3), 4);
    assert.equal(renderSlots(undefined), 4);
  });
});

describe('what one plan reads', () => {
  it('refuses a tree of more than 128 MiB of YAML, naming the bound, without holding it all', () => {
    const dir = mkdtempSync(join(tmpdir(), 'tree-bound-'));
    try {
      mkdirSync(join(dir, 'apps'));
      // 27 files of 5,000,000 bytes each (sparse: no disk), each under the 5 MiB a file may be.
      for (let i = 0; i < 27; i++) {
        const file = join(dir, 'apps', `filler-${i}.yaml`);
        writeFileSync(file, '');
        truncateSync(file, 5_000_000);
      }
      assert.throws(
        () => planRepository(dir, 'apps', [{ from: parseReference('nginx:1.25'), to: 'backup.example/nginx:1.25' }]),
        /apps holds more than 128 MiB of YAML; not planned/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('what one render may hold', () => {
  it('refuses a render whose nodes, not its bytes, would exhaust the rewriter (one long flow sequence)', () => {
    const flow = `items: [${'1,'.repeat(400_000)}1]\n`;
    assert.ok(flow.length < OUTPUT_MAX_BYTES, 'under the output cap');
    assert.throws(
      () => [...renderedObjects(flow)],
      /the render holds 400002 YAML lines and flow items, more than the 300000 the rewriter parses; not compared/,
    );
    assert.deepEqual([...renderedObjects('kind: ConfigMap\nmetadata: {name: a}\n')], [{ kind: 'ConfigMap', metadata: { name: 'a' } }]);
  });
});
