/** The README's main command, the demo (devenv/demo.ts), run as a process: it must work and clean up, at once or, with --keep, on Ctrl-C. */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
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

it('the demo with --keep leaves the servers up to browse, then stops and removes everything on Ctrl-C', async () => {
  const child = spawn(process.execPath, [join(import.meta.dirname, '../../devenv/demo.ts'), '--keep'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  child.stdout.setEncoding('utf8');
  const kept = new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: string) => {
      stdout += chunk;
      if (stdout.includes('stays up until Ctrl-C')) setTimeout(resolve, 200);
    });
    child.once('exit', (code) => reject(new Error(`the demo exited (${code}) before it was kept up:\n${stdout}`)));
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    await kept;
    const work = /--kubeconfig (\/\S+)\/cluster\/kubeconfig/.exec(stdout)?.[1];
    assert.ok(work && existsSync(work), `the work directory is named and still there:\n${stdout}`);
    const registry = /backup registry (http:\/\/127\.0\.0\.1:\d+\/v2\/_catalog)/.exec(stdout)?.[1];
    assert.ok(registry, stdout);
    assert.match(await (await fetch(registry)).text(), /127\.0\.0\.1_\d+\/demo\/web/, 'the backup registry still serves the backup');
    const pullRequest = /opened (http:\/\/127\.0\.0\.1:\d+\/\S+\/pulls\/\d+)/.exec(stdout)?.[1];
    if (pullRequest) assert.equal((await fetch(pullRequest)).status, 200, 'the pull request page can be browsed');
    child.kill('SIGINT');
    // A second Ctrl-C (the terminal signals npm and the demo both) must not cut the clean-up short.
    setTimeout(() => child.kill('SIGINT'), 100);
    assert.equal(await exited, 0, stdout);
    assert.match(stdout, /Stopping and removing everything\./);
    assert.equal(existsSync(work), false, 'the work directory is removed');
    await assert.rejects(fetch(registry), 'the registries are stopped');
  } finally {
    child.kill('SIGKILL');
  }
});
