/** The README's main command, `image-clone demo`, run as a process: it must work and clean up. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';

it('image-clone demo runs the copier and the rewriter end to end and shows the diff', async () => {
  const { code, stdout } = await new Promise<{ code: number; stdout: string }>((resolve) => {
    execFile(process.execPath, [join(import.meta.dirname, '../../src/cli.ts'), 'demo'], { timeout: 600_000 }, (error, stdout) => resolve({ code: error ? 1 : 0, stdout }));
  });
  assert.equal(code, 0, stdout);
  assert.match(stdout, /backup digest (sha256:[0-9a-f]{64}) ✔ the same as the source/);
  assert.match(stdout, /1 handoff record written for shop\/Deployment\/web, owner argocd\/Application web/);
  assert.match(stdout, /^ {6}- {10}image: 127\.0\.0\.1:\d+\/demo\/web:1\.0 {3}# from a public registry$/m);
  assert.match(stdout, /^ {6}\+ {10}image: 127\.0\.0\.1:\d+\/backup\/127\.0\.0\.1_\d+\/demo\/web:1\.0@sha256:[0-9a-f]{64} {3}# from a public registry$/m);
  assert.match(stdout, /1 file changed, 1 insertion\(\+\), 1 deletion\(-\)/);
  assert.match(stdout, /^Done\./m);
});
