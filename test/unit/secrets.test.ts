/** The backstop: held secrets masked in logs, error messages and refusals (src/observability/secrets.ts). */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { describeError } from '../../src/errors.ts';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { holdSecret, scrub } from '../../src/observability/secrets.ts';

describe('held secrets', () => {
  it('are masked wherever they reach a log line, an error message or a refusal', async () => {
    holdSecret('glpat-held-token-0123456789');
    holdSecret('-----BEGIN KEY-----\nAAAAB3NzaC1yc2EAAAADAQABAAABAQC7\n-----END KEY-----\n');
    holdSecret('short');
    const lines: string[] = [];
    createLogger({ write: (l) => void lines.push(l) }).error('push failed', { error: 'remote said: glpat-held-token-0123456789 is invalid' });
    assert.doesNotMatch(lines.join(''), /glpat-held-token/);
    assert.match(lines.join(''), /remote said: \*\*\* is invalid/);
    assert.equal(describeError(new Error('kustomize: AAAAB3NzaC1yc2EAAAADAQABAAABAQC7 in a file')), 'kustomize: *** in a file');
    assert.equal(scrub('a short word stays'), 'a short word stays', 'strings under 8 characters are not held');
    // One with a quote or a backslash, as a JSON log line escapes it.
    holdSecret('pa"ss\\word-long-1234');
    const escaped: string[] = [];
    createLogger({ write: (l) => void escaped.push(l) }).error('login failed', { error: 'refused pa"ss\\word-long-1234 here' });
    assert.doesNotMatch(escaped.join(''), /word-long-1234/);
    const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
    try {
      const ledger = new Ledger(dir);
      await ledger.markRefused('x', 'helm said glpat-held-token-0123456789');
      assert.equal(ledger.refusal('x'), 'helm said ***');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
