/**
 * `image-clone rewrite`: the one-shot edit of a repository without a cluster. Replaces every use of
 * image OLD (after normalisation, kustomize's images: transformation taken into account) by NEW in
 * the manifests under DIR[/SUBDIR]. Writes the files (no commit), or with --dry-run prints the
 * unified diff and writes nothing. A file that cannot be parsed is named with its line and left
 * untouched; the others are still edited, and the exit code is 1.
 */
import { cpSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { createTwoFilesPatch } from 'diff';
import { ConfigError, describeError } from '../errors.ts';
import { formatReference, imageKey, tryParseReference } from '../image/reference.ts';
import { planOverlayEntries, planRepository, type PlannedChange, type Replacement, type SkippedUse } from '../rewriter/edit/plan.ts';
import { proveManifestChange } from '../rewriter/render/manifest-proof.ts';
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
  const everything = planChange(options, asked);
  for (const error of everything.errors) err(`error: ${describeError(error)} (file left untouched)`);
  const { plan, refused, unproved } =
    options.kustomize !== undefined && everything.files.size > 0
      ? await proveByImage(options, asked, everything)
      : { plan: everything, refused: new Map<string, string>(), unproved: [] };
  for (const change of plan.changes)
    err(`${options.dryRun ? 'would change' : 'changed'} ${change.file}:${change.line} ${change.what}: ${change.before} -> ${change.after}`);
  for (const { note } of everything.skipped) err(`not edited: ${note}`);
  // What no render could judge is still written, as the rewriter does, and said.
  for (const what of unproved) err(`not proved by rendering, ${options.dryRun ? 'would be' : 'was'} written as planned: ${what}`);
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
  // One closing line per image not moved, and never one that contradicts a line above it.
  const leftAlone = new Set(everything.skipped.map((s) => s.image));
  const moved = new Set(plan.changes.flatMap((c) => tryParseReference(c.before) ?? []).map(imageKey));
  for (const [image, why] of refused) err(`not moved: ${image}: not proved by rendering, nothing of it ${options.dryRun ? 'would be' : 'was'} written: ${why}`);
  for (const r of asked) {
    const image = formatReference(r.from);
    if (moved.has(imageKey(r.from)) || refused.has(image)) continue;
    if (leftAlone.has(image)) err(`not moved: ${image} (each use of it is named above with why it is left alone)`);
    else if (everything.errors.length > 0) err(`no use of ${image} found in the files read (${everything.errors.length} not read, named above)`);
    else err(`no use of ${image} found`);
  }
  return everything.errors.length === 0 && refused.size === 0 ? 0 : 1;
}

interface ChangePlan {
  readonly files: ReadonlyMap<string, { before: string; after: string }>;
  readonly changes: readonly PlannedChange[];
  readonly errors: readonly Error[];
  readonly skipped: readonly SkippedUse[];
}

/** The edits of `replacements`: the uses the tree shows, then an images: entry for what the path renders from a base outside it. */
function planChange(options: RewriteCommandOptions, replacements: readonly Replacement[]): ChangePlan {
  const direct = planRepository(options.repo, options.path, replacements, { reportEveryBrokenFile: true });
  const unmatched = direct.unmatched ?? [];
  const overlay = planOverlayEntries(
    options.repo,
    options.path,
    unmatched.map((r) => ({ from: r.from, asWritten: formatReference(r.from), to: r.to })),
    (file) => direct.files.get(file)?.after ?? readFileSync(file, 'utf8'),
  );
  const files = new Map(direct.files);
  for (const [file, { after }] of overlay.files) files.set(file, { before: direct.files.get(file)?.before ?? readFileSync(file, 'utf8'), after });
  return {
    files,
    changes: [...direct.changes, ...overlay.changes],
    errors: [...direct.errors, ...overlay.errors],
    skipped: direct.skipped ?? [],
  };
}

/**
 * The proof (render/manifest-proof.ts), image by image where it has to be: the whole change first
 * (one proof when all is well); if it is refused, each half apart, down to the images that cannot be
 * proved alone, which are refused with their reason while the others still move; then what is left,
 * together again (two images may be proved apart and not together). In place, every proof undone;
 * for --dry-run on one copy of the tree, removed after.
 */
async function proveByImage(
  options: RewriteCommandOptions,
  asked: readonly Replacement[],
  everything: ChangePlan,
): Promise<{ plan: ChangePlan; refused: Map<string, string>; unproved: readonly string[] }> {
  const tools = { kustomize: options.kustomize!, ...(options.helm ? { helm: options.helm } : {}) };
  const repo = realpathSync(options.repo);
  const tree = options.dryRun ? mkdtempSync(join(tmpdir(), 'image-clone-rewrite-')) : repo;
  try {
    if (options.dryRun) cpSync(repo, tree, { recursive: true, filter: (source) => !/[/\\]\.git$/.test(source) });
    const plans = new Map<readonly Replacement[], ChangePlan>([[asked, everything]]);
    // What the proof of each set could not judge; the accepted set's is said.
    const unprovedOf = new Map<readonly Replacement[], readonly string[]>();
    const prove = async (set: readonly Replacement[]): Promise<string | undefined> => {
      const plan = plans.get(set) ?? planChange(options, set);
      plans.set(set, plan);
      if (plan.files.size === 0) return undefined;
      const moved = new Map([...plan.files].map(([file, texts]) => [join(tree, relative(repo, realpathSync(file))), texts]));
      try {
        const moves = set.map((r) => ({ from: formatReference(r.from), to: r.to }));
        const proof = await proveManifestChange(tools, tree, options.path, moved, [], moves, {}, 'before');
        unprovedOf.set(set, proof.unproved);
        return proof.reason;
      } finally {
        for (const [file, { before }] of moved) replaceFileAtomically(file, before);
      }
    };
    const refused = new Map<string, string>();
    const settle = async (set: readonly Replacement[]): Promise<readonly Replacement[]> => {
      const why = await prove(set);
      if (why === undefined) return set;
      if (set.length === 1) {
        refused.set(formatReference(set[0]!.from), why);
        return [];
      }
      const half = Math.ceil(set.length / 2);
      return [...(await settle(set.slice(0, half))), ...(await settle(set.slice(half)))];
    };
    let accepted: readonly Replacement[] = await settle(asked);
    if (refused.size > 0 && accepted.length > 1 && (await prove(accepted)) !== undefined) {
      // Proved apart, not together: added one at a time, each kept only if the whole still proves.
      const kept: Replacement[] = [];
      for (const r of accepted) {
        const candidate = [...kept, r];
        const why = await prove(candidate);
        if (why === undefined) {
          kept.push(r);
          unprovedOf.set(kept, unprovedOf.get(candidate)!);
        } else refused.set(formatReference(r.from), why);
      }
      accepted = kept;
    }
    if (accepted.length > 0 && !unprovedOf.has(accepted)) await prove(accepted);
    const plan = accepted.length === asked.length ? everything : planChange(options, accepted);
    return { plan, refused, unproved: unprovedOf.get(accepted) ?? [] };
  } finally {
    if (options.dryRun) rmSync(tree, { recursive: true, force: true });
  }
}
