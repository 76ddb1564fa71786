/** --backup-pull: how the nodes pull backups, parsed, and said to a reviewer. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseBackupPull, pullCell } from '../../src/image/backup-pull.ts';

it('takes anonymous and node, and names both in its refusal of anything else', () => {
  assert.deepEqual(parseBackupPull('anonymous'), { via: 'anonymous' });
  assert.deepEqual(parseBackupPull('node'), { via: 'node' });
  for (const bad of ['', 'Node', 'secret', 'nodes']) {
    assert.throws(() => parseBackupPull(bad), /--backup-pull must be anonymous \(.*\) or node \(.*\), got /);
  }
});

it('says in one cell what was checked', () => {
  assert.equal(pullCell({ via: 'anonymous' }), 'anonymously (checked)');
  assert.equal(pullCell({ via: 'node' }), 'node credentials (not checked)');
  assert.equal(pullCell(undefined), 'not recorded');
});
