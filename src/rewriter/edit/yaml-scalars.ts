/**
 * Minimal-diff YAML edits: find scalars in each document of a multi-document file and replace only
 * their bytes, keeping their quoting style. Comments, indentation, key order, blank
 * lines and every other byte stay as they were, because the edit is a splice of the original text
 * at the scalar's source range (from the `yaml` package's CST), never a re-serialisation.
 */
import { Composer, isMap, isScalar, isSeq, Parser, parseAllDocuments, Scalar, type Document, type Node, type YAMLError, type YAMLMap } from 'yaml';
import { ImageCloneError } from '../../errors.ts';

/** A file that is not valid YAML, or cannot be edited safely: names the file and the line. */
export class YamlSyntaxError extends ImageCloneError {
  override name = 'YamlSyntaxError';
  readonly file: string;
  readonly line: number;
  constructor(file: string, line: number, reason: string) {
    // Line 0: the file as a whole (too large, over a budget), not a place in it.
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`);
    this.file = file;
    this.line = line;
  }
}

export interface ParsedYaml {
  readonly text: string;
  /** The documents parsed, their ranges indexing `text`. */
  readonly documents: readonly Document.Parsed[];
  /** Some documents were not parsed (none could concern the plan): the file holds objects not read. */
  readonly partial?: boolean;
}

/** A document's place in a multi-document text: from its `---` marker (or the start) to the next one. */
export interface DocumentSpan {
  readonly start: number;
  readonly end: number;
}

/**
 * The documents of a text, found by their `---` markers at the start of a line, without parsing:
 * YAML forbids such a line inside a document's content (even a top-level block scalar ends there).
 * A piece that holds more than one document (a bare document after a `...` end marker) is parsed
 * with the whole file instead.
 */
export function documentSpans(text: string): DocumentSpan[] {
  const starts = [0];
  // Lines as YAML counts them (\n, \r): JavaScript's multiline ^ would also start one after U+2028.
  for (const match of text.matchAll(/(?<![^\n\r])---(?=[ \t\r\n]|$)/g)) if (match.index > 0) starts.push(match.index);
  return starts.map((start, i) => ({ start, end: starts[i + 1] ?? text.length }));
}

/**
 * The YAML parsed at once (one plan's files, one render), in lines and flow items (`,` `[` `{`), which is what a parse holds
 * in memory: about 0.7 to 1 KiB each (measured: Argo CD's install.yaml, 1.9 MB, 35,000 of them,
 * +56 MiB; 5 MB of one flow sequence, 600,000, +573 MiB). 300,000 stay well inside the
 * rewriter's 512 MiB; a plan over 10,000 small manifest files parses about 180,000.
 */
export const MAX_PARSED_NODES = 300_000;

/** Lines and flow items in `text`: the parse's size, counted without parsing. */
export function yamlNodes(text: string): number {
  let count = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10 || c === 44 || c === 91 || c === 123) count++;
  }
  return count;
}

/**
 * Parses the documents of a file; throws YamlSyntaxError with the file and 1-based line. With
 * `spans`, only those documents are kept (their ranges still index the whole text), and with
 * `checkOthers` every other one is parsed and dropped at once, so that a broken one is still named:
 * a 5 MB file of generated manifests holds a few documents that use an image, and keeping all its
 * syntax trees cost 300 MiB.
 */
export function parseYamlFile(file: string, text: string, spans?: readonly DocumentSpan[], checkOthers = false, maxNodes = MAX_PARSED_NODES): ParsedYaml {
  const fail = (error: YAMLError) => {
    const line = error.linePos?.[0]?.line ?? lineOf(text, error.pos[0]);
    // The message without yaml's own ` at line N, column M:` (the line is ours to give, the same whether parsed whole or in pieces).
    return new YamlSyntaxError(file, line, (error.message.split('\n')[0] ?? 'invalid YAML').replace(/ at line \d+, column \d+:?$/, ''));
  };
  if (spans === undefined) {
    const documents = parseAllDocuments(text, { uniqueKeys: false });
    const list = Array.isArray(documents) ? documents : [documents];
    for (const doc of list) if (doc.errors[0]) throw fail(doc.errors[0]);
    return { text, documents: list as Document.Parsed[] };
  }
  const kept = new Set(spans.map((s) => s.start));
  const documents: Document.Parsed[] = [];
  const all = documentSpans(text);
  for (const span of all) {
    if (!kept.has(span.start) && !checkOthers) continue;
    // A document only checked is parsed and dropped: one at a time, each within the bound.
    if (!kept.has(span.start) && yamlNodes(text.slice(span.start, span.end)) > MAX_PARSED_NODES)
      throw new YamlSyntaxError(file, lineOf(text, span.start), `a document holds more than ${MAX_PARSED_NODES} YAML lines and flow items; not parsed`);
    const parser = new Parser();
    // Offsets of the whole text, so that every range indexes it as a whole-file parse's would.
    parser.offset = span.start;
    const piece = [...new Composer({ uniqueKeys: false, logLevel: 'error' }).compose(parser.parse(text.slice(span.start, span.end)))];
    // A bare document after `...` shares its piece: the whole file, parsed as one.
    if (piece.length > 1) {
      if (yamlNodes(text) > maxNodes)
        throw new YamlSyntaxError(file, 0, `not parsed: it holds more YAML lines and flow items than the ${maxNodes} left to parse`);
      return parseYamlFile(file, text);
    }
    for (const doc of piece) {
      if (doc.errors[0]) throw fail(doc.errors[0]);
      if (kept.has(span.start)) documents.push(doc as Document.Parsed);
    }
  }
  return { text, documents, partial: kept.size < all.length };
}

/** The column of `offset` on its line. */
export function columnOf(text: string, offset: number): number {
  return offset - (text.lastIndexOf('\n', offset - 1) + 1);
}

export function lineOf(text: string, offset: number): number {
  // Binary search in the text's line starts, computed once per text: a file of thousands of
  // documents asks for thousands of lines, and a scan from the start for each was quadratic.
  const starts = lineStarts(text);
  let low = 0;
  let high = starts.length - 1;
  while (low < high) {
    const mid = (low + high + 1) >> 1;
    if (starts[mid]! <= offset) low = mid;
    else high = mid - 1;
  }
  return low + 1;
}

/** The offsets at which the lines of the last few texts start (the planner works on a few files at a time). */
const LINE_STARTS = new Map<string, Int32Array>();

function lineStarts(text: string): Int32Array {
  const known = LINE_STARTS.get(text);
  if (known) return known;
  const found = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) found.push(i + 1);
  const starts = Int32Array.from(found);
  if (LINE_STARTS.size >= 8) LINE_STARTS.delete(LINE_STARTS.keys().next().value!);
  LINE_STARTS.set(text, starts);
  return starts;
}

/** A scalar found in a document, with where it sits. */
export interface ScalarSite {
  readonly node: Scalar;
  readonly value: string;
  /** Byte range of the scalar in the file (quotes included). */
  readonly start: number;
  readonly end: number;
  readonly line: number;
  /** The source text of that range. */
  readonly raw: string;
}

/** One edit of a file's text: a replaced range (empty for an insertion). */
export interface TextEdit {
  readonly start: number;
  readonly end: number;
  readonly text: string;
}

/**
 * Where a scalar sits, and its value as text: a number or boolean (`tag: 7`) is read as written in
 * the source, the way kustomize and Helm read tags.
 */
export function scalarSite(text: string, node: Node | null | undefined): ScalarSite | undefined {
  const value = scalarText(node);
  if (value === undefined || !isScalar(node) || !node.range) return undefined;
  return { node, value, start: node.range[0], end: node.range[1], line: lineOf(text, node.range[0]), raw: text.slice(node.range[0], node.range[1]) };
}

/** A scalar's value as text; a number or boolean as written in the source. */
export function scalarText(node: Node | null | undefined): string | undefined {
  if (!isScalar(node) || node.value === null || typeof node.value === 'object') return undefined;
  return typeof node.value === 'string' ? node.value : (node.source ?? String(node.value));
}

/** The value at a key of a map node, if the node is a map. */
export function get(node: unknown, key: string): Node | undefined {
  return isMap(node) ? ((node as YAMLMap).get(key, true) as Node | undefined) : undefined;
}

/** The items of a sequence node (empty for anything else). */
export function items(node: unknown): Node[] {
  return isSeq(node) ? (node.items as Node[]) : [];
}

/** The string value of a scalar at `key`, if there is one. */
export function stringAt(node: unknown, key: string): string | undefined {
  const value = get(node, key);
  return isScalar(value) && typeof value.value === 'string' ? value.value : undefined;
}

/**
 * Applies edits to the original text, last first, so earlier offsets stay valid; insertions at the
 * same offset keep their listed order.
 */
export function applyTextEdits(text: string, edits: readonly TextEdit[]): string {
  // In one pass from the start (re-slicing the whole text per edit was quadratic in a large file);
  // edits at the same place keep their order, as when they were applied from the end backwards.
  const ordered = edits.map((edit, index) => ({ edit, index })).sort((a, b) => a.edit.start - b.edit.start || a.index - b.index);
  const parts: string[] = [];
  let at = 0;
  for (const { edit } of ordered) {
    parts.push(text.slice(at, edit.start), edit.text);
    at = Math.max(at, edit.end);
  }
  parts.push(text.slice(at));
  return parts.join('');
}

const PLAIN_SAFE = /^[A-Za-z0-9_./@:+-]+$/;
const YAML11_WORDS = /^(y|n|yes|no|true|false|on|off|null|~)$/i;

/**
 * `value` written as a YAML scalar in the style of `site` (plain, single- or double-quoted; plain
 * when there is no site). A value that would not read back as the same string when plain (a
 * number, or text with YAML indicators) is double-quoted.
 */
export function formatScalar(value: string, site?: ScalarSite): string {
  if (site && (site.node.type === Scalar.BLOCK_FOLDED || site.node.type === Scalar.BLOCK_LITERAL)) {
    // `>-` or `|-` then the value on lines of its own: keep the header, the content's indentation
    // and what follows the content (its line break, the next key's indentation) byte for byte.
    const headerEnd = site.raw.search(/\r?\n/);
    const content = site.raw.slice(headerEnd).replace(/^\r?\n/, '');
    const lineBreak = site.raw.slice(headerEnd, site.raw.length - content.length);
    const indent = /^ */.exec(content)![0];
    const after = content.slice(content.trimEnd().length);
    if (/[\r\n]/.test(value)) throw new Error(`cannot write a multi-line value into a block scalar: ${JSON.stringify(value)}`);
    return `${site.raw.slice(0, headerEnd)}${lineBreak}${indent}${value}${after}`;
  }
  if (site?.node.type === Scalar.QUOTE_SINGLE) return `'${value.replace(/'/g, "''")}'`;
  if (site?.node.type === Scalar.QUOTE_DOUBLE) return JSON.stringify(value);
  // A string that YAML 1.1 would read as a number, a boolean or null is quoted: it must stay a string.
  return PLAIN_SAFE.test(value) && !/^[0-9.+-]+$/.test(value) && !YAML11_WORDS.test(value) && !value.startsWith('@') ? value : JSON.stringify(value);
}
