/**
 * What the planners plan, as values they return (never a caller's map or list to fill): the
 * replacements asked for, the text edits per file, the change lines a reader is shown, the files
 * that could not be edited and the uses left alone. Each planner builds its own `PlannedEdits`; the
 * repository's plan merges them.
 */
import { relative } from 'node:path';
import type { ImageReference } from '../../image/reference.ts';
import type { Source } from './kustomize.ts';
import { applyTextEdits, YamlSyntaxError, type TextEdit } from './yaml-scalars.ts';

export interface Replacement {
  /** The image to replace, normalised. */
  readonly from: ImageReference;
  /** The image to write, as the user wrote it. */
  readonly to: string;
  /** Report where `from` is used, edit nothing (to see whether a change is already applied). */
  readonly detectOnly?: boolean;
}

export interface PlannedChange {
  readonly file: string;
  readonly line: number;
  readonly what: string;
  readonly before: string;
  readonly after: string;
}

export interface SkippedUse {
  /** The requested image it uses, as `formatReference` spells it. */
  readonly image: string;
  readonly note: string;
}

export interface RepositoryPlan {
  /** Absolute path → its new text, for files that change. */
  readonly files: Map<string, { before: string; after: string }>;
  readonly changes: readonly PlannedChange[];
  /** Files that could not be read or parsed (left untouched). */
  readonly errors: readonly Error[];
  /** Replacements whose image no file uses (planRepository only). */
  readonly unmatched?: readonly Replacement[];
  /** Uses of a requested image that are not edited, and why (a kind or a file format we do not edit, a build that runs another image). */
  readonly skipped?: readonly SkippedUse[];
}

export class PlannedEdits {
  readonly #edits = new Map<string, TextEdit[]>();
  readonly #reported = new Set<unknown>();
  readonly changes: PlannedChange[] = [];
  readonly errors: Error[] = [];
  readonly skipped: SkippedUse[] = [];

  /** Edits of a file's text. */
  edit(file: string, list: readonly TextEdit[]): this {
    if (list.length > 0) this.#edits.set(file, [...(this.#edits.get(file) ?? []), ...list]);
    return this;
  }

  /** A change line, said once for the text `key` stands for (an entry, a literal, a values layer). */
  report(key: unknown, change: PlannedChange): this {
    if (this.#reported.has(key)) return this;
    this.#reported.add(key);
    this.changes.push(change);
    return this;
  }

  /** Edits of a source's text, as edits of its file; a patch written as a quoted string is named as an error instead. */
  editSource(rootReal: string, source: Source, line: number, what: string, list: readonly TextEdit[]): this {
    if (source.toFile) return this.edit(source.file, list.map(source.toFile));
    this.errors.push(
      new YamlSyntaxError(
        relative(rootReal, source.file),
        line,
        `${what}: the image is in a patch written as a quoted or folded string, which cannot be edited in place; write the patch as a literal block (patch: |)`,
      ),
    );
    return this;
  }

  /** Another planner's edits, lines, errors and skipped uses, added to these. */
  merge(other: PlannedEdits): this {
    for (const [file, list] of other.#edits) this.edit(file, list);
    this.changes.push(...other.changes);
    this.errors.push(...other.errors);
    this.skipped.push(...other.skipped);
    return this;
  }

  /** Each file whose text the edits change: its text before (as `textOf` gives it) and after. */
  files(textOf: (file: string) => string): Map<string, { before: string; after: string }> {
    const files = new Map<string, { before: string; after: string }>();
    for (const [file, list] of this.#edits) {
      const before = textOf(file);
      const after = applyTextEdits(before, list);
      if (after !== before) files.set(file, { before, after });
    }
    return files;
  }
}
