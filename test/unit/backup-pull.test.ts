/** --backup-pull: how the nodes pull backups, parsed, and said to a reviewer. */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { parseBackupPull, pullCell } from '../../src/image/backup-pull.ts';

it('takes anonymous, node and secret:NAME, and names all three in its refusal of anything else', () => {
  assert.deepEqual(parseBackupPull('anonymous'), { via: 'anonymous' });
  assert.deepEqual(parseBackupPull('node'), { via: 'node' });
  assert.deepEqual(parseBackupPull('secret:backup-pull.v2'), { via: 'secret', secret: 'backup-pull.v2' });
  for (const bad of ['', 'Node', 'secret', 'nodes']) {
    assert.throws(() => parseBackupPull(bad), /--backup-pull must be anonymous \(.*\), node \(.*\) or secret:NAME \(.*\), got /);
  }
  for (const bad of ['secret:', 'secret:Backup', 'secret:-x', 'secret:a_b', `secret:${'a'.repeat(254)}`]) {
    assert.throws(() => parseBackupPull(bad), /--backup-pull secret:NAME needs a Secret name/);
  }
});

it('says in one cell what was checked', () => {
  assert.equal(pullCell({ via: 'anonymous' }), 'anonymously (checked)');
  assert.equal(pullCell({ via: 'node' }), 'node credentials (not checked)');
  assert.equal(pullCell(undefined), 'not recorded');
  assert.equal(pullCell({ via: 'secret', secret: 'p', listedBy: 'pod' }), 'Secret `p` (the pod template lists it)');
  assert.equal(pullCell({ via: 'secret', secret: 'p', listedBy: 'service-account' }), 'Secret `p` (its service account lists it)');
  assert.equal(pullCell({ via: 'secret', secret: 'p', listedBy: 'none' }), 'Secret `p` (this change adds it to the pod template)');
});
