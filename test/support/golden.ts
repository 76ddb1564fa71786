/**
 * Golden cases of `image-clone rewrite`, one folder each under test/fixtures/<group>/<case>/ (a
 * group per format, test/fixtures/formats/<format>/, and one for the edit session): `before/` (the
 * tree), `args` (the command's arguments after `--repo DIR`), `after/` (the tree it must leave) and
 * `stderr` (every line it must print, then `exit N`). Run as a process, with the render proof, real
 * kustomize and real helm, on a copy of `before/`. See test/fixtures/formats/README.md.
 *
 * To see what a new case gives: IMAGE_CLONE_GOLDEN_WRITE=1 writes `after/` and `stderr` from the
 * run (then read them: a golden file is a claim, not a record of whatever happened).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { after, it } from 'node:test';
import { HELM_BIN } from '../../devenv/cache.ts';

const CLI = join(import.meta.dirname, '../../src/cli.ts');
const FIXTURES = join(import.meta.dirname, '../fixtures');
const write = process.env.IMAGE_CLONE_GOLDEN_WRITE === '1';
const copies: string[] = [];
after(() => {
  for (const c of copies) rmSync(c, { recursive: true, force: true });
});

/** Every file under `dir`, path → text. */
function treeOf(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  for (const entry of readdirSync(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) files.set(relative(dir, join(entry.parentPath, entry.name)), readFileSync(join(entry.parentPath, entry.name), 'utf8'));
  }
  return files;
}

function rewrite(args: readonly string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, 'rewrite', ...args], (error, _stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stderr }),
    ),
  );
}

/** A test per golden case of `group` (a folder under test/fixtures/); it must hold one at least. */
export function goldenCases(group: string): void {
  const cases = readdirSync(join(FIXTURES, group))
    .sort()
    .filter((name) => existsSync(join(FIXTURES, group, name, 'args')));
  if (cases.length === 0) throw new Error(`no golden case under test/fixtures/${group}`);
  for (const name of cases) {
    const dir = join(FIXTURES, group, name);
    it(`rewrite ${name}`, async () => {
      const tree = mkdtempSync(join(tmpdir(), `golden-${name}-`));
      copies.push(tree);
      cpSync(join(dir, 'before'), tree, { recursive: true });
      const args = readFileSync(join(dir, 'args'), 'utf8').trim().split(/\s+/);
      const { code, stderr } = await rewrite(['--repo', tree, '--helm', HELM_BIN, ...args]);
      const said = `${stderr.split(tree).join('<repo>')}exit ${code}\n`;
      if (write) {
        rmSync(join(dir, 'after'), { recursive: true, force: true });
        cpSync(tree, join(dir, 'after'), { recursive: true });
        writeFileSync(join(dir, 'stderr'), said);
      }
      assert.equal(said, readFileSync(join(dir, 'stderr'), 'utf8'));
      assert.deepEqual(treeOf(tree), treeOf(join(dir, 'after')));
    });
  }
}
