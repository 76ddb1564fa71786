/**
 * `image-clone rewrite`: the one-shot edit of a repository without a cluster. Replaces every use of
 * image OLD (after normalisation, kustomize's images: transformation taken into account) by NEW in
 * the manifests under DIR[/SUBDIR]. Writes the files (no commit), or with --dry-run prints the
 * unified diff and writes nothing. A file that cannot be parsed is named with its line and left
 * untouched; the others are still edited, and the exit code is 1.
 */
import { cpSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { ConfigError, describeError } from '../errors.ts';
import { formatReference, imageKey, tryParseReference } from '../image/reference.ts';
import type { Replacement } from '../rewriter/edit/planned-edits.ts';
import { repositoryRoot } from '../rewriter/edit/tree.ts';
import { editSession, type SessionResult } from '../rewriter/session.ts';
import { replaceFileAtomically } from '../util/files.ts';

export interface RewriteCommandOptions {
  readonly repo: string;
  readonly path?: string;
  readonly replacements: readonly Replacement[];
  readonly dryRun: boolean;
  /** kustomize, to prove the change by building what it touches before and after; undefined: no proof. */
  readonly kustomize?: string;
  /** helm, to render the repository's charts the change edits, before and after. */
  readonly helm?: string;
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
  const asked = [...byImage.values()];
  const repo = repositoryRoot(options.repo);
  const proving = options.kustomize !== undefined;
  // A dry run is proved on a copy of the tree, removed after; in place, the proofs leave the tree holding what they kept.
  const tree = options.dryRun && proving ? mkdtempSync(join(tmpdir(), 'image-clone-rewrite-')) : repo;
  try {
    if (tree !== repo) cpSync(repo, tree, { recursive: true, filter: (source) => !/[/\\]\.git$/.test(source) });
    const session = await editSession(
      {
        root: tree,
        path: options.path,
        reportEveryBrokenFile: true,
        ...(proving ? { prove: { tools: { kustomize: options.kustomize!, ...(options.helm ? { helm: options.helm } : {}) } } } : {}),
      },
      // Image by image: each can be kept or refused on its own.
      asked.map((r) => ({ id: formatReference(r.from), replacements: [r], moves: [{ from: formatReference(r.from), to: r.to }] })),
    );
    report(options, session, asked, tree, out, err);
    if (!options.dryRun && !proving) for (const [file, { after }] of session.files) replaceFileAtomically(file, after);
    return session.errors.length === 0 && session.refused.size === 0 ? 0 : 1;
  } finally {
    if (tree !== repo) rmSync(tree, { recursive: true, force: true });
  }
}

/** What the session changed, left alone and refused, in lines; with --dry-run the diff on standard output. */
function report(
  options: RewriteCommandOptions,
  session: SessionResult,
  asked: readonly Replacement[],
  tree: string,
  out: (line: string) => void,
  err: (line: string) => void,
): void {
  for (const error of session.errors) err(`error: ${describeError(error)} (file left untouched)`);
  for (const change of session.changes)
    err(`${options.dryRun ? 'would change' : 'changed'} ${change.file}:${change.line} ${change.what}: ${change.before} -> ${change.after}`);
  for (const { note } of session.skipped) err(`not edited: ${note}`);
  // What no render could judge is still written, as the rewriter does, and said.
  for (const what of session.unproved) err(`not proved by rendering, ${options.dryRun ? 'would be' : 'was'} written as planned: ${what}`);
  if (options.dryRun)
    for (const [file, { before, after }] of session.files) {
      const name = relative(tree, file);
      // Only the last line break goes (out() adds one): a blank context line or a CR is part of the patch.
      out(
        createTwoFilesPatch(`a/${name}`, `b/${name}`, before, after, '', '', { context: 3 })
          .replace(/^={67}\n/m, '')
          .replace(/\n$/, ''),
      );
    }
  // One closing line per image not moved, and never one that contradicts a line above it.
  const leftAlone = new Set(session.skipped.map((s) => s.image));
  const moved = new Set(session.changes.flatMap((c) => tryParseReference(c.before) ?? []).map(imageKey));
  for (const [image, { reason }] of session.refused)
    err(`not moved: ${image}: not proved by rendering, nothing of it ${options.dryRun ? 'would be' : 'was'} written: ${reason}`);
  for (const r of asked) {
    const image = formatReference(r.from);
    if (moved.has(imageKey(r.from)) || session.refused.has(image)) continue;
    if (leftAlone.has(image)) err(`not moved: ${image} (each use of it is named above with why it is left alone)`);
    else if (session.errors.length > 0) err(`no use of ${image} found in the files read (${session.errors.length} not read, named above)`);
    else err(`no use of ${image} found`);
  }
}
