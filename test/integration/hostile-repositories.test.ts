/**
 * A corpus of hostile GitOps repositories and owners (issue #6), through the whole rewriter with
 * real git: malformed YAML, a huge file, symbolic links (file and directory) pointing out of the
 * clone, an owner path with `..`, a kustomization reaching out with `../`, and branch names and
 * repository URLs that look like git options or run programs. Each gives a clear error; nothing
 * outside the clone is read or written; a file that cannot be edited is left byte for byte.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Ledger } from '../../src/handoff/ledger.ts';
import { createLogger } from '../../src/observability/log.ts';
import { Rewriter } from '../../src/rewriter/rewriter.ts';
import { git } from '../support/git.ts';

const DIGEST = `sha256:${'e'.repeat(64)}`;
const TREE = (image: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: tree\n  namespace: shop\nspec:\n  template:\n    spec:\n      containers:\n        - name: main\n          image: ${image}\n`;
const POD = (image: string) => `apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n    - name: main\n      image: ${image}\n`;

describe('hostile repositories', () => {
  let work: string;
  let outside: string;
  let origin: string;
  const outsideFiles = new Map<string, { text: string; mtimeMs: number }>();
  const logLines: string[] = [];

  before(() => {
    work = mkdtempSync(join(tmpdir(), 'hostile-repos-'));
    // Files outside any clone that a hostile repository points at; they must never change.
    outside = join(work, 'outside');
    mkdirSync(join(outside, 'dir'), { recursive: true });
    for (const [name, text] of [
      ['victim.yaml', POD('nginx:1.25')],
      ['dir/deployment.yaml', POD('nginx:1.25')],
      ['kustomization.yaml', 'resources:\n  - dir/deployment.yaml\n'],
    ] as const) {
      writeFileSync(join(outside, name), text);
      outsideFiles.set(join(outside, name), { text, mtimeMs: statSync(join(outside, name)).mtimeMs });
    }
    origin = join(work, 'origin.git');
    git(work, 'init', '-q', '--bare', '--initial-branch=main', origin);
    const seed = join(work, 'seed');
    git(work, 'clone', '-q', origin, seed);
    mkdirSync(join(seed, 'apps/base'), { recursive: true });
    mkdirSync(join(seed, 'kz'), { recursive: true });
    mkdirSync(join(seed, 'dense'), { recursive: true });
    const files: Record<string, string> = {
      'apps/good.yaml': TREE('nginx:1.25'),
      'apps/dots..in..name.yaml': TREE('nginx:1.25'),
      'apps/broken.yaml': 'apiVersion: v1\nkind: Pod\nspec:\n  containers:\n    - name: main\n     image: [nginx:1.25\n',
      'apps/huge.yaml': `${POD('nginx:1.25')}# ${'x'.repeat(6 * 1024 * 1024)}\n`,
      // Under 5 MiB, but 400,000 flow items: parsed, it would cost the rewriter ~400 MiB.
      'dense/dense.yaml': `${POD('nginx:1.25')}---\nitems: [${'x,'.repeat(400_000)}nginx:1.25]\n`,
      // A kustomization whose build would read files outside the clone: never built, its change refused.
      'kz/web.yaml': POD('nginx:1.25'),
      'kz/kustomization.yaml': `resources:\n  - web.yaml\n  - ../../outside\n  - ${outside}\n`,
    };
    for (const [path, text] of Object.entries(files)) writeFileSync(join(seed, path), text);
    // Committed symbolic links: a file and a directory that point out of the clone.
    symlinkSync(join(outside, 'victim.yaml'), join(seed, 'apps/escape.yaml'));
    symlinkSync(join(outside, 'dir'), join(seed, 'apps/escape-dir'));
    symlinkSync('../../../outside/victim.yaml', join(seed, 'apps/relative-escape.yaml'));
    git(seed, 'add', '-A');
    git(seed, 'commit', '-qm', 'a hostile repository');
    git(seed, 'push', '-q', 'origin', 'HEAD:main');
  });
  after(() => rmSync(work, { recursive: true, force: true }));

  const write = (ledger: Ledger, name: string, source: { repoURL: string; path: string; revision: string }) =>
    ledger.write({
      workload: { kind: 'Deployment', namespace: 'shop', name, uid: `uid-${name}` },
      images: [
        {
          container: 'main',
          init: false,
          source: 'nginx:1.25',
          backup: 'backup.example/m/docker.io/library/nginx:1.25',
          digest: DIGEST,
          platforms: [],
          sizeBytes: 1,
        },
      ],
      owner: { tool: 'argocd', kind: 'Application', namespace: 'argocd', name, sources: [source] },
    });

  it('edits what it can, reports each hostile file clearly, and touches nothing outside the clone', async () => {
    const ledger = new Ledger(join(work, 'handoff'));
    const pwned = join(work, 'pwned');
    const records = {
      // The Deployment the repository's ordinary files declare (proved by rendering, as every change is).
      tree: await write(ledger, 'tree', { repoURL: `file://${origin}`, path: 'apps', revision: 'main' }),
      readsOutside: await write(ledger, 'reads-outside', { repoURL: `file://${origin}`, path: 'kz', revision: 'main' }),
      dense: await write(ledger, 'dense', { repoURL: `file://${origin}`, path: 'dense', revision: 'main' }),
      // In the same repository and branch as `tree`: refused alone, without holding the batch back.
      escapingPath: await write(ledger, 'escaping-path', { repoURL: `file://${origin}`, path: '../outside', revision: 'main' }),
      linkedPath: await write(ledger, 'linked-path', { repoURL: `file://${origin}`, path: 'apps/escape-dir', revision: 'main' }),
      missingPath: await write(ledger, 'missing-path', { repoURL: `file://${origin}`, path: 'apps/nowhere', revision: 'main' }),
      optionBranch: await write(ledger, 'option-branch', { repoURL: `file://${origin}`, path: 'apps', revision: `--upload-pack=touch ${pwned}` }),
      dashBranch: await write(ledger, 'dash-branch', { repoURL: `file://${origin}`, path: 'apps', revision: '-b' }),
      optionUrl: await write(ledger, 'option-url', { repoURL: `--upload-pack=touch ${pwned}`, path: 'apps', revision: 'main' }),
      extUrl: await write(ledger, 'ext-url', { repoURL: `ext::sh -c touch% ${pwned}`, path: 'apps', revision: 'main' }),
      // A remote-helper transport git would otherwise run (fd:: waited on a file descriptor for two minutes).
      fdUrl: await write(ledger, 'fd-url', { repoURL: 'fd::3', path: 'apps', revision: 'main' }),
    };
    const rewriter = new Rewriter({
      handoffDir: ledger.dir,
      cacheDir: join(work, 'cache'),
      mode: 'commit',
      author: { name: 'image-clone', email: 'bot@example.com' },
      logger: createLogger({ write: (line) => void logLines.push(line) }),
    });
    const outcomes = await rewriter.processPending();
    const byRecord = (id: string) => outcomes.find((o) => o.records.includes(id));

    // The ordinary files were edited and pushed, in one commit on main.
    const tree = byRecord(records.tree.id)!;
    assert.equal(tree.result, 'pushed', JSON.stringify(tree));
    for (const file of ['apps/good.yaml', 'apps/dots..in..name.yaml'])
      assert.match(git(origin, 'show', `main:${file}`), new RegExp(`image: backup\\.example/m/docker\\.io/library/nginx:1\\.25@${DIGEST}`));
    // The broken and the huge file are byte for byte what they were, each reported with why.
    const changed = git(origin, 'diff', '--name-only', 'main~1', 'main').split('\n');
    assert.deepEqual(changed.sort(), ['apps/dots..in..name.yaml', 'apps/good.yaml']);
    const logs = logLines.join('');
    assert.match(logs, /manifest left untouched.*apps\/broken\.yaml:\d+: /);
    assert.match(logs, /manifest left untouched.*apps\/huge\.yaml: larger than 5 MiB; not read/);
    // A file whose parse would exhaust the rewriter is not parsed (and not changed: see the files above).
    assert.match(logs, /manifest left untouched.*dense\/dense\.yaml: not parsed: the files to plan hold more than 300000 YAML lines and flow items/);

    // A kustomization that would read outside the clone is not built, and its change is refused, naming the field and not the files.
    const readsOutside = byRecord(records.readsOutside.id)!;
    assert.equal(readsOutside.result, 'failed');
    assert.match(
      readsOutside.error!,
      /^not proved by rendering: a build it touches would read from outside the repository, so it is not built: kz\/kustomization\.yaml: resources names a file outside the repository$/,
    );
    assert.equal(git(origin, 'show', 'main:kz/web.yaml'), POD('nginx:1.25').trimEnd());

    // Paths and refs that lead out of the repository or look like options are refused by name.
    // Each record refused with its own outcome and its own reason, never another's.
    for (const [key, reason] of [
      ['escapingPath', /^the path "\.\.\/outside" leads outside the repository/],
      ['linkedPath', /^the path "apps\/escape-dir" leads outside the repository through a symbolic link/],
      ['missingPath', /^the path "apps\/nowhere" does not exist in the repository/],
    ] as const) {
      const refused = byRecord(records[key].id)!;
      assert.equal(refused.result, 'failed');
      assert.deepEqual(refused.records, [records[key].id]);
      assert.match(refused.error!, reason);
      assert.doesNotMatch(refused.error!, /;/, "no other record's reason joined to it");
    }
    for (const key of ['optionBranch', 'dashBranch'] as const) {
      assert.equal(byRecord(records[key].id)?.result, 'failed');
      assert.match(byRecord(records[key].id)!.error!, /unsafe branch name/);
    }
    assert.match(byRecord(records.optionUrl.id)!.error!, /unsafe repository URL/);
    assert.equal(byRecord(records.extUrl.id)?.result, 'failed');
    for (const key of ['extUrl', 'fdUrl'] as const) assert.match(byRecord(records[key].id)!.error!, /unsafe repository URL .*a git remote-helper transport/);
    assert.ok(existsSync(pwned) === false, 'no option or transport ran a program');

    // Nothing outside the clone changed; records of refused changes stay pending, nothing is lost.
    for (const [file, before] of outsideFiles) {
      assert.equal(readFileSync(file, 'utf8'), before.text, `${file} untouched`);
      assert.equal(statSync(file).mtimeMs, before.mtimeMs, `${file} not rewritten`);
    }
    assert.deepEqual(
      ledger.pendingIds().sort(),
      [
        records.readsOutside.id,
        records.fdUrl.id,
        records.escapingPath.id,
        records.linkedPath.id,
        records.missingPath.id,
        records.optionBranch.id,
        records.dashBranch.id,
        records.optionUrl.id,
        records.extUrl.id,
      ].sort(),
    );
  });
});
