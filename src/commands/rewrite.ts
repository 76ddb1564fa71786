/**
 * `image-clone rewrite`: the one-shot edit of a repository without a cluster. Replaces every use of
 * image OLD (after normalisation, kustomize's images: transformation taken into account) by NEW in
 * the manifests under DIR[/SUBDIR]. Writes the files (no commit), or with --dry-run prints the
 * unified diff and writes nothing. A file that cannot be parsed is named with its line and left
 * untouched; the others are still edited, and the exit code is 1.
 */
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { ConfigError, describeError } from '../errors.ts';
import { formatReference } from '../image/reference.ts';
import { planOverlayEntries, planRepository, type Replacement } from '../rewriter/edit/plan.ts';
import { proveManifestChange } from '../rewriter/render/manifest-proof.ts';
import { replaceFileAtomically } from '../util/files.ts';

export interface RewriteCommandOptions {
  readonly repo: string;
  readonly path?: string;
  readonly replacements: readonly Replacement[];
  readonly dryRun: boolean;
  /** kustomize, to prove the change by building what it touches before and after; undefined: no proof. */
  readonly kustomize?: string;
}

export async function rewriteCommand(options: RewriteCommandOptions, out: (line: string) => void, err: (line: string) => void): Promise<number> {
  // The same image twice: with one target it is said once; with two, which one is meant?
  const byImage = new Map<string, Replacement>();
  for (const r of options.replacements) {
    const key = formatReference(r.from);
    const earlier = byImage.get(key);
    if (earlier && earlier.to !== r.to) throw new ConfigError(`--set gives ${key} two new images: ${earlier.to} and ${r.to}`);
    byImage.set(key, r);
  }
  const direct = planRepository(options.repo, options.path, [...byImage.values()], { reportEveryBrokenFile: true });
  // Images the path renders from a base outside it: an images: entry in the path's kustomization.
  const unmatched = direct.unmatched ?? [];
  const overlay = planOverlayEntries(
    options.repo,
    options.path,
    unmatched.map((r) => ({ from: r.from, asWritten: formatReference(r.from), to: r.to })),
    (file) => direct.files.get(file)?.after ?? readFileSync(file, 'utf8'),
  );
  const files = new Map(direct.files);
  for (const [file, { after }] of overlay.files) files.set(file, { before: direct.files.get(file)?.before ?? readFileSync(file, 'utf8'), after });
  const entered = new Set(overlay.changes.map((c) => c.after));
  const plan = {
    files,
    changes: [...direct.changes, ...overlay.changes],
    errors: [...direct.errors, ...overlay.errors],
    unmatched: unmatched.filter((r) => !entered.has(r.to)),
  };
  for (const error of plan.errors) err(`error: ${describeError(error)} (file left untouched)`);
  if (options.kustomize !== undefined && plan.files.size > 0) {
    const why = await proveRewrite(options, plan.files);
    if (why) {
      err(`not proved by rendering, nothing ${options.dryRun ? 'would be' : 'was'} written: ${why}`);
      return 1;
    }
  }
  for (const change of plan.changes)
    err(`${options.dryRun ? 'would change' : 'changed'} ${change.file}:${change.line} ${change.what}: ${change.before} -> ${change.after}`);
  for (const note of direct.skipped ?? []) err(`not edited: ${note}`);
  for (const [file, { before, after }] of plan.files) {
    const name = relative(options.repo, file);
    // Only the last line break goes (out() adds one): a blank context line or a CR is part of the patch.
    if (options.dryRun)
      out(
        createTwoFilesPatch(`a/${name}`, `b/${name}`, before, after, '', '', { context: 3 })
          .replace(/^={67}\n/m, '')
          .replace(/\n$/, ''),
      );
    else replaceFileAtomically(file, after);
  }
  if (plan.changes.length === 0) err('no use of the given image(s) found');
  else for (const r of plan.unmatched ?? []) err(`no use of ${formatReference(r.from)} found`);
  return plan.errors.length === 0 ? 0 : 1;
}

/**
 * The proof of the whole change (render/manifest-proof.ts), with each --set as a move any container
 * may make. In place, undone if not proved; for --dry-run on a copy of the tree, which is removed.
 */
async function proveRewrite(options: RewriteCommandOptions, files: ReadonlyMap<string, { before: string; after: string }>): Promise<string | undefined> {
  const moves = options.replacements.map((r) => ({ from: formatReference(r.from), to: r.to }));
  const tools = { kustomize: options.kustomize! };
  const repo = realpathSync(options.repo);
  if (!options.dryRun) {
    for (const [file, { after }] of files) replaceFileAtomically(file, after);
    const proof = await proveManifestChange(tools, repo, options.path, files, [], moves);
    if (proof.reason) for (const [file, { before }] of files) replaceFileAtomically(file, before);
    return proof.reason;
  }
  const copy = mkdtempSync(join(tmpdir(), 'image-clone-rewrite-'));
  try {
    cpSync(repo, copy, { recursive: true, filter: (source) => !/[/\\]\.git$/.test(source) });
    const moved = new Map([...files].map(([file, texts]) => [join(copy, relative(repo, file)), texts]));
    for (const [file, { after }] of moved) writeFileSync(file, after);
    return (await proveManifestChange(tools, copy, options.path, moved, [], moves)).reason;
  } finally {
    rmSync(copy, { recursive: true, force: true });
  }
}
