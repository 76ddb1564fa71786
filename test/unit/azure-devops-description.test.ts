/**
 * Azure DevOps's 4,000-character descriptions: what the forge writes in the description (the body
 * without its marker, rows dropped from its table to fit) and what it keeps for the property (the marker whole).
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
    // A file name above spelling a marker: ours (the last) is the one kept apart, the other stays text.
    const planted = `${MARKER_PREFIX} {} -->`;
    assert.deepEqual(split(`files: \`${planted}.yaml\`\n\n${marker}\n`), { visible: `files: \`${planted}.yaml\``, marker });
    // A marker that never closes is not one: nothing is cut out.
    assert.deepEqual(split(`a ${MARKER_PREFIX} {`), { visible: `a ${MARKER_PREFIX} {` });
  });

  it('drops rows from the end of the table, saying how many, and keeps what follows it', () => {
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
    const lines = cut.split('\n');
    const shown = lines.filter((l) => l.startsWith('| row ')).length;
    assert.ok(shown > 10 && shown < 200, `${shown} rows shown`);
    assert.deepEqual(lines.slice(2, 4 + shown), table.slice(2, 4 + shown), 'the first rows, in order');
    assert.match(lines[4 + shown + 1]!, new RegExp(`^_… ${200 - shown} more rows not shown`));
    assert.equal(lines.at(-1), '**Files changed:** x', 'what follows the table stays');
    // One line longer than the limit: only the note is left, never a line cut in the middle.
    const long = fitted(`${'z'.repeat(5_000)}\nmore`);
    assert.ok(long.length <= DESCRIPTION_MAX_CHARS);
    assert.match(long, /^_… the rest of the description is not shown/);
    // Text around the table too long itself: cut at a line, the rows left out counted.
    const crowded = fitted([...table.slice(0, -2), '', 'w'.repeat(3_950)].join('\n'));
    assert.ok(crowded.length <= DESCRIPTION_MAX_CHARS);
    const crowdedShown = crowded.split('\n').filter((l) => l.startsWith('| row ')).length;
    assert.match(crowded, new RegExp(`\n_… ${200 - crowdedShown} more rows of the table and the rest of the description are not shown`));
  });
});
