/**
 * The documentation against the code: each reference page's flag table is what its command parses,
 * the README stays the short page a newcomer enters, and every link between the pages leads somewhere.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { describe, it } from 'node:test';
import { COMMAND_FLAGS } from '../../src/cli.ts';
import { DOCS_DIR, docPages, withFlagTables } from '../../scripts/docs.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const pages = [join(ROOT, 'README.md'), ...docPages().map((p) => join(DOCS_DIR, p))];

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
const anchor = (heading: string) =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replaceAll(' ', '-');

function anchorsOf(file: string): Set<string> {
  let fenced = false;
  const found = new Set<string>();
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line.startsWith('```')) fenced = !fenced;
    const heading = !fenced && /^#{1,6} (.+)$/.exec(line);
    if (heading) found.add(anchor(heading[1]!));
  }
  return found;
}

describe('the documentation', () => {
  it("has each command's flag table as the command parses it", () => {
    const tabled = new Set<string>();
    for (const page of docPages()) {
      const text = readFileSync(join(DOCS_DIR, page), 'utf8');
      for (const [, command] of text.matchAll(/<!-- flags:([a-z-]+) -->/g)) tabled.add(command!);
      assert.equal(text, withFlagTables(text, page), `docs/${page}: a flag table differs from the code's (run npm run docs)`);
    }
    assert.deepEqual([...tabled].sort(), Object.keys(COMMAND_FLAGS).sort(), 'every command has its table in docs/');
  });

  it('keeps the README under 250 lines', () => {
    const lines = readFileSync(join(ROOT, 'README.md'), 'utf8').split('\n').length;
    assert.ok(lines < 250, `README.md has ${lines} lines`);
  });

  it('links only to files and headings that exist', () => {
    const broken: string[] = [];
    for (const file of pages) {
      const text = readFileSync(file, 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (/^[a-z]+:/.test(target!)) continue;
        const [path, hash] = target!.split('#') as [string, string | undefined];
        const linked = path === '' ? file : resolve(dirname(file), path);
        if (!existsSync(linked)) broken.push(`${file.slice(ROOT.length + 1)}: ${target} (no such file)`);
        else if (hash !== undefined && linked.endsWith('.md') && !anchorsOf(linked).has(hash))
          broken.push(`${file.slice(ROOT.length + 1)}: ${target} (no such heading)`);
      }
    }
    assert.deepEqual(broken, []);
  });
});
