/**
 * Rewriter benchmark: a generated GitOps repository of 10,000 manifest files (Deployments over
 * 1,000 distinct images, one kustomization per team directory), then, as the rewriter does it (plan
 * over the tree, write the files, prove the change by building every kustomization it touches with
 * real kustomize before and after, git commit): one image replaced, and 500 images replaced in one
 * commit. Checks that each diff holds only the changed image values.
 *
 * Then `image-clone rewrite` as a user runs it (a process, with the container's node flags, the
 * render proof and real kustomize) on a real-shaped tree (./rewrite/real-tree.ts): a 5 MB file of
 * generated manifests alone, and the whole tree, each with its time and peak RSS against the
 * rewriter's container limit (512 MiB).
 *
 * Usage: npm run bench:rewrite [-- --files N] [--no-proof] [--only generated|real]
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseReference } from '../src/image/reference.ts';
import { planRepository } from '../src/rewriter/edit/plan.ts';
import type { Replacement } from '../src/rewriter/edit/planned-edits.ts';
import { replaceFileAtomically } from '../src/util/files.ts';
import { proveManifestChange } from '../src/rewriter/proof/manifest-proof.ts';
import { renderSlots, tool } from '../src/rewriter/proof/tools.ts';
import { kustomizeRoots } from '../src/rewriter/edit/tree.ts';
import { mapLimited } from '../src/util/limit.ts';
import { BIN_DIR } from '../devenv/cache.ts';
import { containerNodeFlags, measure } from './peers.ts';
import { APPS, appImage, chartImage, EXPORTER, generatedImage, INIT, SIDECAR, writeRealTree } from './rewrite/real-tree.ts';

const { values } = parseArgs({ options: { files: { type: 'string', default: '10000' }, 'no-proof': { type: 'boolean' }, only: { type: 'string' } } });
const KUSTOMIZE = join(BIN_DIR, 'kustomize');
const FILES = Number(values.files);
const IMAGES = 1000;
const say = (line: string) => process.stdout.write(`${line}\n`);
const git = (cwd: string, ...args: string[]) =>
  execFileSync('git', args, {
    cwd,
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, GIT_AUTHOR_NAME: 'b', GIT_AUTHOR_EMAIL: 'b@b', GIT_COMMITTER_NAME: 'b', GIT_COMMITTER_EMAIL: 'b@b' },
  });
const image = (i: number) => `registry.example.com/team-${i % 37}/service-${i}:1.${i % 10}.0`;

const root = mkdtempSync(join(tmpdir(), 'image-clone-rewrite-bench-'));
try {
  if (values.only === undefined || values.only === 'generated') await generatedTree();
  if (values.only === undefined || values.only === 'real') await realTree();
} finally {
  rmSync(root, { recursive: true, force: true });
}

async function generatedTree(): Promise<void> {
  const started = Date.now();
  for (let f = 0; f < FILES; f++) {
    const dir = join(root, 'apps', `team-${f % 100}`);
    if (f < 100) mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, `svc-${f}.yaml`),
      [
        `# service ${f}`,
        'apiVersion: apps/v1',
        'kind: Deployment',
        'metadata:',
        `  name: svc-${f}`,
        `  namespace: team-${f % 100}`,
        '  labels: {tier: backend}',
        'spec:',
        '  replicas: 2',
        '  template:',
        '    spec:',
        '      containers:',
        `        - name: app`,
        `          image: ${image(f % IMAGES)}`,
        '          resources: {requests: {cpu: 100m, memory: 128Mi}}',
        `        - name: sidecar`,
        `          image: "${image((f * 7 + 3) % IMAGES)}"`,
        '',
      ].join('\n'),
    );
  }
  for (let t = 0; t < Math.min(100, FILES); t++) {
    const names = Array.from({ length: Math.ceil((FILES - t) / 100) }, (_, k) => `  - svc-${t + k * 100}.yaml`);
    writeFileSync(join(root, 'apps', `team-${t}`, 'kustomization.yaml'), `resources:\n${names.join('\n')}\n`);
  }
  git(root, 'init', '-q', '--initial-branch=main');
  git(root, 'add', '-A');
  git(root, 'commit', '-qm', 'generated');
  say(
    `# Rewrite benchmark (${new Date().toISOString()}): ${FILES} manifest files, ${IMAGES} distinct images, generated in ${((Date.now() - started) / 1000).toFixed(1)} s`,
  );

  const run = async (label: string, replacements: Replacement[], target: number) => {
    const t0 = performance.now();
    const plan = planRepository(root, undefined, replacements);
    const planned = performance.now();
    let proofLine = 'proof off';
    let floorLine = '';
    let proofSeconds = 0;
    let floorMs = 0;
    if (values['no-proof']) for (const [file, { after }] of plan.files) replaceFileAtomically(file, after);
    else {
      // The floor under any proof by real kustomize: the same builds (each root before and after), alone, as many at once.
      const roots = kustomizeRoots(realpathSync(root), [...plan.files.keys()]).map((r) => r.dir);
      const f0 = performance.now();
      await mapLimited([...roots, ...roots], renderSlots(), (dir) => tool(KUSTOMIZE, ['build', '--load-restrictor', 'LoadRestrictionsNone', dir], 'floor'));
      floorMs = performance.now() - f0;
      const floor = floorMs / 1000;
      const p0 = performance.now();
      // As `image-clone rewrite` proves: from the files as they were; the proof writes the change.
      const proof = await proveManifestChange({ kustomize: KUSTOMIZE }, root, undefined, plan.files, [], [], {}, 'before');
      proofSeconds = (performance.now() - p0) / 1000;
      proofLine = `proof ${proofSeconds.toFixed(2)} s (${proof.reason ? `NOT PROVED: ${proof.reason}` : 'proved'})`;
      floorLine = `; kustomize alone, the proof's ${roots.length * 2} builds ${renderSlots()} at once: ${floor.toFixed(2)} s (proof ${(proofSeconds / floor).toFixed(2)}× that)`;
    }
    const planAndProof = (planned - t0) / 1000 + proofSeconds;
    git(root, 'add', '-A');
    git(root, 'commit', '-qm', label);
    const seconds = (performance.now() - t0 - floorMs) / 1000;
    const stat = git(root, 'diff', '--numstat', 'HEAD~1', 'HEAD').trim().split('\n');
    const changedLines = stat.reduce((n, l) => n + Number(l.split('\t')[0]), 0);
    const onlyImages = git(root, 'diff', '-U0', 'HEAD~1', 'HEAD')
      .split('\n')
      .filter((l) => /^[+-] /.test(l))
      .every((l) => /^[+-] {10}image: /.test(l));
    say(`\n## ${label}`);
    say(
      `- ${plan.changes.length} image values in ${plan.files.size} files; plan ${((planned - t0) / 1000).toFixed(2)} s, ${proofLine}; plan + proof ${planAndProof.toFixed(2)} s (target < ${target} s: ${planAndProof < target ? 'met' : 'missed'}); with the commit ${seconds.toFixed(2)} s${floorLine}`,
    );
    say(`- diff: ${changedLines} lines added in ${stat.length} files; only image values changed: ${onlyImages ? 'yes' : 'NO'}`);
  };
  await run('one image', [{ from: parseReference(image(42)), to: `backup.example.com/m/${image(42)}` }], 3);
  await run(
    '500 images in one commit',
    Array.from({ length: 500 }, (_, i) => ({ from: parseReference(image(500 + i)), to: `backup.example.com/m/${image(500 + i)}` })),
    10,
  );
}

async function realTree(): Promise<void> {
  const tree = join(root, 'real');
  const generated = writeRealTree(tree);
  git(tree, 'init', '-q', '--initial-branch=main');
  say(`\n## A real-shaped tree (${APPS * 3 + 2} kustomizations with components, 5 charts, a ${(generated / 1e6).toFixed(1)} MB generated manifests file)`);
  const cli = join(import.meta.dirname, '../src/cli.ts');
  const rewrite = async (label: string, args: string[], seconds: number, mib: number) => {
    const m = await measure(
      process.execPath,
      [...containerNodeFlags(), cli, 'rewrite', '--repo', tree, '--dry-run', '--kustomize', KUSTOMIZE, ...args],
      process.env,
      {
        allowFailure: true,
        // Every line is counted: the diff on stdout and the change lines on stderr run to megabytes.
        keep: 256 * 1024 * 1024,
      },
    );
    const rss = m.maxRssBytes === undefined ? undefined : m.maxRssBytes / 1024 / 1024;
    const moved = m.stderr.split('\n').filter((l) => l.startsWith('would change')).length;
    const refused = m.stderr.split('\n').filter((l) => /^(not moved|error):/.test(l));
    say(
      `- ${label}: ${moved} values, exit ${m.exitCode}; ${m.seconds.toFixed(2)} s (target < ${seconds} s: ${m.seconds < seconds ? 'met' : 'missed'}), peak RSS ${rss === undefined ? 'not measured' : `${rss.toFixed(0)} MiB (target < ${mib} MiB: ${rss < mib ? 'met' : 'missed'})`}`,
    );
    for (const line of refused) say(`  - ${line.slice(0, 300)}`);
  };
  const set = (from: string) => ['--set', `${from}=backup.example.com/m/${from.replace(/^docker\.io\//, '')}`];
  await rewrite('one image in the generated file (--path generated/monitoring)', ['--path', 'generated/monitoring', ...set(generatedImage(0))], 5, 250);
  await rewrite(
    'seven images across the whole tree (sidecar component, init containers everywhere, base entries overridden, chart values and template literals, the generated file)',
    [SIDECAR, INIT, appImage(0), appImage(7), generatedImage(0), chartImage(2), EXPORTER].flatMap(set),
    30,
    400,
  );
}
