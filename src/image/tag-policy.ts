/**
 * Which tags are "mutable": re-checked by digest on every pass instead of trusted once backed up.
 * Patterns are exact tag names or globs with `*` (`latest`, `main`, `*-SNAPSHOT`, `nightly-*`).
 */
import { globRegExp } from '../util/regexp.ts';

export const DEFAULT_MUTABLE_TAGS: readonly string[] = ['latest'];

export class TagPolicy {
  readonly #patterns: readonly RegExp[];
  readonly patterns: readonly string[];

  constructor(patterns: readonly string[] = DEFAULT_MUTABLE_TAGS) {
    this.patterns = patterns;
    this.#patterns = patterns.map((p) => globRegExp(p));
  }

  isMutable(tag: string | undefined): boolean {
    return tag !== undefined && this.#patterns.some((pattern) => pattern.test(tag));
  }
}
