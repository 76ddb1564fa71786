/** The `image-clone rewrite` command line contract, run as a process on a real directory tree. */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';

const CLI = join(import.meta.dirname, '../../src/cli.ts');
const roots: string[] = [];
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(process.execPath, [CLI, ...args], (error, stdout, stderr) =>
      resolve({ code: error ? Number((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

const WEB =
  'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25 # pinned\n';

describe('image-clone rewrite (command line)', () => {
  const root = mkdtempSync(join(tmpdir(), 'rewrite-cli-'));
  roots.push(root);
  mkdirSync(join(root, 'apps'));
  writeFileSync(join(root, 'apps/web.yaml'), WEB);
  writeFileSync(join(root, 'apps/broken.yaml'), 'kind: Pod\nspec: [unclosed\n');

  it('--dry-run prints the unified diff and writes nothing', async () => {
    const result = await run(['rewrite', '--repo', root, '--set', 'docker.io/library/nginx:1.25=backup.io/m/nginx:1.25', '--dry-run']);
    assert.equal(result.code, 1, 'non-zero: a file could not be parsed');
    assert.match(result.stdout, /^--- a\/apps\/web\.yaml/m);
    assert.match(result.stdout, /^- {10}image: nginx:1\.25 # pinned$/m);
    assert.match(result.stdout, /^\+ {10}image: backup\.io\/m\/nginx:1\.25 # pinned$/m);
    assert.match(result.stderr, /error: apps\/broken\.yaml:\d+: .*\(file left untouched\)/);
    assert.equal(readFileSync(join(root, 'apps/web.yaml'), 'utf8'), WEB);
  });

  it('writes the edit, names the broken file, and exits 1', async () => {
    const result = await run(['rewrite', '--repo', root, '--path', 'apps', '--set', 'nginx:1.25=backup.io/m/nginx:1.25']);
    assert.equal(result.code, 1);
    assert.equal(readFileSync(join(root, 'apps/web.yaml'), 'utf8'), WEB.replace('nginx:1.25', 'backup.io/m/nginx:1.25'));
    assert.equal(readFileSync(join(root, 'apps/broken.yaml'), 'utf8'), 'kind: Pod\nspec: [unclosed\n');
  });

  it('exits 0 when every needed edit was made, and rejects a malformed --set', async () => {
    rmSync(join(root, 'apps/broken.yaml'));
    const ok = await run(['rewrite', '--repo', root, '--set', 'backup.io/m/nginx:1.25=other.io/nginx:1.25']);
    assert.equal(ok.code, 0, ok.stderr);
    const bad = await run(['rewrite', '--repo', root, '--set', 'nginx']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--set expects OLD=NEW/);
  });
});

describe('image-clone rewrite --dry-run diffs apply as they are', () => {
  const cases: Record<string, string> = {
    'a trailing blank context line':
      'kind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: nginx:1.25\n\n',
    'CRLF, the change on a last line without a line break':
      'kind: Deployment\r\nmetadata:\r\n  name: web\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n        - name: web\r\n          image: nginx:1.25',
    'CRLF, the change on the last line':
      'kind: Deployment\r\nmetadata:\r\n  name: web\r\nspec:\r\n  template:\r\n    spec:\r\n      containers:\r\n        - name: web\r\n          image: nginx:1.25\r\n',
  };
  for (const [what, text] of Object.entries(cases)) {
    it(what, async () => {
      const root = mkdtempSync(join(tmpdir(), 'rewrite-diff-'));
      roots.push(root);
      writeFileSync(join(root, 'web.yaml'), text);
      execFileSync('git', ['init', '-q'], { cwd: root });
      const set = ['--set', 'nginx:1.25=backup.io/m/nginx:1.25'];
      const dry = await run(['rewrite', '--repo', root, ...set, '--dry-run']);
      assert.equal(dry.code, 0, dry.stderr);
      const diff = dry.stdout;
      const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', input: diff, stdio: ['pipe', 'pipe', 'pipe'] });
      assert.doesNotThrow(() => git('apply', '--check', '-'), `git apply --check accepts:\n${JSON.stringify(diff)}`);
      git('apply', '-');
      const applied = readFileSync(join(root, 'web.yaml'), 'utf8');
      writeFileSync(join(root, 'web.yaml'), text);
      assert.equal((await run(['rewrite', '--repo', root, ...set])).code, 0);
      assert.equal(applied, readFileSync(join(root, 'web.yaml'), 'utf8'), 'the diff makes exactly the edit rewrite makes');
      assert.equal(applied, text.replace('nginx:1.25', 'backup.io/m/nginx:1.25'));
    });
  }
});

describe('image-clone rewrite says what went wrong in one line', () => {
  const root = mkdtempSync(join(tmpdir(), 'rewrite-messages-'));
  roots.push(root);
  writeFileSync(
    join(root, 'job.yaml'),
    'kind: Job\nmetadata:\n  generateName: migrate-\nspec:\n  template:\n    spec:\n      containers:\n        - name: m\n          image: nginx:1.25\n',
  );

  it('a repository that is not there', async () => {
    const result = await run(['rewrite', '--repo', join(root, 'missing'), '--set', 'nginx:1.25=b.io/nginx:1']);
    assert.equal(result.code, 2);
    assert.equal(result.stderr, `image-clone: the repository ${JSON.stringify(join(root, 'missing'))} is not a directory\n`);
  });

  it('two new images for one image, and an image that nothing uses beside one that is used', async () => {
    const twice = await run(['rewrite', '--repo', root, '--set', 'nginx:1.25=b.io/nginx:1', '--set', 'docker.io/library/nginx:1.25=c.io/nginx:1', '--dry-run']);
    assert.equal(twice.code, 2);
    assert.match(twice.stderr, /^image-clone: --set gives docker\.io\/library\/nginx:1\.25 two new images: b\.io\/nginx:1 and c\.io\/nginx:1\n$/);
    const unused = await run([
      'rewrite',
      '--repo',
      root,
      '--set',
      'nginx:1.25=b.io/nginx:1',
      '--set',
      'redis:7=b.io/redis:7',
      '--set',
      'nginx:1.25=b.io/nginx:1',
      '--dry-run',
    ]);
    assert.equal(unused.code, 0);
    assert.match(unused.stderr, /^no use of docker\.io\/library\/redis:7 found$/m);
  });

  it('names a file over the 5 MiB limit as not read, and never says "no use found" as if every file had been read', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'rewrite-cli-large-'));
    roots.push(tree);
    const doc = WEB.replace('name: web', 'name: web-N');
    writeFileSync(join(tree, 'generated.yaml'), Array.from({ length: Math.ceil((5.2 * 1024 * 1024) / doc.length) }, () => doc).join('---\n'));
    const result = await run(['rewrite', '--repo', tree, '--set', 'nginx:1.25=b.io/nginx:1.25', '--dry-run', '--no-render-proof']);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      'error: generated.yaml: larger than 5 MiB; not read (file left untouched)\nno use of docker.io/library/nginx:1.25 found in the files read (1 not read, named above)\n',
    );
  });

  it('names a workload by its generateName', async () => {
    const result = await run(['rewrite', '--repo', root, '--set', 'nginx:1.25=b.io/nginx:1', '--dry-run']);
    assert.match(result.stderr, /^would change job\.yaml:9 Job\/migrate-\* container m: nginx:1\.25 -> b\.io\/nginx:1$/m);
  });

  it('proves the change with kustomize first: one that reaches beyond the images is not written (dry run or not), unless --no-render-proof', async () => {
    const tree = mkdtempSync(join(tmpdir(), 'rewrite-cli-proof-'));
    roots.push(tree);
    mkdirSync(join(tree, 'apps'));
    writeFileSync(join(tree, 'apps/web.yaml'), WEB);
    writeFileSync(join(tree, 'apps/config.yaml'), 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: versions\ndata:\n  WEB_IMAGE: unset\n');
    // The image is copied into a ConfigMap: moving it changes more than an image field.
    writeFileSync(
      join(tree, 'apps/kustomization.yaml'),
      'resources:\n  - web.yaml\n  - config.yaml\nreplacements:\n  - source:\n      kind: Deployment\n      name: web\n      fieldPath: spec.template.spec.containers.[name=web].image\n    targets:\n      - select:\n          kind: ConfigMap\n        fieldPaths:\n          - data.WEB_IMAGE\n',
    );
    const set = ['--set', 'nginx:1.25=backup.io/m/nginx:1.25'];
    for (const dry of [['--dry-run'], []]) {
      const refused = await run(['rewrite', '--repo', tree, ...set, ...dry]);
      assert.equal(refused.code, 1, refused.stderr);
      assert.match(
        refused.stderr,
        /^not moved: docker\.io\/library\/nginx:1\.25: not proved by rendering, nothing of it (would be|was) written: kustomize build apps: the change alters ConfigMap\/\/versions beyond its container images/m,
      );
      assert.equal(readFileSync(join(tree, 'apps/web.yaml'), 'utf8'), WEB, 'untouched');
    }
    const forced = await run(['rewrite', '--repo', tree, ...set, '--no-render-proof']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(readFileSync(join(tree, 'apps/web.yaml'), 'utf8'), /image: backup\.io\/m\/nginx:1\.25/);
  });
});
