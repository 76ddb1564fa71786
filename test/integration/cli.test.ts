/** The `image-clone copy` command line contract, run as a process against real registries. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { seedImage } from '../../devenv/seed.ts';

const CLI = join(import.meta.dirname, '../../src/cli.ts');

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [CLI, ...args], { timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('image-clone copy (command line)', () => {
  let source: RegistryServer;
  let backup: RegistryServer;
  let dir: string;
  const digests: Record<string, string> = {};
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'image-clone-cli-'));
    [source, backup] = await Promise.all([startRegistryServer(), startRegistryServer()]);
    for (const name of ['one', 'two', 'three']) {
      digests[name] = (
        await seedImage(
          { url: source.url },
          {
            repository: `cli/${name}`,
            tag: 'v1',
            format: 'oci',
            layers: [
              { seed: 'cli-base', size: 64 * 1024 },
              { seed: name, size: 1024 },
            ],
          },
        )
      ).digest;
    }
  });
  after(async () => {
    await Promise.all([source?.stop(), backup?.stop()]);
    rmSync(dir, { recursive: true, force: true });
  });
  const insecure = () => ['--insecure-registry', source.address, '--insecure-registry', backup.address];

  it('copies SRC DST and prints the digest; DST without a tag takes the source tag', async () => {
    const result = await cli(['copy', `${source.address}/cli/one:v1`, `${backup.address}/out/one`, ...insecure()]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`^copied +${source.address}/cli/one:v1 -> ${backup.address}/out/one:v1 ${digests.one}`));
  });

  it('copies a file of pairs concurrently and exits 1 naming the one that failed', async () => {
    const file = join(dir, 'pairs.txt');
    writeFileSync(
      file,
      [
        '# source destination',
        `${source.address}/cli/one:v1 ${backup.address}/batch/one:v1`,
        `${source.address}/cli/two:v1 ${backup.address}/batch/two:v1`,
        '',
        `${source.address}/cli/missing:v1 ${backup.address}/batch/missing:v1`,
        `${source.address}/cli/three:v1 ${backup.address}/batch/three:v1`,
      ].join('\n'),
    );
    const result = await cli(['copy', '--from-file', file, ...insecure()]);
    assert.equal(result.code, 1);
    assert.equal(result.stdout.trim().split('\n').length, 3, result.stdout);
    for (const name of ['one', 'two', 'three']) assert.ok(result.stdout.includes(digests[name]!), name);
    assert.match(result.stderr, /failed .*cli\/missing:v1 .*404/);
  });

  it('maps SRC to its backup name with --backup-registry', async () => {
    const result = await cli(['copy', `${source.address}/cli/two:v1`, '--backup-registry', `${backup.address}/mirror`, ...insecure()]);
    assert.equal(result.code, 0, result.stderr);
    assert.ok(result.stdout.includes(`${backup.address}/mirror/${source.address.replace(':', '_')}/cli/two:v1 ${digests.two}`), result.stdout);
  });

  it('rejects malformed input with a clear message and exit 2 or 1', async () => {
    const bad = await cli(['copy', 'Not/A/Valid:ref', `${backup.address}/x:v1`, ...insecure()]);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /invalid image reference "Not\/A\/Valid:ref": .*lowercase/);
    const usage = await cli(['copy']);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /copy needs SRC and DST/);
    const authFile = join(dir, 'broken.json');
    writeFileSync(authFile, '{not json');
    const auth = await cli(['copy', `${source.address}/cli/one:v1`, `${backup.address}/x:v1`, '--auth-file', authFile]);
    assert.equal(auth.code, 2);
    assert.match(auth.stderr, /auth file .*broken.json is not valid JSON/);
    const level = await cli(['copier', '--log-level', 'loud', '--backup-registry', `${backup.address}/m`, '--handoff-dir', join(dir, 'handoff')]);
    assert.equal(level.code, 2);
    assert.equal(level.stderr, 'image-clone: --log-level must be one of debug, info, warn, error, got "loud"\n', 'one line, no stack trace');
    // The Git flags are checked once, where they are read, for the rewriter and sync-repo alike.
    for (const command of [
      ['rewriter', '--handoff-dir', join(dir, 'handoff'), '--cache-dir', join(dir, 'cache')],
      ['sync-repo', '--repo', 'file:///nowhere', '--backup-registry', `${backup.address}/m`],
    ]) {
      const pr = await cli([...command, '--git-mode', 'pr']);
      assert.equal(pr.code, 2);
      assert.match(pr.stderr, /--git-mode pr needs --forge-token-file \(or a --git-password-file token/);
      const ssh = await cli([...command, '--git-ssh-key-file', join(dir, 'key')]);
      assert.equal(ssh.code, 2);
      assert.match(ssh.stderr, /--git-ssh-key-file and --git-known-hosts-file go together: a key without known hosts would trust any server/);
    }
  });
});
