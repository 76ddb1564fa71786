import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { resolveDestination } from '../../src/commands/copy.ts';
import { formatReference, parseReference } from '../../src/image/reference.ts';

describe('copy destinations', () => {
  const D = `sha256:${'c'.repeat(64)}`;
  it('a destination without tag takes the source tag; an explicit one is kept', () => {
    assert.equal(formatReference(resolveDestination(parseReference('nginx:1.25'), 'localhost:5000/mirror/nginx')), 'localhost:5000/mirror/nginx:1.25');
    assert.equal(formatReference(resolveDestination(parseReference('nginx:1.25'), 'localhost:5000/mirror/nginx:stable')), 'localhost:5000/mirror/nginx:stable');
    assert.equal(formatReference(resolveDestination(parseReference(`nginx@${D}`), 'localhost:5000/n')), `localhost:5000/n:sha256-${'c'.repeat(64)}@${D}`);
  });
});
