/** `image-clone sync-repo` as a CI job runs it: real registries, a real repository, one commit. */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, it } from 'node:test';
import { startRegistryServer, type RegistryServer } from '../../devenv/registry-server.ts';
import { manifestDigestAt, seedImage } from '../../devenv/seed.ts';
import { dockerConfigJson } from '../../devenv/docker-config.ts';
import { CANARIES } from '../support/canaries.ts';
import { bareRepository, git } from '../support/git.ts';

let work: string;
let source: RegistryServer;
let backup: RegistryServer;

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'image-clone-sync-repo-'));
  [source, backup] = await Promise.all([startRegistryServer(), startRegistryServer()]);
});
after(async () => {
  await Promise.all([source?.stop(), backup?.stop()]);
  rmSync(work, { recursive: true, force: true });
});

/** `image-clone sync-repo` as a process, committing to `origin`'s main, with plain-HTTP `registries`. */
function syncRepo(origin: string, backupTo: string, registries: readonly string[], extra: readonly string[] = []) {
  const cli = join(import.meta.dirname, '../../src/cli.ts');
  const args = [
    'sync-repo',
    '--repo',
    `file://${origin}`,
    '--backup-registry',
    backupTo,
    ...registries.flatMap((r) => ['--insecure-registry', r]),
    '--git-mode',
    'commit',
    ...extra,
  ];
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
    execFile(process.execPath, [cli, ...args], (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr })),
  );
}

it('backs up every image the repository runs and moves the manifests onto the backups in one commit', async () => {
  const web = await seedImage({ url: source.url }, { repository: 'shop/web', tag: '1.0', format: 'oci', layers: [{ seed: 'sync-web', size: 4096 }] });
  const api = await seedImage({ url: source.url }, { repository: 'shop/api', tag: '2.0', format: 'docker', layers: [{ seed: 'sync-api', size: 4096 }] });
  const s = source.address;
  const files: Record<string, string> = {
    'apps/web.yaml': `kind: Deployment\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ${s}/shop/web:1.0\n`,
    'apps/api/deployment.yaml': `kind: Deployment\nmetadata:\n  name: api\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: api\n          image: ${s}/shop/api:1.9\n`,
    'apps/api/kustomization.yaml': `resources:\n  - deployment.yaml\nimages:\n  - name: ${s}/shop/api\n    newTag: "2.0"\n`,
  };
  const origin = bareRepository(join(work, 'apps.git'), files);

  const result = await syncRepo(origin, `${backup.address}/mirror`, [s, backup.address]);
  assert.equal(result.code, 0, result.stderr + result.stdout);
  const mirror = (repo: string) => `mirror/${s.replace(':', '_')}/${repo}`;
  assert.equal(await manifestDigestAt({ url: backup.url }, mirror('shop/web'), '1.0'), web.digest);
  assert.equal(await manifestDigestAt({ url: backup.url }, mirror('shop/api'), '2.0'), api.digest, 'the image kustomize makes (2.0), not the literal (1.9)');
  assert.match(result.stdout, /^pushed +file:\/\/.*apps\.git main [0-9a-f]{12}$/m);
  assert.equal(
    git(origin, 'show', 'main:apps/web.yaml'),
    files['apps/web.yaml']!.replace(`${s}/shop/web:1.0`, `${backup.address}/${mirror('shop/web')}:1.0@${web.digest}`).trim(),
  );
  assert.equal(
    git(origin, 'show', 'main:apps/api/deployment.yaml'),
    files['apps/api/deployment.yaml']!.trim(),
    'the literal kustomize overrides is left alone',
  );
  assert.equal(
    git(origin, 'show', 'main:apps/api/kustomization.yaml'),
    `${files['apps/api/kustomization.yaml']!}    newName: ${backup.address}/${mirror('shop/api')}\n    digest: ${api.digest}`.trim(),
  );

  // A second run finds everything done: images present, nothing to commit.
  const again = await syncRepo(origin, `${backup.address}/mirror`, [s, backup.address]);
  assert.equal(again.code, 0);
  assert.equal(git(origin, 'rev-list', '--count', 'main'), '2');
});

it('proposes nothing whose backup the nodes could not pull, and adds the pull Secret it is told of', async () => {
  const privateBackup = await startRegistryServer({ auth: { kind: 'basic', users: { pusher: CANARIES.registryPassword } } });
  try {
    const app = await seedImage(
      { url: source.url },
      { repository: 'shop/private-app', tag: '1.0', format: 'oci', layers: [{ seed: 'sync-private', size: 4096 }] },
    );
    const manifest = `kind: Deployment\nmetadata:\n  name: app\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: ${source.address}/shop/private-app:1.0\n`;
    const origin = bareRepository(join(work, 'private.git'), { 'app.yaml': manifest }, 'app');
    const auth = join(work, 'private-auth.json');
    writeFileSync(auth, dockerConfigJson({ [privateBackup.address]: { username: 'pusher', password: CANARIES.registryPassword } }));
    const run = (extra: string[]) =>
      syncRepo(origin, `${privateBackup.address}/mirror`, [source.address, privateBackup.address], ['--auth-file', auth, ...extra]);

    const refused = await run([]);
    assert.equal(refused.code, 1);
    assert.match(
      refused.stderr,
      /not proposed .*shop\/private-app:1\.0: the nodes could not pull .*mirror\/.*\/shop\/private-app:1\.0@sha256:[0-9a-f]{64} \(an anonymous pull was refused: .*401.*\); if they hold credentials for the backup registry, use --backup-pull node/,
    );
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '1', 'nothing committed');
    assert.ok(!refused.stderr.includes(CANARIES.registryPassword) && !refused.stdout.includes(CANARIES.registryPassword));

    // With a pull Secret the platform team provides: the manifest gets it with the new image.
    const withSecret = await run(['--backup-pull', 'secret:backup-pull']);
    assert.equal(withSecret.code, 0, withSecret.stderr);
    const moved = git(origin, 'show', 'main:app.yaml');
    assert.match(
      moved,
      new RegExp(`image: ${privateBackup.address}/mirror/.*/shop/private-app:1\\.0@${app.digest}\n      imagePullSecrets:\n        - name: backup-pull$`),
    );

    // Trusting the nodes instead: a second run finds nothing left to do.
    const trusted = await run(['--backup-pull', 'node']);
    assert.equal(trusted.code, 0, trusted.stderr);
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '2');
  } finally {
    await privateBackup.stop();
  }
});

it('never reads a source with the operator credentials: an image that needs them is not public, and is neither copied nor proposed', async () => {
  // Another team's private image, on a registry the operator's auth file holds credentials for.
  const privateSource = await startRegistryServer({ auth: { kind: 'basic', users: { reader: CANARIES.registryPassword } } });
  try {
    const authorization = `Basic ${Buffer.from(`reader:${CANARIES.registryPassword}`).toString('base64')}`;
    await seedImage(
      { url: privateSource.url, authorization },
      { repository: 'team-b/secret', tag: '1.0', format: 'oci', layers: [{ seed: 'sync-team-b', size: 4096 }] },
    );
    const image = `${privateSource.address}/team-b/secret:1.0`;
    const manifest = `kind: Deployment\nmetadata:\n  name: b\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: b\n          image: ${image}\n`;
    const origin = bareRepository(join(work, 'team-b.git'), { 'b.yaml': manifest }, 'b');
    const auth = join(work, 'team-b-auth.json');
    writeFileSync(auth, dockerConfigJson({ [privateSource.address]: { username: 'reader', password: CANARIES.registryPassword } }));
    const result = await syncRepo(origin, `${backup.address}/mirror`, [privateSource.address, backup.address], ['--auth-file', auth]);
    assert.equal(result.code, 0, result.stderr + result.stdout);
    assert.match(result.stdout, new RegExp(`^skipped +${image.replaceAll('.', '\\.')}: not public`, 'm'));
    assert.equal(
      await manifestDigestAt({ url: backup.url }, `mirror/${privateSource.address.replace(':', '_')}/team-b/secret`, '1.0'),
      undefined,
      'not copied',
    );
    assert.equal(git(origin, 'rev-list', '--count', 'main'), '1', 'nothing committed');
  } finally {
    await privateSource.stop();
  }
});
