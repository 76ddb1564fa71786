/**
 * Azure DevOps's 4,000-character descriptions: what the forge writes in the description (the body
 * without its marker, cut at a line to fit) and what it keeps for the property (the marker whole).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DESCRIPTION_MAX_CHARS, fitted, split } from '../../src/rewriter/forges/azure-devops.ts';
import { MARKER_PREFIX } from '../../src/rewriter/forges/description.ts';

describe('an Azure DevOps description', () => {
  it('is left whole up to 4,000 characters, the marker taken out and kept apart', () => {
    const exact = 'x'.repeat(DESCRIPTION_MAX_CHARS);
    assert.equal(fitted(exact), exact);
    const marker = `${MARKER_PREFIX} {"rows":[]} -->`;
    assert.deepEqual(split(`table\n\n${marker}\n`), { visible: 'table', marker });
    assert.deepEqual(split('no marker here'), { visible: 'no marker here' });
    // A marker that never closes is not one: nothing is cut out.
    assert.deepEqual(split(`a ${MARKER_PREFIX} {`), { visible: `a ${MARKER_PREFIX} {` });
  });

  it('is cut at a line, counting the rows of the table left out, and always fits', () => {
    const table = [
      'intro',
      '',
      '| A | B |',
      '|---|---|',
      ...Array.from({ length: 200 }, (_, i) => `| row ${i} | ${'y'.repeat(40)} |`),
      '',
      '**Files changed:** x',
    ];
    const cut = fitted(table.join('\n'));
    assert.ok(cut.length <= DESCRIPTION_MAX_CHARS);
    const shown = cut.split('\n').filter((l) => l.startsWith('| row ')).length;
    assert.match(cut.split('\n').at(-1)!, new RegExp(`^_… ${200 - shown} more rows of the table and the rest of the description are not shown`));
    // One line longer than the limit: only the note is left, never a line cut in the middle.
    const long = fitted(`${'z'.repeat(5_000)}\nmore`);
    assert.ok(long.length <= DESCRIPTION_MAX_CHARS);
    assert.match(long, /^_… the rest of the description is not shown/);
  });
});
