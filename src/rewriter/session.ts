/**
 * The edit session: one change of the manifests under an owner path, made the same way by the
 * rewriter (a batch of handoff records) and by `image-clone rewrite` (a set of `--set` images).
 *
 * A batch of units is planned in three layers, each on the text the one before left: the uses of
 * the images (edit/plan.ts); an `images:` entry in the overlay for each image no file under the path
 * names (it renders from a base outside the path); the pull Secrets the backups need. Then it is
 * proved by rendering (proof/manifest-proof.ts). A batch that is not proved is undone: the units
 * the proof names are refused and the rest tried again; a batch wrong as a whole is split in halves,
 * down to the units that cannot be proved alone. Each batch is planned and proved on top of those
 * already kept, so what is kept was proved together.
 */
import { readFileSync } from 'node:fs';
import { formatReference, parseReference, repositoryName, tryParseReference } from '../image/reference.ts';
import { replaceFileAtomically } from '../util/files.ts';
import { planOverlayEntries, planPullSecrets, planRepository } from './edit/plan.ts';
import type { PlannedChange, Replacement, SkippedUse } from './edit/planned-edits.ts';
import type { PullSecretWant } from './edit/pull-secrets.ts';
import { proveManifestChange, type AskedMove, type ChangedFile, type ProvedImage } from './proof/manifest-proof.ts';
import type { RemoteBasePolicy } from './proof/remote-bases.ts';
import type { RenderTools } from './proof/tools.ts';

/** What is kept or refused as one: a handoff record's images, or one image asked for. */
export interface EditUnit {
  /** What a refusal is keyed by (a record's id, an image). */
  readonly id: string;
  /** `asWritten`: the image as the workload names it, for an overlay entry over a remote base (default: `from` in full). */
  readonly replacements: ReadonlyArray<Replacement & { readonly asWritten?: string }>;
  /** A Secret the workload's pod template must list in the same change. */
  readonly pullSecret?: PullSecretWant;
  /** Containers the proof checks: each runs its source before and its backup after (`id` is this unit's). */
  readonly expected?: readonly ProvedImage[];
  /** Moves the proof accepts in any container. */
  readonly moves?: readonly AskedMove[];
}

export interface SessionOptions {
  readonly root: string;
  readonly path: string | undefined;
  /** Also look for each target already in place (a change pushed before a crash): `found` then says so. */
  readonly detectApplied?: boolean;
  /** Name every file that does not parse, not only those that can concern the change (`rewrite`'s contract). */
  readonly reportEveryBrokenFile?: boolean;
  /** Prove each batch by rendering; without it each batch is kept as planned and nothing is written. */
  readonly prove?: { readonly tools: Pick<RenderTools, 'kustomize'> & Partial<Pick<RenderTools, 'helm'>>; readonly remote?: RemoteBasePolicy };
  /** Told of every proof, with the batch it judged (metrics, logs). */
  readonly onProof?: (reason: string | undefined, batch: readonly EditUnit[]) => void;
}

export interface Refusal {
  readonly reason: string;
  /** Refused by the render proof (the reason is the proof's), not before it. */
  readonly byProof: boolean;
}

export interface SessionResult {
  /** Each file the kept change edits: its text before the session and after. With a proof the tree holds `after`; without, still `before`. */
  readonly files: ReadonlyMap<string, ChangedFile>;
  readonly changes: readonly PlannedChange[];
  /** Files left untouched (unreadable, not parsed), each named once. */
  readonly errors: readonly Error[];
  /** Uses of the images not edited, and why (from the plan of every unit together). */
  readonly skipped: readonly SkippedUse[];
  /** Whether the old images, or with `detectApplied` the new ones, were found at all. */
  readonly found: boolean;
  readonly refused: ReadonlyMap<string, Refusal>;
  /** Parts of the kept change no render could judge (written as planned). */
  readonly unproved: readonly string[];
}

export async function editSession(options: SessionOptions, units: readonly EditUnit[]): Promise<SessionResult> {
  const { root, path } = options;
  const refused = new Map<string, Refusal>();
  const wants = (batch: readonly EditUnit[]) => batch.flatMap((u) => (u.pullSecret ? [{ ...u.pullSecret, id: u.id }] : []));
  // A workload whose pod template is not in the tree cannot get its Secret: refused before any edit.
  for (const { want, reason } of planPullSecrets(root, path, wants(units)).refused) refused.set(want.id, { reason, byProof: false });
  const kept = new Map<string, ChangedFile>();
  const textOf = (file: string) => kept.get(file)?.after ?? readFileSync(file, 'utf8');
  const changes: PlannedChange[] = [];
  const errors = new Map<string, Error>();
  let skipped: readonly SkippedUse[] | undefined;
  let found = false;
  const unproved: string[] = [];
  const queue: EditUnit[][] = [units.filter((u) => !refused.has(u.id))];
  while (queue.length > 0) {
    const batch = queue.shift()!;
    if (batch.length === 0) continue;
    const plan = planBatch(options, batch, wants(batch), textOf);
    for (const error of plan.errors) errors.set(error.message, error);
    skipped ??= plan.skipped;
    found ||= plan.found;
    if (plan.files.size === 0) continue;
    if (options.prove) {
      const proof = await proveManifestChange(
        options.prove.tools,
        root,
        path,
        plan.files,
        batch.flatMap((u) => u.expected ?? []),
        batch.flatMap((u) => u.moves ?? []),
        options.prove.remote,
        'before',
      );
      options.onProof?.(proof.reason, batch);
      if (proof.reason) {
        for (const [file, { before }] of plan.files) replaceFileAtomically(file, before);
        const named = proof.records ?? [];
        if (named.length > 0) {
          // Those units' containers do not move as asked; the others are tried again.
          for (const id of named) refused.set(id, { reason: proof.reason, byProof: true });
          queue.unshift(batch.filter((u) => !named.includes(u.id)));
        } else if (batch.length > 1) {
          // The change as a whole reaches beyond the images: each half apart, down to whose edit does.
          const half = Math.ceil(batch.length / 2);
          queue.unshift(batch.slice(0, half), batch.slice(half));
        } else refused.set(batch[0]!.id, { reason: proof.reason, byProof: true });
        continue;
      }
      unproved.push(...proof.unproved);
    }
    for (const [file, { before, after }] of plan.files) kept.set(file, { before: kept.get(file)?.before ?? before, after });
    changes.push(...plan.changes);
  }
  return { files: kept, changes, errors: [...errors.values()], skipped: skipped ?? [], found, refused, unproved };
}

/** One batch's edits, on the text `textOf` gives (what the batches kept before it left). Reads files, writes none. */
function planBatch(
  options: SessionOptions,
  batch: readonly EditUnit[],
  wants: readonly PullSecretWant[],
  textOf: (file: string) => string,
): { files: Map<string, ChangedFile>; changes: PlannedChange[]; errors: Error[]; skipped: readonly SkippedUse[]; found: boolean } {
  const { root, path } = options;
  const replacements = batch.flatMap((u) => u.replacements);
  // One pass over the tree edits the old images and finds the new ones (a change already applied).
  const alreadyThere = options.detectApplied ? replacements.map((r) => ({ from: parseReference(r.to), to: r.to, detectOnly: true })) : [];
  const files = new Map<string, ChangedFile>();
  const add = (more: ReadonlyMap<string, ChangedFile>) => {
    for (const [file, { before, after }] of more) files.set(file, { before: files.get(file)?.before ?? before, after });
  };
  const now = (file: string) => files.get(file)?.after ?? textOf(file);
  const uses = planRepository(root, path, [...replacements, ...alreadyThere], { reportEveryBrokenFile: options.reportEveryBrokenFile ?? false, textOf });
  add(uses.files);
  // An image no use under the path names, by neither its old nor its new name, renders from a base
  // outside it (another directory of the repository, or a remote one): the overlay gets an entry.
  const named = new Set(
    uses.changes
      .flatMap((c) => [c.before, c.after])
      .flatMap((text) => tryParseReference(text) ?? [])
      .map(repositoryName),
  );
  const unmatched = new Set(uses.unmatched ?? []);
  const notNamed = replacements.filter((r) => unmatched.has(r) && !named.has(repositoryName(r.from)) && !named.has(repositoryName(parseReference(r.to))));
  const entries = planOverlayEntries(
    root,
    path,
    notNamed.map((r) => ({ from: r.from, asWritten: r.asWritten ?? formatReference(r.from), to: r.to })),
    now,
  );
  add(entries.files);
  const secrets = planPullSecrets(root, path, wants, now);
  add(secrets.files);
  return {
    files,
    changes: [...uses.changes, ...entries.changes, ...secrets.changes],
    errors: [...uses.errors, ...entries.errors, ...secrets.errors],
    skipped: uses.skipped ?? [],
    found: uses.changes.length > 0 || entries.changes.length > 0,
  };
}
