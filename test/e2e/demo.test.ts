/** The README's main command, the demo (devenv/demo.ts), run as a process: it must work and clean up. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { it } from 'node:test';

for (const forge of ['gitea (where built)', 'none'] as const)
  it(`the demo runs the copier and the rewriter end to end and shows the diff (forge: ${forge})`, async () => {
    const env = forge === 'none' ? { ...process.env, IMAGE_CLONE_DEMO_FORGE: 'none' } : process.env;
    const { code, stdout, stderr } = await new Promise<{ code: number | string; stdout: string; stderr: string }>((resolve) => {
      execFile(process.execPath, [join(import.meta.dirname, '../../devenv/demo.ts')], { timeout: 600_000, env }, (error, stdout, stderr) =>
        resolve({ code: error ? (error.signal ?? error.code ?? 1) : 0, stdout, stderr }),
      );
    });
    assert.equal(code, 0, `exit ${code}\n${stdout}\n--- stderr ---\n${stderr}`);
    assert.match(stdout, /backup digest (sha256:[0-9a-f]{64}) ✔ the same as the source/);
    assert.match(stdout, /1 handoff record written for shop\/Deployment\/web, owner argocd\/Application web/);
    assert.match(stdout, /^ {6}- {10}image: 127\.0\.0\.1:\d+\/demo\/web:1\.0 {3}# from a public registry$/m);
    assert.match(stdout, /^ {6}\+ {10}image: 127\.0\.0\.1:\d+\/backup\/127\.0\.0\.1_\d+\/demo\/web:1\.0@sha256:[0-9a-f]{64} {3}# from a public registry$/m);
    // A pull request on Gitea where it is built (as in CI), else a commit; both show the diff.
    assert.match(
      stdout,
      forge === 'none' ? /pushed [0-9a-f]{12} to main/ : /opened http:\/\/127\.0\.0\.1:\d+\/image-clone-bot\/apps\/pulls\/1|pushed [0-9a-f]{12} to main/,
    );
    assert.match(stdout, /diff --git a\/apps\/web\/deployment\.yaml b\/apps\/web\/deployment\.yaml/);
    // The default pull path: the demo's backup registry serves anonymous pulls, proved before proposing.
    if (/opened http/.test(stdout)) assert.match(stdout, /\| shop\/Deployment\/web \| web \|.*\| anonymously \(checked\) \|/);
    assert.match(stdout, /^Done\./m);
  });
